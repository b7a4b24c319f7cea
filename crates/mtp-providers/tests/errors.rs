//! Error classification tables (PROTOCOLS §2.3, §3.3, §4.1, §5) and the backoff schedule.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_providers::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, parse_retry_after};
use mtp_providers::kartaview::{self, KartaViewReply};
use mtp_providers::mtpw::{self, MtpwCall};
use mtp_providers::{MapillaryClient, mapillary, panoramax};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

/// 1994-11-06T08:49:37Z, the RFC 9110 example date.
const RFC_DATE_MS: i64 = 784_111_777_000;

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

fn headers(retry_after: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn retry(secs: Option<u64>) -> ErrorKind {
    ErrorKind::Retry {
        after: secs.map(Duration::from_secs),
    }
}

fn mly(code: u16, retry_after: Option<&str>, body: &str) -> ProviderError {
    mapillary::classify_error(status(code), &headers(retry_after), body.as_bytes(), 0)
}

#[test]
fn mapillary_table_of_protocols_2_3() {
    let rate_limited = r#"{"debug_info":{"retriable":false,"type":"RequestRateLimitedError","message":"Request rate limit has been exceeded"}}"#;
    let rate_limited_backoff = r#"{"backoff":5000,"debug_info":{"retriable":false,"type":"RequestRateLimitedError","message":"slow down"}}"#;
    let offset = r#"{"debug_info":{"retriable":true,"type":"OffsetInvalidError","message":"Request starting offset is invalid"}}"#;
    let not_authorized = r#"{"debug_info":{"retriable":false,"type":"NotAuthorizedError","message":"Not authorized"}}"#;
    let retriable_400 =
        r#"{"debug_info":{"retriable":true,"type":"SomeTransientError","message":"try again"}}"#;
    let plain_400 =
        r#"{"debug_info":{"retriable":false,"type":"InvalidImageError","message":"bad image"}}"#;
    let graph_400 = r#"{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"fbtrace_id":"x"}}"#;

    let rows: Vec<(&str, ProviderError, ErrorKind)> = vec![
        ("429, nothing else", mly(429, None, ""), retry(Some(10))),
        (
            "429 + Retry-After s",
            mly(429, Some("7"), ""),
            retry(Some(7)),
        ),
        (
            "429 + Retry-After date",
            mapillary::classify_error(
                status(429),
                &headers(Some("Sun, 06 Nov 1994 08:49:37 GMT")),
                b"",
                RFC_DATE_MS - 42_000,
            ),
            retry(Some(42)),
        ),
        (
            "400 RequestRateLimitedError, retriable:false",
            mly(400, None, rate_limited),
            retry(Some(10)),
        ),
        (
            "400 RequestRateLimitedError + Retry-After",
            mly(400, Some("3"), rate_limited),
            retry(Some(3)),
        ),
        (
            "JSON backoff wins over Retry-After",
            mly(429, Some("3"), rate_limited_backoff),
            retry(Some(5)),
        ),
        (
            "412 retriable",
            mly(412, None, offset),
            ErrorKind::OffsetInvalid,
        ),
        (
            "400 NotAuthorizedError",
            mly(400, None, not_authorized),
            ErrorKind::Auth,
        ),
        (
            "401",
            mly(
                401,
                None,
                r#"{"error":{"message":"Invalid OAuth access token"}}"#,
            ),
            ErrorKind::Auth,
        ),
        ("403", mly(403, None, ""), ErrorKind::Auth),
        (
            "other 4xx retriable",
            mly(400, None, retriable_400),
            retry(None),
        ),
        (
            "other 4xx not retriable",
            mly(400, None, plain_400),
            ErrorKind::Permanent,
        ),
        (
            "4xx non-JSON never retried",
            mly(400, None, "<html>Bad Request</html>"),
            ErrorKind::Permanent,
        ),
        (
            "Graph-style 400",
            mly(400, None, graph_400),
            ErrorKind::Permanent,
        ),
        (
            "Graph 400, code 190: the token is no longer valid",
            mly(
                400,
                None,
                r#"{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"x"}}"#,
            ),
            ErrorKind::Auth,
        ),
        (
            "Graph 400, code 4: the app's rate limit",
            mly(
                400,
                None,
                r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"fbtrace_id":"x"}}"#,
            ),
            retry(Some(10)),
        ),
        (
            "Graph 400, transient",
            mly(
                400,
                None,
                r#"{"error":{"message":"Please retry","type":"OAuthException","is_transient":true,"code":2,"fbtrace_id":"x"}}"#,
            ),
            retry(None),
        ),
        ("500", mly(500, None, ""), retry(None)),
        (
            "502 HTML",
            mly(502, None, "<html>Bad gateway</html>"),
            retry(None),
        ),
        (
            "503 + Retry-After",
            mly(503, Some("30"), ""),
            retry(Some(30)),
        ),
    ];
    for (name, error, kind) in rows {
        assert_eq!(error.kind(), kind, "{name}: {error}");
        assert_eq!(error.service(), Destination::Mapillary, "{name}");
    }

    let e = mly(412, None, offset);
    assert_eq!(e.message(), "Request starting offset is invalid");
    assert_eq!(e.code(), Some("OffsetInvalidError"));
    assert_eq!(e.status(), Some(412));

    let e = mly(400, None, graph_400);
    assert_eq!(e.message(), "Unsupported get request.");
    assert_eq!(e.code(), Some("GraphMethodException"));

    // Opaque 4xx: the whole body is kept and shown (PROTOCOLS §6); a page as its text.
    let e = mly(400, None, "<html>Bad Request: quota</html>");
    assert_eq!(e.body(), Some("<html>Bad Request: quota</html>"));
    let shown = e.to_string();
    assert!(
        shown.starts_with("Mapillary: unexpected reply (HTTP 400)"),
        "{shown}"
    );
    assert!(shown.contains("Reply: Bad Request: quota. "), "{shown}");
    assert!(shown.contains("Not retried automatically"), "{shown}");

    let e = mly(
        401,
        None,
        r#"{"error":{"message":"Invalid OAuth access token"}}"#,
    );
    let shown = e.to_string();
    assert!(shown.contains("Invalid OAuth access token"), "{shown}");
    assert!(shown.contains("UPLOAD permission"), "{shown}");
    assert!(
        shown.contains("Reconnect your Mapillary account"),
        "{shown}"
    );
}

