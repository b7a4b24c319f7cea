//! Typed decoding of service replies.
//!
//! Every reply a client relies on is decoded into a serde struct, so a missing required
//! field is an error instead of a silent `None`. A reply that does not fit gives a
//! [`ProviderError`] naming the service, the call and the field ("KartaView: the reply to
//! POST /1.0/sequence/ does not fit at `osv.sequence`: missing field `id`"), with the body.
//!
//! Services disagree on JSON types (PROTOCOLS §3.3, §5, §8): KartaView v1 sends ids and
//! `apiCode` as strings of digits, v2 as numbers; MTPW's `status` is `"success"` or a
//! boolean. Those are handled here, once, by the `deserialize_with` helpers in [`flex`].

use mtp_core::Destination;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ProviderError;

/// Decodes `body` as `T`, or says where it does not fit.
pub fn decode<T: DeserializeOwned>(
    service: Destination,
    call: &str,
    status: u16,
    body: &[u8],
) -> Result<T, ProviderError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| misfit(service, call, status, &e, body))
}

/// [`decode`] of a reply already parsed as JSON.
pub fn decode_value<T: DeserializeOwned>(
    service: Destination,
    call: &str,
    status: u16,
    value: &Value,
) -> Result<T, ProviderError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| misfit(service, call, status, &e, value.to_string().as_bytes()))
}

fn misfit<E: std::fmt::Display>(
    service: Destination,
    call: &str,
    status: u16,
    e: &serde_path_to_error::Error<E>,
    body: &[u8],
) -> ProviderError {
    let path = e.path().to_string();
    let at = if path == "." || path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    };
    ProviderError::unexpected_reply(
        service,
        status,
        format!("the reply to {call} does not fit{at}: {}", e.inner()),
        body,
    )
}

/// `deserialize_with` helpers for values whose JSON type varies between services or
/// versions. Each accepts every form seen on the wire and nothing else.
pub mod flex {
    use serde::de::{Deserializer, Error};
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    fn describe(v: &Value) -> String {
        let text = v.to_string();
        let mut cut = 40.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut < text.len() {
            format!("{}…", &text[..cut])
        } else {
            text
        }
    }

    fn id_of(v: &Value) -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn i64_of(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn bool_of(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// An id sent as a non-empty string or a number, as a string.
    pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let v = Value::deserialize(d)?;
        id_of(&v).ok_or_else(|| {
            D::Error::custom(format!(
                "expected an id (a string or a number), found {}",
                describe(&v)
            ))
        })
    }

    /// [`id`], where `null` or absence means none (use with `#[serde(default)]`).
    pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v => id_of(&v).map(Some).ok_or_else(|| {
                D::Error::custom(format!(
                    "expected an id (a string or a number), found {}",
                    describe(&v)
                ))
            }),
        }
    }

    /// An integer sent as a number or a string of digits.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => i64_of(&v).map(Some).ok_or_else(|| {
                D::Error::custom(format!("expected an integer, found {}", describe(&v)))
            }),
        }
    }

    /// A non-negative integer sent as a number or a string of digits.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match opt_i64(d)? {
            None => Ok(None),
            Some(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected a count, found {n}"))),
        }
    }

    /// A finite number sent as a JSON number or a string (`"12.5"`): KartaView v1 sends
    /// distances as strings.
    pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        n.filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a number, found {}", describe(&v))))
    }

    /// A `u32` sent as a number or a string of digits.
    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match opt_i64(d)? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected an index, found {n}"))),
        }
    }

    /// [`opt_u64`] where absence or `null` is 0.
    pub fn u64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(opt_u64(d)?.unwrap_or(0))
    }

    /// A boolean sent as `true`, `"true"`, `1` or `"1"`.
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => bool_of(&v).map(Some).ok_or_else(|| {
                D::Error::custom(format!("expected a boolean, found {}", describe(&v)))
            }),
        }
    }

    /// [`opt_bool`] where absence or `null` is `false`.
    pub fn bool_or_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(opt_bool(d)?.unwrap_or(false))
    }

    /// Map the Paths Web's `status`: the string `"success"` on create/import, the boolean
    /// `true` on Strava/Street View updates, `false` next to an `error` (PROTOCOLS §5).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum StringOrBool {
        Bool(bool),
        String(String),
    }

    impl StringOrBool {
        /// `true`, or any string but `"false"`/`"error"`/`"fail…"`.
        pub fn is_success(&self) -> bool {
            match self {
                StringOrBool::Bool(b) => *b,
                StringOrBool::String(s) => {
                    let s = s.trim().to_ascii_lowercase();
                    !(s == "false" || s == "error" || s.starts_with("fail"))
                }
            }
        }
    }

    /// A free-text field that is sometimes not a string (a number, a list of messages):
    /// kept as text so that an odd error reply still shows its words.
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect();
                Some(parts.join("; ")).filter(|s| !s.is_empty())
            }
            other => Some(other.to_string()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        #[serde(deserialize_with = "flex::id")]
        id: String,
        #[serde(default, deserialize_with = "flex::opt_u64")]
        count: Option<u64>,
        #[serde(default, deserialize_with = "flex::bool_or_false")]
        done: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        osv: Inner,
    }

    #[test]
    fn ids_come_as_strings_or_numbers() {
        let a: Outer = decode(
            Destination::Kartaview,
            "x",
            200,
            br#"{"osv":{"id":"4321"}}"#,
        )
        .unwrap();
        let b: Outer = decode(
            Destination::Kartaview,
            "x",
            200,
            br#"{"osv":{"id":4321,"count":"7","done":"true"}}"#,
        )
        .unwrap();
        assert_eq!(a.osv.id, "4321");
        assert_eq!(b.osv.id, "4321");
        assert_eq!(b.osv.count, Some(7));
        assert!(b.osv.done);
        assert!(!a.osv.done);
    }

    #[test]
    fn a_misfit_names_service_call_and_field() {
        let e = decode::<Outer>(
            Destination::Kartaview,
            "POST /1.0/sequence/",
            200,
            br#"{"osv":{"name":"x"}}"#,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("KartaView: the reply to POST /1.0/sequence/ does not fit at `osv`: missing field `id`"), "{text}");
        assert_eq!(e.body(), Some(r#"{"osv":{"name":"x"}}"#));
        let e = decode::<Outer>(
            Destination::Kartaview,
            "GET x",
            200,
            br#"{"osv":{"id":[1]}}"#,
        )
        .unwrap_err();
        assert!(
            e.message()
                .contains("at `osv.id`: expected an id (a string or a number), found [1]"),
            "{}",
            e.message()
        );
        let e = decode::<Outer>(Destination::Kartaview, "GET x", 200, b"<html>").unwrap_err();
        assert!(
            e.message()
                .starts_with("the reply to GET x does not fit: expected value"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn status_is_a_string_or_a_boolean() {
        let s: flex::StringOrBool = serde_json::from_str(r#""success""#).unwrap();
        assert!(s.is_success());
        let s: flex::StringOrBool = serde_json::from_str("true").unwrap();
        assert!(s.is_success());
        let s: flex::StringOrBool = serde_json::from_str("false").unwrap();
        assert!(!s.is_success());
    }
}
