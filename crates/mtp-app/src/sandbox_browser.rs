//! Plays the user's browser on a sandbox sign-in page: opens it, clicks "Approve" (as the
//! first sandbox account) and returns where the emulator redirects — the
//! `app.mtp.desktop://` deep link or a loopback address — without following it
//! ([`follow`] then plays the browser on a loopback address; [`approve_code`] reads the code
//! an out-of-band sign-in shows; [`claim`] approves a Panoramax claim page). Used by `mtp accounts login` in sandbox mode and by the tests;
//! the real services always get a real browser.

use crate::{AppError, AppResult};

fn browser() -> AppResult<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AppError::new("internal", e.to_string()))
}

fn net(e: reqwest::Error) -> AppError {
    AppError::new("network", format!("the sign-in page did not answer: {e}"))
}

/// What the emulator answered once its consent page was approved (or at once, when it
/// approves by itself): a redirect's `Location`, or a page.
struct Answer {
    status: reqwest::StatusCode,
    location: Option<String>,
    html: String,
}

/// Opens a sign-in page and approves it as the first sandbox account.
async fn consent(authorize_url: &str) -> AppResult<Answer> {
    let http = browser()?;
    let page_url = url::Url::parse(authorize_url).map_err(|e| AppError::invalid(e.to_string()))?;
    let answer = |resp: reqwest::Response| async move {
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let html = resp.text().await.map_err(net)?;
        Ok::<_, AppError>(Answer {
            status,
            location,
            html,
        })
    };
    let first = answer(http.get(page_url.clone()).send().await.map_err(net)?).await?;
    if first.status.is_redirection() {
        return Ok(first);
    }
    if !first.status.is_success() {
        return Err(AppError::new(
            "service",
            format!(
                "the sign-in page answered HTTP {}: {}",
                first.status, first.html
            ),
        ));
    }
    let Some(form) = first.html.split("<form").nth(1) else {
        // Approved by itself: the answer is this page.
        return Ok(first);
    };
    let action = attribute(form, "action")
        .ok_or_else(|| AppError::new("service", "the sign-in form has no action"))?;
    let mut fields: Vec<(String, String)> = form
        .split("<input")
        .skip(1)
        .filter_map(|input| Some((attribute(input, "name")?, attribute(input, "value")?)))
        .collect();
    fields.push(("user".into(), "0".into()));
    let target = page_url
        .join(&action)
        .map_err(|e| AppError::invalid(e.to_string()))?;
    answer(http.post(target).form(&fields).send().await.map_err(net)?).await
}

/// Approves a sign-in page and returns where the emulator redirects (the deep link or a
/// loopback address).
pub async fn approve(authorize_url: &str) -> AppResult<String> {
    let answer = consent(authorize_url).await?;
    if !answer.status.is_redirection() {
        return Err(AppError::new(
            "service",
            format!("approving did not redirect: HTTP {}", answer.status),
        ));
    }
    answer
        .location
        .ok_or_else(|| AppError::new("service", "the sign-in redirect has no Location"))
}

/// Approves a sign-in page whose app has the out-of-band redirect (KartaView's OSM app):
/// the emulator then shows the code on a page, as OpenStreetMap does; returns that code.
pub async fn approve_code(authorize_url: &str) -> AppResult<String> {
    let answer = consent(authorize_url).await?;
    answer
        .html
        .split("id=\"authorization_code\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .map(str::to_string)
        .ok_or_else(|| {
            AppError::new(
                "service",
                format!(
                    "no code on the page (HTTP {}): {}",
                    answer.status, answer.html
                ),
            )
        })
}

/// Approves a Panoramax claim page (as the first sandbox account); returns the page the
/// instance answers with ("Token claimed"), or an error when it refuses or fails.
pub async fn claim(claim_url: &str) -> AppResult<String> {
    let http = browser()?;
    let page_url = url::Url::parse(claim_url).map_err(|e| AppError::invalid(e.to_string()))?;
    let resp = http.get(page_url.clone()).send().await.map_err(net)?;
    let status = resp.status();
    let html = resp.text().await.map_err(net)?;
    if !status.is_success() {
        return Err(AppError::new(
            "service",
            format!("the claim page answered HTTP {status}: {html}"),
        ));
    }
    let Some(form) = html.split("<form").nth(1) else {
        // Auto-approving sandbox: the token is claimed already.
        return Ok(html);
    };
    let action = attribute(form, "action")
        .ok_or_else(|| AppError::new("service", "the claim form has no action"))?;
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
    let status = resp.status();
    let html = resp.text().await.map_err(net)?;
    if !status.is_success() {
        return Err(AppError::new(
            "service",
            format!("claiming answered HTTP {status}: {html}"),
        ));
    }
    Ok(html)
}

/// Plays the browser on a loopback redirect (`http://127.0.0.1:<port>/<path>?…` or
/// `…#…`): a fragment is not sent, so the page the app answers must move it into the
/// query, which is then requested as its script does. Returns the final status and page.
pub async fn follow(redirect: &str) -> AppResult<(u16, String)> {
    let http = browser()?;
    let mut url = url::Url::parse(redirect).map_err(|e| AppError::invalid(e.to_string()))?;
    let fragment = url.fragment().map(str::to_string);
    url.set_fragment(None);
    let resp = http.get(url.clone()).send().await.map_err(net)?;
    let mut status = resp.status().as_u16();
    let mut html = resp.text().await.map_err(net)?;
    if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
        if !html.contains("location.hash") {
            return Err(AppError::new(
                "service",
                format!("the page at {url} does not read the fragment back: {html}"),
            ));
        }
        url.set_query(Some(&fragment));
        let resp = http.get(url).send().await.map_err(net)?;
        status = resp.status().as_u16();
        html = resp.text().await.map_err(net)?;
    }
    Ok((status, html))
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