#[tokio::test]
async fn connection_errors_and_timeouts_retry_with_no_extra_delay() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}");
    let client = MapillaryClient::with_urls(
        common::client(),
        common::url(&format!("{base}/graph")),
        common::url(&format!("{base}/upload")),
        Secret::from("tok"),
    );
    let e = client.me().await.unwrap_err();
    assert_eq!(e.kind(), retry(None), "{e}");
    assert_eq!(e.status(), None);
    assert!(e.to_string().contains("when the network is back"), "{e}");

    // A server that never answers in time.
    let router = axum::Router::new().route(
        "/graph/me",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{}"
        }),
    );
    let base = common::serve(router).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let client = MapillaryClient::with_urls(
        impatient,
        common::url(&format!("{base}/graph")),
        common::url(&format!("{base}/upload")),
        Secret::from("tok"),
    );
    let e = client.me().await.unwrap_err();
    assert_eq!(e.kind(), retry(None), "{e}");
    assert!(e.message().contains("timed out"), "{e}");
}

fn kv(code: u16, body: &str) -> Result<KartaViewReply, ProviderError> {
    kartaview::interpret_reply(status(code), &headers(None), body.as_bytes(), 0)
}

fn kv_kind(code: u16, body: &str) -> ErrorKind {
    kv(code, body).unwrap_err().kind()
}

