//! Deep links the OS hands to the app (`app.mtp.desktop://app?...`), parsed into a typed value.
//! Anything unknown or malformed is refused with a reason; nothing here panics.

use crate::secret::Secret;
use url::Url;

pub const SCHEME: &str = "app.mtp.desktop";
pub const HOST: &str = "app";
/// Longest link we look at; OAuth callbacks are far shorter.
const MAX_LEN: usize = 8 * 1024;

/// What a deep link asks the app to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeepLink {
    /// OAuth authorization-code callback (Mapillary, OpenStreetMap for KartaView).
    AuthorizationCode { code: Secret<String>, state: String },
    /// OAuth implicit-grant callback (Map the Paths Web): the token is in the fragment.
    ImplicitToken {
        access_token: Secret<String>,
        state: Option<String>,
        expires_in: Option<i64>,
    },
    /// The service (or the user) refused the authorization.
    AuthorizationError {
        error: String,
        description: Option<String>,
        state: Option<String>,
    },
}

impl DeepLink {
    /// The `state` the link carries, checked against pending attempts before anything else.
    pub fn state(&self) -> Option<&str> {
        match self {
            DeepLink::AuthorizationCode { state, .. } => Some(state),
            DeepLink::ImplicitToken { state, .. } | DeepLink::AuthorizationError { state, .. } => {
                state.as_deref()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeepLinkError {
    #[error("not a link for this app (scheme {0:?}, expected {SCHEME})")]
    WrongScheme(String),
    #[error("unknown link target {0:?} (expected app.mtp.desktop://app)")]
    UnknownTarget(String),
    #[error("the link is too long ({0} bytes)")]
    TooLong(usize),
    #[error("the link is not a valid URL: {0}")]
    Malformed(String),
    #[error("the link has no OAuth result (no code, token or error)")]
    Empty,
    #[error("the link has an authorization code but no state, so it cannot be trusted")]
    MissingState,
    #[error("the link repeats the parameter {0:?}")]
    Repeated(String),
}

impl TryFrom<&Url> for DeepLink {
    type Error = DeepLinkError;

    fn try_from(url: &Url) -> Result<Self, Self::Error> {
        if url.as_str().len() > MAX_LEN {
            return Err(DeepLinkError::TooLong(url.as_str().len()));
        }
        if url.scheme() != SCHEME {
            return Err(DeepLinkError::WrongScheme(url.scheme().to_string()));
        }
        let host = url.host_str().unwrap_or_default();
        let path = url.path().trim_end_matches('/');
        if host != HOST || !path.is_empty() {
            return Err(DeepLinkError::UnknownTarget(format!(
                "{host}{}",
                url.path()
            )));
        }
        DeepLink::from_params(
            url.query().unwrap_or_default(),
            url.fragment().unwrap_or_default(),
        )
    }
}

impl DeepLink {
    /// Reads an OAuth result from a redirect's raw query and fragment: the deep link's, or
    /// a loopback redirect's (`http://127.0.0.1:<port>/<path>?…`, RFC 8252 §7.3).
    pub fn from_params(query: &str, fragment: &str) -> Result<DeepLink, DeepLinkError> {
        if query.len() + fragment.len() > MAX_LEN {
            return Err(DeepLinkError::TooLong(query.len() + fragment.len()));
        }
        let query = Params::parse(query)?;
        let fragment = Params::parse(fragment)?;
        let get = |name: &str| query.get(name).or_else(|| fragment.get(name));

        if let Some(error) = get("error") {
            return Ok(DeepLink::AuthorizationError {
                error,
                description: get("error_description"),
                state: get("state"),
            });
        }
        if let Some(code) = query.get("code") {
            let state = query
                .get("state")
                .filter(|s| !s.is_empty())
                .ok_or(DeepLinkError::MissingState)?;
            return Ok(DeepLink::AuthorizationCode {
                code: Secret::new(code),
                state,
            });
        }
        if let Some(token) = get("access_token") {
            return Ok(DeepLink::ImplicitToken {
                access_token: Secret::new(token),
                state: get("state"),
                expires_in: get("expires_in").and_then(|v| v.parse().ok()),
            });
        }
        Err(DeepLinkError::Empty)
    }
}

impl TryFrom<&str> for DeepLink {
    type Error = DeepLinkError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.len() > MAX_LEN {
            return Err(DeepLinkError::TooLong(s.len()));
        }
        let url = Url::parse(s.trim()).map_err(|e| DeepLinkError::Malformed(e.to_string()))?;
        DeepLink::try_from(&url)
    }
}

/// Decoded `k=v&...` pairs; a repeated key is refused (ambiguous, and a classic injection trick).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &str) -> Result<Params, DeepLinkError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(DeepLinkError::Repeated(k.into_owned()));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DeepLink, DeepLinkError> {
        DeepLink::try_from(s)
    }

    #[test]
    fn parses_the_links_the_services_send() {
        match parse("app.mtp.desktop://app?code=abc&state=xyz") {
            Ok(DeepLink::AuthorizationCode { code, state }) => {
                assert_eq!(code.expose(), "abc");
                assert_eq!(state, "xyz");
            }
            other => panic!("{other:?}"),
        }
        match parse("app.mtp.desktop://app/?code=a%20b&state=s") {
            Ok(DeepLink::AuthorizationCode { code, .. }) => assert_eq!(code.expose(), "a b"),
            other => panic!("{other:?}"),
        }
        match parse(
            "app.mtp.desktop://app#access_token=t0k&token_type=Bearer&expires_in=600000000&state=s1",
        ) {
            Ok(DeepLink::ImplicitToken {
                access_token,
                state,
                expires_in,
            }) => {
                assert_eq!(access_token.expose(), "t0k");
                assert_eq!(state.as_deref(), Some("s1"));
                assert_eq!(expires_in, Some(600_000_000));
            }
            other => panic!("{other:?}"),
        }
        match parse("app.mtp.desktop://app?error=access_denied&state=s2") {
            Ok(link @ DeepLink::AuthorizationError { .. }) => {
                assert_eq!(link.state(), Some("s2"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        let cases: &[(&str, DeepLinkError)] = &[
            (
                "https://app?code=a&state=b",
                DeepLinkError::WrongScheme("https".into()),
            ),
            (
                "app.mtp.desktop://evil?code=a&state=b",
                DeepLinkError::UnknownTarget("evil".into()),
            ),
            (
                "app.mtp.desktop://app/upload?code=a&state=b",
                DeepLinkError::UnknownTarget("app/upload".into()),
            ),
            ("app.mtp.desktop://app", DeepLinkError::Empty),
            ("app.mtp.desktop://app?code=a", DeepLinkError::MissingState),
            (
                "app.mtp.desktop://app?code=a&state=",
                DeepLinkError::MissingState,
            ),
            (
                "app.mtp.desktop://app?code=a&state=b&state=c",
                DeepLinkError::Repeated("state".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).as_ref().err(), Some(want), "{input}");
        }
        assert!(matches!(
            parse("not a url"),
            Err(DeepLinkError::Malformed(_))
        ));
        assert!(matches!(parse(""), Err(DeepLinkError::Malformed(_))));
        let long = format!("app.mtp.desktop://app?code={}&state=s", "a".repeat(9000));
        assert!(matches!(parse(&long), Err(DeepLinkError::TooLong(_))));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "app.mtp.desktop:",
            "app.mtp.desktop://",
            "app.mtp.desktop://app?%",
            "app.mtp.desktop://app?code=%ZZ&state=%",
            "app.mtp.desktop://app#",
            "app.mtp.desktop://[::1]?code=a&state=b",
            "app.mtp.desktop://app?\u{0}=\u{0}",
            "app.mtp.desktop://app?code=é&state=ü",
        ] {
            let _ = parse(s);
        }
    }
}
