//! Plays the part of the user's browser in an OAuth sign-in: opens the authorize page,
//! clicks Approve (the first sandbox account), and returns where the service redirects
//! (the `app.mtp.desktop://` deep link), without following it.

use anyhow::{Context, Result, bail};

/// Approves the sign-in page at `authorize_url` and returns the redirect target.
pub async fn approve(authorize_url: &str) -> Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page_url = url::Url::parse(authorize_url)?;
    let resp = http.get(page_url.clone()).send().await?;
    if resp.status().is_redirection() {
        // Auto-approving page: the redirect is the answer.
        return location(&resp);
    }
    let html = resp.error_for_status()?.text().await?;
    let form = html
        .split("<form")
        .nth(1)
        .context("the sign-in page has no form")?;
    let action = attribute(form, "action").context("the form has no action")?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for input in form.split("<input").skip(1) {
        if let (Some(name), Some(value)) = (attribute(input, "name"), attribute(input, "value")) {
            fields.push((name, value));
        }
    }
    fields.push(("user".into(), "0".into()));
    let target = page_url.join(&action)?;
    let resp = http.post(target).form(&fields).send().await?;
    if !resp.status().is_redirection() {
        bail!("approving did not redirect: HTTP {}", resp.status());
    }
    location(&resp)
}

fn location(resp: &reqwest::Response) -> Result<String> {
    Ok(resp
        .headers()
        .get(reqwest::header::LOCATION)
        .context("redirect without Location")?
        .to_str()?
        .to_string())
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