#[test]
fn kartaview_codes() {
    let dup_v1 = r#"{"status":{"apiCode":"660","apiMessage":" You are not allowed to add a duplicate entry (sequenceIndex)","httpCode":400,"httpMessage":"Bad Request"}}"#;
    let dup_v2 = r#"{"status":{"apiCode":406,"apiMessage":"duplicate","httpCode":406}}"#;
    assert_eq!(
        kv(400, dup_v1).unwrap(),
        KartaViewReply::Duplicate {
            message: "You are not allowed to add a duplicate entry (sequenceIndex)".into()
        }
    );
    assert!(matches!(
        kv(200, dup_v1).unwrap(),
        KartaViewReply::Duplicate { .. }
    ));
    assert!(matches!(
        kv(406, dup_v2).unwrap(),
        KartaViewReply::Duplicate { .. }
    ));
    assert!(matches!(
        kv(500, dup_v1).unwrap(),
        KartaViewReply::Duplicate { .. }
    ));

    let ok_v1 = r#"{"status":{"apiCode":"600","apiMessage":"The request has been processed without incidents"},"osv":{"sequence":{"id":"4321"}}}"#;
    let ok_v2 = r#"{"status":{"apiCode":600},"result":{"data":{"id":1}}}"#;
    let saved = r#"{"status":{"apiCode":"602","apiMessage":"saved with error"},"osv":{"photo":{"id":"9"}}}"#;
    assert!(matches!(kv(200, ok_v1).unwrap(), KartaViewReply::Ok(_)));
    assert!(matches!(kv(200, ok_v2).unwrap(), KartaViewReply::Ok(_)));
    assert!(matches!(kv(200, saved).unwrap(), KartaViewReply::Ok(_)));

    let unauth = r#"{"status":{"apiCode":"401","apiMessage":" You have to be authenticated in order to access this method","httpCode":401}}"#;
    assert_eq!(kv_kind(401, unauth), ErrorKind::Auth);
    assert_eq!(kv_kind(200, unauth), ErrorKind::Auth);
    assert_eq!(kv_kind(403, "Forbidden"), ErrorKind::Auth);
    let e = kv(401, unauth).unwrap_err();
    assert_eq!(
        e.message(),
        "You have to be authenticated in order to access this method"
    );
    assert!(
        e.to_string().contains("Reconnect your KartaView account"),
        "{e}"
    );

    for (code, api) in [
        (400, "610"),
        (400, "611"),
        (400, "612"),
        (403, "618"),
        (400, "671"),
        (200, "690"),
        (400, "690"),
    ] {
        let body = format!(r#"{{"status":{{"apiCode":"{api}","apiMessage":"message {api}"}}}}"#);
        let e = kv(code, &body).unwrap_err();
        let expected = if code == 403 {
            ErrorKind::Auth
        } else {
            ErrorKind::Permanent
        };
        assert_eq!(e.kind(), expected, "{code}/{api}");
        assert_eq!(e.message(), format!("message {api}"));
        assert_eq!(e.code(), Some(format!("apiCode {api}").as_str()));
    }

    assert_eq!(
        kv_kind(
            500,
            r#"{"status":{"apiCode":"690","apiMessage":"unexpected"}}"#
        ),
        retry(None)
    );
    assert_eq!(kv_kind(502, "<html>bad gateway</html>"), retry(None));
    assert_eq!(kv_kind(429, ""), retry(Some(10)));
    assert_eq!(
        kartaview::interpret_reply(status(503), &headers(Some("20")), b"", 0)
            .unwrap_err()
            .kind(),
        retry(Some(20))
    );
    // Non-JSON: permanent, with the body shown.
    let e = kv(200, "<html>maintenance</html>").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.body(), Some("<html>maintenance</html>"));
    let e = kv(400, "Invalid access token").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.to_string().contains("Invalid access token"), "{e}");
}

fn pmx(code: u16, body: &str) -> ProviderError {
    panoramax::classify_error(status(code), &headers(None), body.as_bytes(), 0)
}

#[test]
fn panoramax_codes() {
    assert_eq!(
        pmx(401, r#"{"message":"Token not valid","status_code":401}"#).kind(),
        ErrorKind::Auth
    );
    assert_eq!(
        pmx(
            401,
            r#"{"message":"Authentication is mandatory","status_code":401}"#
        )
        .kind(),
        ErrorKind::Auth
    );
    assert_eq!(
        pmx(
            403,
            r#"{"message":"Token not valid","status_code":403,"details":{"error":"Token does not exist anymore"}}"#
        )
        .kind(),
        ErrorKind::Auth
    );
    // A proxy's page in place of GeoVisio's reply: taken as a refused token.
    assert_eq!(pmx(401, "<html>401</html>").kind(), ErrorKind::Auth);
    // 401/403 that a new sign-in would not mend: not the owner, terms of service not
    // accepted (with the page to accept them), an instance in read-only maintenance.
    let e = pmx(
        403,
        r#"{"message":"You're not authorized to add picture to this upload set","status_code":403}"#,
    );
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.is_forbidden());
    let e = pmx(
        401,
        r#"{"message":"You need to accept the terms of service before uploading any pictures. You can do so by validating them here: https://pnx.example/tos-validation","status_code":401,"details":{"validation_page":"https://pnx.example/tos-validation"}}"#,
    );
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(
        e.message().contains("https://pnx.example/tos-validation"),
        "{e}"
    );
    assert_eq!(
        pmx(
            401,
            r#"{"message":"The instance is read only for the moment, no modification are authorized","status_code":401}"#
        )
        .kind(),
        retry(Some(600))
    );
    for code in [404, 415] {
        assert_eq!(
            pmx(code, r#"{"message":"nope","status_code":404}"#).kind(),
            ErrorKind::Permanent
        );
    }
    for code in [500, 502, 503, 504] {
        assert_eq!(pmx(code, "").kind(), retry(None), "{code}");
    }
    assert_eq!(pmx(429, "").kind(), retry(Some(10)));

    let e = pmx(
        400,
        r#"{"message":"Impossible to parse picture metadata","status_code":400,"details":{"error":"invalid_metadata","missing_fields":["datetime","location"]}}"#,
    );
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.code(), Some("invalid_metadata"));
    assert!(
        e.message()
            .starts_with("Impossible to parse picture metadata"),
        "{e}"
    );
    assert!(e.message().contains("missing: datetime, location"), "{e}");
    assert_eq!(e.service(), Destination::Panoramax);

    // Parameters GeoVisio could not parse: `details` is a list, said field by field.
    let e = pmx(
        400,
        r#"{"message":"Impossible to parse parameters","status_code":400,"details":[{"fields":["limit"],"error":"Input should be a valid integer"},{"fields":["bbox"],"error":"bad bbox"},{"fields":["datetime"],"error":"bad date"}]}"#,
    );
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(
        e.message(),
        "Impossible to parse parameters: limit: Input should be a valid integer; bbox: bad bbox; datetime: bad date"
    );

    let e = pmx(400, "not json");
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.body(), Some("not json"));
}

