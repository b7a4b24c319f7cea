//! Story tests of the sign-in paths (issue 8 items 2–4) against the strict emulators:
//! loopback redirects for every OAuth service and their errors, KartaView refusing our OSM
//! app (retry without the browser, paste a token), and Panoramax's token claim.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pipeline_support;

use mtp_app::App;
use mtp_app::signin::{SignInPhase, SignInStatus, SignInTimeouts};
use mtp_core::Destination;
use pipeline_support::Story;
use std::time::Duration;

/// A loopback address on a port nobody listens on right now.
/// A free port below Linux's ephemeral range (32768–60999), as a user would register one:
/// a port from bind(0) may be taken again at any moment by another process's outgoing
/// connection, between a sign-in closing its listener and the next one binding it.
fn free_loopback(path: &str) -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::SeqCst) % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return format!("http://127.0.0.1:{port}{path}");
        }
    }
}

fn port_of(uri: &str) -> u16 {
    url::Url::parse(uri).unwrap().port().unwrap()
}

fn listening(uri: &str) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port_of(uri))).is_ok()
}

async fn card_status(app: &App, service: Destination) -> Option<SignInStatus> {
    app.integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.service == service)
        .unwrap()
        .sign_in
}

async fn connected_as(app: &App, service: Destination) -> Option<String> {
    app.integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.service == service)
        .unwrap()
        .connected_as
}

/// Waits (up to 20 s) for the card's sign-in to leave the waiting phase.
async fn settled(app: &App, service: Destination) -> Option<SignInStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = card_status(app, service).await;
        if s.as_ref().is_none_or(|s| s.phase != SignInPhase::Waiting) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service} sign-in never settled: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_oauth_service_signs_in_through_a_loopback_redirect() {
    let story = Story::start().await;
    let app = &story.app;
    for service in [
        Destination::Mapillary,
        Destination::Kartaview,
        Destination::Mtpw,
    ] {
        let uri = free_loopback("/callback");
        let chosen = app
            .set_redirect_uri(service, Some(uri.clone()))
            .await
            .unwrap();
        assert_eq!(chosen.as_deref(), Some(uri.as_str()));
        assert!(!listening(&uri), "nothing listens before the sign-in");

        let started = app.start_integration(service).await.unwrap();
        assert!(started.listening);
        assert_eq!(started.redirect_uri.as_deref(), Some(uri.as_str()));
        assert!(
            started
                .authorize_url
                .contains(&format!("redirect_uri={}", urlencode(&uri))),
            "{}",
            started.authorize_url
        );
        assert!(
            listening(&uri),
            "{service}: the app listens during the sign-in"
        );
        let waiting = card_status(app, service).await.unwrap();
        assert_eq!(waiting.phase, SignInPhase::Waiting);
        assert!(waiting.listening);

        // The emulator sends the browser to the registered loopback address.
        let location = mtp_app::sandbox_browser::approve(&started.authorize_url)
            .await
            .unwrap();
        assert!(location.starts_with(&uri), "{service}: {location}");
        if service == Destination::Mtpw {
            assert!(location.contains('#'), "implicit grant: {location}");
        }
        let (status, page) = mtp_app::sandbox_browser::follow(&location).await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("You can close this tab"), "{page}");
        assert!(
            connected_as(app, service).await.is_some(),
            "{service} is connected"
        );
        assert!(card_status(app, service).await.is_none());
        assert!(!listening(&uri), "{service}: the listener closed");
    }
    // The token exchanges repeated the loopback address (OSM checks it).
    let osm_token = story
        .sandbox()
        .requests()
        .into_iter()
        .find(|r| r.endpoint.as_deref() == Some("osm.token"))
        .unwrap();
    assert_eq!(osm_token.status, Some(200));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_loopback_reply_with_another_state_is_refused_and_the_listener_closes() {
    let story = Story::start().await;
    let app = &story.app;
    let uri = free_loopback("/cb");
    app.set_redirect_uri(Destination::Mapillary, Some(uri.clone()))
        .await
        .unwrap();
    let started = app.start_integration(Destination::Mapillary).await.unwrap();
    // Wrong path and a bare visit do not end the sign-in.
    let other = uri.replace("/cb", "/other?code=x&state=y");
    let (status, _) = mtp_app::sandbox_browser::follow(&other).await.unwrap();
    assert_eq!(status, 404);
    let (status, page) =
        mtp_app::sandbox_browser::follow(&format!("{uri}?code=stolen&state=forged"))
            .await
            .unwrap();
    assert_eq!(status, 400);
    assert!(page.contains("does not match"), "{page}");
    let card = settled(app, Destination::Mapillary).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Failed);
    let message = card.message.unwrap();
    assert!(message.contains("state does not match"), "{message}");
    assert!(message.contains(&uri), "{message}");
    assert!(!listening(&uri));
    assert_eq!(connected_as(app, Destination::Mapillary).await, None);
    // The real reply, later, finds nobody listening: nothing is accepted behind the user's back.
    let location = mtp_app::sandbox_browser::approve(&started.authorize_url)
        .await
        .unwrap();
    assert!(mtp_app::sandbox_browser::follow(&location).await.is_err());
    assert_eq!(connected_as(app, Destination::Mapillary).await, None);
}

