//! The few HTML pages a person sees: authorize prompts, the out-of-band code page, errors.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::USERS;

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 34rem; margin: 3rem auto; padding: 0 1rem; color: #222; }}
.banner {{ background: #fff3cd; border: 1px solid #e0c36c; padding: .5rem .75rem; border-radius: 6px; font-size: .9rem; }}
button {{ font-size: 1rem; padding: .5rem 1rem; margin: .25rem .25rem .25rem 0; border-radius: 6px; border: 1px solid #888; cursor: pointer; }}
button.approve {{ background: #1f7a3a; color: white; border-color: #1f7a3a; }}
code {{ background: #eee; padding: .1rem .3rem; border-radius: 4px; word-break: break-all; }}
</style></head>
<body><p class="banner">MTP sandbox: an offline emulator, not the real service.</p>
<h1>{t}</h1>
{body}
</body></html>"#,
        t = escape(title),
    )
}

/// An error page with a status.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Html(page(title, &format!("<p>{}</p>", escape(message)))),
    )
        .into_response()
}

/// An Approve (one button per sandbox account) / Deny prompt that POSTs `fields` back to
/// `action`, with `decision=approve|deny` and `user=<index>`.
pub(crate) fn consent_page(
    service_title: &str,
    app_name: &str,
    scope: Option<&str>,
    action: &str,
    fields: &[(&str, &str)],
) -> Response {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let approve: String = USERS
        .iter()
        .enumerate()
        .map(|(i, u)| {
            format!(
                r#"<button class="approve" type="submit" name="user" value="{i}" id="approve-{i}">Approve as {}</button>"#,
                escape(u.username)
            )
        })
        .collect();
    let scope = scope
        .map(|s| format!("<p>Requested access: <code>{}</code></p>", escape(s)))
        .unwrap_or_default();
    let body = format!(
        r#"<p><strong>{app}</strong> wants to access your {svc} account.</p>
{scope}
<form method="post" action="{action}">{hidden}<input type="hidden" name="decision" value="approve">{approve}</form>
<form method="post" action="{action}">{hidden}<input type="hidden" name="decision" value="deny"><button type="submit" id="deny">Deny</button></form>"#,
        app = escape(app_name),
        svc = escape(service_title),
        action = escape(action),
    );
    Html(page(&format!("Authorize – {service_title}"), &body)).into_response()
}