fn mtpw_reply(call: MtpwCall, code: u16, body: &str) -> Result<mtpw::MtpwReply, ProviderError> {
    mtpw::interpret_reply(call, status(code), &headers(None), body.as_bytes(), 0)
}

#[test]
fn mtpw_quirks() {
    // HTTP 200 with `error`: a failure, whatever `status` says.
    for body in [
        r#"{"error":"Transport type is invalid","status":false}"#,
        r#"{"error":"Transport type is invalid","status":"success"}"#,
    ] {
        let e = mtpw_reply(MtpwCall::Create, 200, body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert_eq!(e.message(), "Transport type is invalid");
        assert!(
            e.to_string()
                .starts_with("Map the Paths Web: Transport type is invalid (HTTP 200)"),
            "{e}"
        );
    }
    let ok =
        r#"{"status":"success","message":"Sequence successfully was created.","unique_id":"u1"}"#;
    let created = mtpw_reply(MtpwCall::Create, 200, ok).unwrap();
    assert_eq!(created.unique_id.as_deref(), Some("u1"));
    assert!(created.status.unwrap().is_success());
    let ok_bool = r#"{"message":"Sequence is updated \n","status":true}"#;
    let updated = mtpw_reply(MtpwCall::Import, 200, ok_bool).unwrap();
    assert_eq!(
        updated.status,
        Some(mtp_providers::decode::flex::StringOrBool::Bool(true))
    );

    // A 500 page (an unknown id, or the failed Mapillary v3 check: the reply alone cannot
    // tell): transient at this level, marked so the client can look into it.
    for (call, body) in [
        (
            MtpwCall::Import,
            "<!DOCTYPE html><html>Server Error (500)</html>",
        ),
        (
            MtpwCall::Import,
            "A server error occurred.  Please contact the administrator.",
        ),
        (MtpwCall::Create, "<html>oops</html>"),
    ] {
        let e = mtpw_reply(call, 500, body).unwrap_err();
        assert_eq!(e.kind(), retry(None));
        assert_eq!(e.code(), Some(mtpw::CODE_ERROR_PAGE));
        assert_eq!(e.body(), Some(body));
    }
    assert_eq!(
        mtpw_reply(MtpwCall::Import, 503, "").unwrap_err().kind(),
        retry(None)
    );
    // Django REST framework: 403 with `detail`, for a missing or a bad token.
    let e = mtpw_reply(
        MtpwCall::Create,
        403,
        r#"{"detail":"Authentication credentials were not provided."}"#,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.message(), "Authentication credentials were not provided.");
    assert_eq!(
        mtpw_reply(MtpwCall::Create, 200, "<html>login</html>")
            .unwrap_err()
            .kind(),
        ErrorKind::Permanent
    );
}

#[test]
fn retry_after_values() {
    assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
    assert_eq!(parse_retry_after(" 0 ", 0), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS - 90_000),
        Some(Duration::from_secs(90))
    );
    // A date in the past means "now".
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS + 5_000),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", 0), None);
    assert_eq!(parse_retry_after("-5", 0), None);
}

#[test]
fn retry_kinds_carry_the_servers_delay() {
    let e = mly(
        412,
        None,
        r#"{"debug_info":{"retriable":true,"type":"OffsetInvalidError"}}"#,
    );
    assert_eq!(e.kind(), ErrorKind::OffsetInvalid);
    assert!(matches!(mly(400, None, "x").kind(), ErrorKind::Permanent));
    assert!(matches!(mly(401, None, "").kind(), ErrorKind::Auth));
    assert_eq!(
        mly(429, None, "").kind(),
        ErrorKind::Retry {
            after: Some(DEFAULT_RATE_LIMIT_DELAY)
        }
    );
}

