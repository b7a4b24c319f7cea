//! Panoramax's "claim" sign-in, as panoramax-cli's `login` does it (PROTOCOLS §4.2):
//! generate a token nobody owns yet, let the user claim it in the browser, then poll
//! `GET /api/users/me` with it until it answers 200.

use mtp_core::Destination;
use mtp_core::clock::{Clock as _, SystemClock};
use mtp_core::secret::Secret;
use serde::Deserialize;
use url::Url;

use crate::config::PanoramaxConfig;
use crate::error::ProviderError;
use crate::http;

const SERVICE: Destination = Destination::Panoramax;

/// An unclaimed token: the JWT is useless until someone claims it at `claim_url`.
#[derive(Debug, Clone)]
pub struct GeneratedToken {
    pub id: String,
    pub jwt: Secret<String>,
    /// The page where the user signs in to the instance and accepts the token.
    pub claim_url: Url,
}

#[derive(Deserialize)]
struct GenerateReply {
    id: String,
    jwt_token: String,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
    href: String,
}

/// `POST {instance}/api/auth/tokens/generate?description=…` (no authentication).
pub async fn generate_token(
    http_client: &reqwest::Client,
    config: &PanoramaxConfig,
    description: &str,
) -> Result<GeneratedToken, ProviderError> {
    let mut url = http::endpoint(
        SERVICE,
        &config.instance_url,
        &["api", "auth", "tokens", "generate"],
    )?;
    url.query_pairs_mut()
        .append_pair("description", description);
    let reply = http::send(SERVICE, http_client.post(url)).await?;
    if !reply.status.is_success() {
        return Err(crate::panoramax::classify_error(
            reply.status,
            &reply.headers,
            &reply.body,
            SystemClock.now_ms(),
        ));
    }
    let parsed: GenerateReply = serde_json::from_slice(&reply.body).map_err(|e| {
        ProviderError::unexpected_reply(
            SERVICE,
            reply.status.as_u16(),
            format!("POST /api/auth/tokens/generate: unreadable reply ({e})"),
            &reply.body,
        )
    })?;
    let claim = parsed
        .links
        .iter()
        .find(|l| l.rel == "claim")
        .ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                "POST /api/auth/tokens/generate: the reply has no link with rel \"claim\"",
                &reply.body,
            )
        })?;
    let claim_url = Url::parse(&claim.href).map_err(|e| {
        ProviderError::unexpected_reply(
            SERVICE,
            reply.status.as_u16(),
            format!("POST /api/auth/tokens/generate: the claim link is not a URL ({e})"),
            &reply.body,
        )
    })?;
    if !matches!(claim_url.scheme(), "http" | "https") {
        return Err(ProviderError::unexpected_reply(
            SERVICE,
            reply.status.as_u16(),
            "POST /api/auth/tokens/generate: the claim link is not a web page",
            &reply.body,
        ));
    }
    Ok(GeneratedToken {
        id: parsed.id,
        jwt: Secret::new(parsed.jwt_token),
        claim_url,
    })
}
