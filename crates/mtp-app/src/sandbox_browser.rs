//! Plays the user's browser on a sandbox sign-in page: opens it, clicks "Approve" (as the
//! first sandbox account) and returns where the emulator redirects — the
//! `app.mtp.desktop://` deep link — without following it. Used by `mtp accounts login` in
//! sandbox mode and by the tests; the real services always get a real browser.

use crate::{AppError, AppResult};

pub async fn approve(authorize_url: &str) -> AppResult<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AppError::new("internal", e.to_string()))?;
    let page_url = url::Url::parse(authorize_url).map_err(|e| AppError::invalid(e.to_string()))?;
    let net = |e: reqwest::Error| {
        AppError::new("network", format!("the sign-in page did not answer: {e}"))
    };
    let resp = http.get(page_url.clone()).send().await.map_err(net)?;
    if resp.status().is_redirection() {
        return location(&resp);
    }
    let html = resp
        .error_for_status()
        .map_err(net)?
        .text()
        .await
        .map_err(net)?;
    let form = html
        .split("<form")
        .nth(1)
        .ok_or_else(|| AppError::new("service", "the sign-in page has no form"))?;
    let action = attribute(form, "action")
        .ok_or_else(|| AppError::new("service", "the sign-in form has no action"))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for input in form.split("<input").skip(1) {
        if let (Some(name), Some(value)) = (attribute(input, "name"), attribute(input, "value")) {
            fields.push((name, value));
        }
    }
    fields.push(("user".into(), "0".into()));
    let target = page_url
        .join(&action)
        .map_err(|e| AppError::invalid(e.to_string()))?;
    let resp = http.post(target).form(&fields).send().await.map_err(net)?;
    if !resp.status().is_redirection() {
        return Err(AppError::new(
            "service",
            format!("approving did not redirect: HTTP {}", resp.status()),
        ));
    }
    location(&resp)
}

fn location(resp: &reqwest::Response) -> AppResult<String> {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| AppError::new("service", "the sign-in redirect has no Location"))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(
        tag[start..start + len]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