#[test]
fn not_found_and_forbidden_helpers() {
    // Panoramax: 404 is "gone", 403 "not yours"; neither for other codes.
    let gone = pmx(
        404,
        r#"{"message":"Collection doesn't exist","status_code":404}"#,
    );
    assert!(gone.is_not_found() && !gone.is_forbidden());
    let theirs = pmx(
        403,
        r#"{"message":"You're not authorized to delete this sequence","status_code":403}"#,
    );
    assert!(theirs.is_forbidden() && !theirs.is_not_found());
    assert_eq!(theirs.kind(), ErrorKind::Permanent);
    for code in [400, 401, 429, 500, 503] {
        let e = pmx(code, "");
        assert!(!e.is_not_found() && !e.is_forbidden(), "{code}");
    }
    // KartaView: 618 is "not yours" whatever the HTTP status; a bare 612 is not "gone"
    // (only the remove calls read it so).
    let e = kv(
        403,
        r#"{"status":{"apiCode":"618","apiMessage":"not allowed"}}"#,
    )
    .unwrap_err();
    assert!(e.is_forbidden() && !e.is_not_found());
    let e = kv(
        200,
        r#"{"status":{"apiCode":"618","apiMessage":"not allowed"}}"#,
    )
    .unwrap_err();
    assert!(e.is_forbidden());
    let e = kv(
        400,
        r#"{"status":{"apiCode":"612","apiMessage":"out of range"}}"#,
    )
    .unwrap_err();
    assert!(!e.is_not_found() && !e.is_forbidden());
    let e = kv(404, "Not Found").unwrap_err();
    assert!(e.is_not_found());
    // No reply at all: neither.
    let e = ProviderError::invalid(Destination::Kartaview, "bad URL");
    assert!(!e.is_not_found() && !e.is_forbidden());
}

/// Someone signing in or connecting an account is told what to do now; a queued job's
/// words ("will retry automatically") would be untrue there.
#[test]
fn errors_met_while_acting_now_say_what_to_do_now() {
    let busy = mly(503, None, "");
    assert!(
        busy.to_string().contains("will retry automatically"),
        "{busy}"
    );
    let now = busy.words_for_now();
    assert!(
        now.ends_with("Mapillary is busy or failing: try again in a moment."),
        "{now}"
    );
    assert!(!now.contains("automatically"), "{now}");

    let refused = mly(
        401,
        None,
        r#"{"error":{"message":"Invalid OAuth access token"}}"#,
    );
    let now = refused.words_for_now();
    assert!(
        now.starts_with("Mapillary: Invalid OAuth access token"),
        "{now}"
    );
    assert!(
        now.ends_with("Mapillary refused it: check the token or sign in again."),
        "{now}"
    );
    assert!(
        refused
            .to_string()
            .contains("Reconnect your Mapillary account on Integrations")
    );

    let wait = mly(429, Some("3"), "");
    assert!(
        wait.words_for_now()
            .ends_with("Mapillary asks to wait 3 s: try again then.")
    );

    let bad = mly(
        400,
        None,
        r#"{"error":{"message":"Unsupported get request.","code":100}}"#,
    );
    assert_eq!(
        bad.words_for_now(),
        "Mapillary: Unsupported get request. (HTTP 400)"
    );
}

/// A proxy's or a maintenance page in place of the service's reply is shown as its text:
/// no markup, no script, entities decoded, whitespace collapsed; other bodies as they are.
#[test]
fn an_html_reply_is_shown_as_its_text() {
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>\
        <style>body { color: red }</style><script>var x = '<b>';</script></head>\
        <body>\n  <h1>502   Bad Gateway</h1><p>nginx &amp; friends&nbsp;&lt;1.2&gt;</p></body></html>";
    let e = kv(502, page).unwrap_err();
    assert_eq!(e.body(), Some(page), "kept whole for the logs");
    assert_eq!(
        e.body_for_display().as_deref(),
        Some("502 Bad Gateway 502 Bad Gateway nginx & friends <1.2>")
    );
    let shown = e.to_string();
    assert!(shown.contains("Reply: 502 Bad Gateway"), "{shown}");
    assert!(
        !shown.contains("<h1>") && !shown.contains("color: red"),
        "{shown}"
    );
    let e = kv(200, "{\"no\": \"status\"} <not html>").unwrap_err();
    assert!(e.body_for_display().unwrap().contains("<not html>"));
    let e = kv(502, "   ").unwrap_err();
    assert_eq!(e.body_for_display(), None);
}