#[tokio::test]
async fn a_busy_port_says_so_on_the_card() {
    let story = Story::start().await;
    let app = &story.app;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/callback",
        busy.local_addr().unwrap().port()
    );
    app.set_redirect_uri(Destination::Kartaview, Some(uri.clone()))
        .await
        .unwrap();
    let err = app
        .start_integration(Destination::Kartaview)
        .await
        .unwrap_err();
    assert_eq!(err.code, "port_in_use");
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Failed);
    let message = card.message.unwrap();
    assert!(
        message.contains(&format!("port {} is in use", port_of(&uri))),
        "{message}"
    );
    // No attempt was opened in the browser for a sign-in that cannot come back.
    assert!(
        !story
            .sandbox()
            .requests()
            .iter()
            .any(|r| r.endpoint.as_deref() == Some("osm.authorize"))
    );
    // Bad addresses are refused when chosen.
    for bad in [
        "http://localhost:8763/cb",
        "https://example.com/cb",
        "http://127.0.0.1/cb",
    ] {
        let e = app
            .set_redirect_uri(Destination::Kartaview, Some(bad.into()))
            .await
            .unwrap_err();
        assert_eq!(e.code, "invalid_input", "{bad}");
    }
    // Back to the app link.
    assert_eq!(
        app.set_redirect_uri(Destination::Kartaview, None)
            .await
            .unwrap()
            .as_deref(),
        Some("app.mtp.desktop://app")
    );
    drop(busy);
}

#[tokio::test]
async fn an_abandoned_loopback_sign_in_stops_listening() {
    let story = Story::start().await;
    let app = &story.app;
    app.set_sign_in_timeouts(SignInTimeouts {
        loopback: Duration::from_millis(300),
        ..SignInTimeouts::default()
    });
    let uri = free_loopback("/callback");
    app.set_redirect_uri(Destination::Mtpw, Some(uri.clone()))
        .await
        .unwrap();
    app.start_integration(Destination::Mtpw).await.unwrap();
    let card = settled(app, Destination::Mtpw).await.unwrap();
    let message = card.message.unwrap();
    assert!(message.contains("sign-in abandoned"), "{message}");
    assert!(message.contains(&uri), "{message}");
    assert!(message.contains("300 ms"), "{message}");
    assert!(!listening(&uri));

    // "Open sign-in again" while listening: the old listener closes, the new one gets the
    // port, and only the new attempt's reply is accepted.
    app.set_sign_in_timeouts(SignInTimeouts::default());
    let first = app.start_integration(Destination::Mtpw).await.unwrap();
    // A connection that sends nothing (a browser's preconnect) does not hold the sign-in up.
    let idle = std::net::TcpStream::connect(("127.0.0.1", port_of(&uri))).unwrap();
    let second = app.start_integration(Destination::Mtpw).await.unwrap();
    assert!(second.listening);
    let _idle2 = std::net::TcpStream::connect(("127.0.0.1", port_of(&uri))).unwrap();
    drop(idle);
    let stale = mtp_app::sandbox_browser::approve(&first.authorize_url)
        .await
        .unwrap();
    let (status, _) = mtp_app::sandbox_browser::follow(&stale).await.unwrap();
    assert_eq!(
        status, 400,
        "the first attempt's state is not this sign-in's"
    );
    assert_eq!(
        settled(app, Destination::Mtpw).await.unwrap().phase,
        SignInPhase::Failed
    );
    assert_eq!(connected_as(app, Destination::Mtpw).await, None);

    // Cancelling a waiting one closes it too.
    app.start_integration(Destination::Mtpw).await.unwrap();
    assert!(listening(&uri));
    app.cancel_sign_in(Destination::Mtpw).await.unwrap();
    tokio::task::yield_now().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listening(&uri) {
        assert!(std::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(card_status(app, Destination::Mtpw).await.is_none());
}

#[tokio::test]
async fn the_deep_link_sign_in_still_works_and_uses_the_address_it_started_with() {
    let story = Story::start().await;
    let app = &story.app;
    let started = app.start_integration(Destination::Kartaview).await.unwrap();
    assert!(!started.listening);
    assert_eq!(
        started.redirect_uri.as_deref(),
        Some("app.mtp.desktop://app")
    );
    // Choosing a loopback address meanwhile does not break the exchange of this attempt.
    app.set_redirect_uri(Destination::Kartaview, Some(free_loopback("/cb")))
        .await
        .unwrap();
    let link = mtp_app::sandbox_browser::approve(&started.authorize_url)
        .await
        .unwrap();
    let outcome = app.handle_deep_link(&link).await.unwrap();
    assert!(outcome.accepted, "{}", outcome.message);

    // A sign-in the user cancelled does not connect when its link comes back later.
    app.disconnect(Destination::Kartaview).await.unwrap();
    app.set_redirect_uri(Destination::Kartaview, None)
        .await
        .unwrap();
    let started = app.start_integration(Destination::Kartaview).await.unwrap();
    let link = mtp_app::sandbox_browser::approve(&started.authorize_url)
        .await
        .unwrap();
    app.cancel_sign_in(Destination::Kartaview).await.unwrap();
    let outcome = app.handle_deep_link(&link).await.unwrap();
    assert!(!outcome.accepted, "{}", outcome.message);
    assert_eq!(connected_as(app, Destination::Kartaview).await, None);
}

#[tokio::test]
async fn kartaview_refusing_our_osm_app_is_shown_verbatim_then_retried_or_replaced_by_a_token() {
    let story = Story::start().await;
    let app = &story.app;
    let sandbox = story.sandbox();
    sandbox
        .faults()
        .apply_spec("kartaview_refuse_osm_apps=400")
        .unwrap();
    let started = app.start_integration(Destination::Kartaview).await.unwrap();
    let link = mtp_app::sandbox_browser::approve(&started.authorize_url)
        .await
        .unwrap();
    let outcome = app.handle_deep_link(&link).await.unwrap();
    assert!(!outcome.accepted);
    assert!(
        outcome.message.contains(
            "\u{201c}Unexpected error. Please try again later.\u{201d} (HTTP 400, apiCode 690)"
        ),
        "{}",
        outcome.message
    );
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Failed);
    assert!(card.offer_token && card.can_retry);
    assert_eq!(connected_as(app, Destination::Kartaview).await, None);
    // The OSM token is kept on this side (never on the card).
    assert!(app.store().kartaview_osm_token().await.unwrap().is_some());
    let card_json = serde_json::to_string(&app.integrations().await.unwrap()).unwrap();
    let osm = app.store().kartaview_osm_token().await.unwrap().unwrap();
    assert!(!card_json.contains(osm.expose().as_str()));

    // 401 variant, retried without the browser: KartaView's words again.
    sandbox
        .faults()
        .apply_spec("kartaview_refuse_osm_apps=401")
        .unwrap();
    let e = app.retry_kartaview().await.unwrap_err();
    assert_eq!(e.code, "kartaview_refused");
    assert!(
        e.message
            .contains("\u{201c}Invalid access token\u{201d} (HTTP 401, apiCode 401)"),
        "{}",
        e.message
    );
    // Not JSON at all (a gateway's page): its text, not its markup, with the ways out.
    sandbox
        .faults()
        .apply_spec("kartaview_refuse_osm_apps=html")
        .unwrap();
    let e = app.retry_kartaview().await.unwrap_err();
    assert!(
        e.message.contains(
            "\u{201c}unexpected reply\u{201d}: 502 Bad Gateway 502 Bad Gateway nginx (HTTP 502)"
        ),
        "{}",
        e.message
    );
    assert!(!e.message.contains('<'), "{}", e.message);
    assert!(
        e.message
            .starts_with("KartaView could not take the OpenStreetMap sign-in just now."),
        "{}",
        e.message
    );
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert!(
        card.can_retry && card.offer_token && card.offer_kartaview_app,
        "{card:?}"
    );
    let authorizes = |sb: &mtp_sandbox::Sandbox| {
        sb.requests()
            .iter()
            .filter(|r| {
                matches!(
                    r.endpoint.as_deref(),
                    Some("osm.authorize" | "osm.authorize_decision" | "osm.token")
                )
            })
            .count()
    };
    let browser_rounds = authorizes(sandbox);

    // Once KartaView accepts the app, the kept OSM token is enough.
    sandbox
        .faults()
        .apply_spec("kartaview_refuse_osm_apps=off")
        .unwrap();
    let name = app.retry_kartaview().await.unwrap();
    assert_eq!(name, mtp_sandbox::SANDBOX_USERNAME);
    assert_eq!(authorizes(sandbox), browser_rounds, "no new browser round");
    assert!(card_status(app, Destination::Kartaview).await.is_none());

    // Disconnecting forgets the OSM token; then a pasted KartaView token connects.
    app.disconnect(Destination::Kartaview).await.unwrap();
    assert!(app.store().kartaview_osm_token().await.unwrap().is_none());
    assert!(app.retry_kartaview().await.is_err());
    // KartaView cannot tell whose a token is: without a username the account has none (no
    // made-up name KartaView would be asked about), and the card simply has no stats.
    let kv = sandbox.issue_token(mtp_sandbox::Service::KartaView, 0);
    let name = app
        .connect_with_token(Destination::Kartaview, &kv, Some("  "))
        .await
        .unwrap();
    assert_eq!(name, "");
    assert_eq!(
        connected_as(app, Destination::Kartaview).await.as_deref(),
        Some("")
    );
    assert!(app.kartaview_stats().await.unwrap().is_none());
    let account = app.access_token(Destination::Kartaview).await.unwrap();
    assert_eq!(account.access_token.expose(), &kv);
    // With the username given beside it, the card's stats come from KartaView.
    let name = app
        .connect_with_token(
            Destination::Kartaview,
            &kv,
            Some(mtp_sandbox::SANDBOX_USERNAME),
        )
        .await
        .unwrap();
    assert_eq!(name, mtp_sandbox::SANDBOX_USERNAME);
    let stats = app.kartaview_stats().await.unwrap().unwrap();
    assert_eq!(stats.username, mtp_sandbox::SANDBOX_USERNAME);
}

#[tokio::test]
async fn kartaview_refusing_our_osm_app_is_passed_through_kartaviews_own_app_with_a_pasted_code() {
    let story = Story::start().await;
    let app = &story.app;
    let sandbox = story.sandbox();
    sandbox
        .faults()
        .apply_spec("kartaview_refuse_osm_apps=401")
        .unwrap();
    let started = app.start_integration(Destination::Kartaview).await.unwrap();
    let link = mtp_app::sandbox_browser::approve(&started.authorize_url)
        .await
        .unwrap();
    assert!(!app.handle_deep_link(&link).await.unwrap().accepted);
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert!(card.offer_kartaview_app && card.offer_token, "{card:?}");
    assert!(
        card.message
            .as_deref()
            .unwrap()
            .contains("sign in through KartaView's own app"),
        "{card:?}"
    );

    // KartaView's own OSM app: OpenStreetMap shows a code, the user pastes it.
    let started = app.start_kartaview_app_sign_in(false).await.unwrap();
    assert_eq!(
        started.redirect_uri.as_deref(),
        Some("urn:ietf:wg:oauth:2.0:oob")
    );
    assert!(
        started
            .authorize_url
            .contains(mtp_sandbox::KARTAVIEW_OSM_CLIENT_ID)
    );
    assert!(!started.listening);
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Waiting);
    assert!(card.wants_code && !card.offer_kartaview_app, "{card:?}");
    let code = mtp_app::sandbox_browser::approve_code(&started.authorize_url)
        .await
        .unwrap();

    // A mistyped code: the sign-in keeps waiting, with OpenStreetMap's reason on the card.
    let e = app
        .finish_sign_in_with_code("not-the-code")
        .await
        .unwrap_err();
    assert_eq!(e.code, "code_refused");
    assert!(
        e.message.contains("OpenStreetMap did not accept this code"),
        "{}",
        e.message
    );
    assert!(e.message.contains("grant is invalid"), "{}", e.message);
    let card = card_status(app, Destination::Kartaview).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Waiting);
    assert_eq!(card.message.as_deref(), Some(e.message.as_str()));
    assert!(
        app.finish_sign_in_with_code(" \n").await.is_err(),
        "nothing pasted"
    );

    // The code as copied from the page, with a line break: connected, although KartaView
    // still refuses our own app.
    let name = app
        .finish_sign_in_with_code(&format!(" {code}\n"))
        .await
        .unwrap();
    assert_eq!(name, mtp_sandbox::SANDBOX_USERNAME);
    assert!(card_status(app, Destination::Kartaview).await.is_none());
    assert_eq!(
        connected_as(app, Destination::Kartaview).await.as_deref(),
        Some(mtp_sandbox::SANDBOX_USERNAME)
    );
    // The code was used once; a second paste finds no sign-in waiting.
    let e = app.finish_sign_in_with_code(&code).await.unwrap_err();
    assert!(
        e.message.contains("No KartaView sign-in is waiting"),
        "{}",
        e.message
    );

    // The kept OSM token is asked again with its own app's secret.
    assert_eq!(
        app.store().kartaview_osm_client().await.unwrap().as_deref(),
        Some(mtp_sandbox::KARTAVIEW_OSM_CLIENT_ID)
    );
    assert_eq!(
        app.retry_kartaview().await.unwrap(),
        mtp_sandbox::SANDBOX_USERNAME
    );

    // And the photos reach KartaView with that sign-in.
    let folder = story.photos("walk", 3, &pipeline_support::walk(0));
    let ids = story
        .import(
            &folder,
            "Through KartaView's app",
            &[Destination::Kartaview],
        )
        .await;
    story.start_engine();
    story.settle(&ids).await;
    pipeline_support::assert_kartaview_once(&story, ids[0], 3).await;
}

#[tokio::test]
async fn panoramax_integrates_by_claiming_a_generated_token() {
    let story = Story::start().await;
    let app = &story.app;
    app.set_sign_in_timeouts(SignInTimeouts {
        claim_poll: Duration::from_millis(20),
        ..SignInTimeouts::default()
    });
    let started = app.start_integration(Destination::Panoramax).await.unwrap();
    assert!(
        started.authorize_url.contains("/api/auth/tokens/")
            && started.authorize_url.ends_with("/claim"),
        "{}",
        started.authorize_url
    );
    assert_eq!(started.redirect_uri, None);
    let card = card_status(app, Destination::Panoramax).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Waiting);
    assert_eq!(
        card.page_url.as_deref(),
        Some(started.authorize_url.as_str())
    );
    // Polls are refused while the token is unclaimed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !story
        .sandbox()
        .requests()
        .iter()
        .any(|r| r.endpoint.as_deref() == Some("panoramax.me") && r.status == Some(403))
    {
        assert!(std::time::Instant::now() < deadline, "no poll seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connected_as(app, Destination::Panoramax).await, None);

    let page = mtp_app::sandbox_browser::claim(&started.authorize_url)
        .await
        .unwrap();
    assert!(page.contains("Token claimed"), "{page}");
    assert!(settled(app, Destination::Panoramax).await.is_none());
    assert_eq!(
        connected_as(app, Destination::Panoramax).await.as_deref(),
        Some(mtp_sandbox::SANDBOX_USERNAME)
    );
    // The claimed JWT is what the account uses.
    let generated = story
        .sandbox()
        .requests()
        .into_iter()
        .find(|r| r.endpoint.as_deref() == Some("panoramax.generate_token"))
        .unwrap();
    assert_eq!(generated.method, "POST");
    assert!(app.access_token(Destination::Panoramax).await.is_ok());
}

#[tokio::test]
async fn a_panoramax_claim_that_never_comes_gives_up_and_cancel_stops_waiting() {
    let story = Story::start().await;
    let app = &story.app;
    app.set_sign_in_timeouts(SignInTimeouts {
        claim: Duration::from_millis(400),
        claim_poll: Duration::from_millis(20),
        ..SignInTimeouts::default()
    });
    // The instance's claim page fails: the claim never comes.
    story
        .sandbox()
        .faults()
        .apply_spec("panoramax.claim_decision:status=503")
        .unwrap();
    let started = app.start_integration(Destination::Panoramax).await.unwrap();
    assert!(
        mtp_app::sandbox_browser::claim(&started.authorize_url)
            .await
            .is_err()
    );
    let card = settled(app, Destination::Panoramax).await.unwrap();
    assert_eq!(card.phase, SignInPhase::Failed);
    let message = card.message.unwrap();
    assert!(
        message.contains("was not claimed within 400 ms"),
        "{message}"
    );
    assert!(message.contains(&started.authorize_url), "{message}");
    assert_eq!(connected_as(app, Destination::Panoramax).await, None);

    // Cancel: the poll stops, so a claim after it connects nothing.
    story.sandbox().faults().clear();
    app.set_sign_in_timeouts(SignInTimeouts {
        claim_poll: Duration::from_millis(20),
        ..SignInTimeouts::default()
    });
    let started = app.start_integration(Destination::Panoramax).await.unwrap();
    app.cancel_sign_in(Destination::Panoramax).await.unwrap();
    assert!(card_status(app, Destination::Panoramax).await.is_none());
    mtp_app::sandbox_browser::claim(&started.authorize_url)
        .await
        .unwrap();
    let polls = |sb: &mtp_sandbox::Sandbox| {
        sb.requests()
            .iter()
            .filter(|r| r.endpoint.as_deref() == Some("panoramax.me"))
            .count()
    };
    let before = polls(story.sandbox());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(polls(story.sandbox()), before, "no poll after cancel");
    assert_eq!(connected_as(app, Destination::Panoramax).await, None);

    // Pasting a token stays possible.
    let jwt = story
        .sandbox()
        .issue_token(mtp_sandbox::Service::Panoramax, 0);
    app.connect_panoramax(None, Some(jwt)).await.unwrap();
    assert!(connected_as(app, Destination::Panoramax).await.is_some());
}

#[tokio::test]
async fn a_sign_in_denied_in_the_browser_comes_back_to_the_loopback_and_says_so() {
    let story = Story::start().await;
    let app = &story.app;
    let uri = free_loopback("/callback");
    app.set_redirect_uri(Destination::Mapillary, Some(uri.clone()))
        .await
        .unwrap();
    let started = app.start_integration(Destination::Mapillary).await.unwrap();
    let state = url::Url::parse(&started.authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // What the service sends when the user clicks Deny (PROTOCOLS §2.1).
    let (status, page) = mtp_app::sandbox_browser::follow(&format!(
        "{uri}?error=user_denied&error_description=The+user+denied&state={state}"
    ))
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Sign-in failed"), "{page}");
    let card = settled(app, Destination::Mapillary).await.unwrap();
    let message = card.message.unwrap();
    assert!(
        message.contains("was refused (user_denied: The user denied)"),
        "{message}"
    );
    assert!(!listening(&uri));
    assert_eq!(connected_as(app, Destination::Mapillary).await, None);
}
