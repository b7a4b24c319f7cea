//! Story: tokens stay in Rust. A whole sandbox run (sign in to every service, import, upload
//! everywhere, refresh an expired token) is logged at trace level and every event and reply
//! the window could see is recorded; no token the store holds appears in any of them.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use pipeline_support::{Story, walk};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Every log line, whatever its level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_a_log_line_an_event_or_a_reply() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    let story = Story::start().await;
    let mut events = story.app.subscribe();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                seen.lock()
                    .unwrap()
                    .push(serde_json::to_string(&e).unwrap());
            }
        })
    };
    // Mapillary's token expires before the upload (the others are connected after): the
    // refresh, and the distinct refresh token the emulator gives behind its knob, must not
    // leak either.
    story
        .sandbox()
        .faults()
        .apply_spec("mapillary_refresh_tokens=issue")
        .unwrap();
    story.connect(&[Destination::Mapillary]).await;
    story.sandbox().faults().expire_tokens();
    story
        .connect(&[
            Destination::Kartaview,
            Destination::Panoramax,
            Destination::Mtpw,
        ])
        .await;
    let folder = story.photos("walk", 6, &walk(21));
    let ids = story
        .import(&folder, "Walk with secrets", &Destination::ALL)
        .await;
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );

    // What the window reads: the replies of its commands.
    let mut replies = vec![
        serde_json::to_string(&story.app.integrations().await.unwrap()).unwrap(),
        serde_json::to_string(&story.app.overview()).unwrap(),
        serde_json::to_string(&story.app.sequences().await.unwrap()).unwrap(),
    ];
    for id in &ids {
        replies.push(serde_json::to_string(&story.app.sequence(*id).await.unwrap()).unwrap());
    }
    recorder.abort();

    let accounts = story.app.store().accounts().await.unwrap();
    assert_eq!(accounts.len(), 4, "every service is connected");
    let mut secrets: Vec<String> = Vec::new();
    for a in &accounts {
        secrets.push(a.access_token.expose().clone());
        if let Some(r) = &a.refresh_token {
            secrets.push(r.expose().clone());
        }
    }
    // Tokens the emulators issued along the way (before refreshes) count too.
    secrets.extend(story.sandbox().state().issued_tokens());
    assert!(
        secrets.iter().filter(|t| t.starts_with("MLY|")).count() >= 2,
        "the expired Mapillary token was refreshed"
    );
    secrets.retain(|s| s.len() >= 8);
    assert!(!secrets.is_empty());

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.lines().count() > 100, "trace logging was not captured");
    let seen = seen.lock().unwrap().join("\n");
    assert!(!seen.is_empty());
    for s in &secrets {
        let short = &s[..6];
        assert!(
            !logs.contains(s.as_str()),
            "a token ({short}…) is in the logs"
        );
        assert!(
            !seen.contains(s.as_str()),
            "a token ({short}…) is in an event"
        );
        for r in &replies {
            assert!(!r.contains(s.as_str()), "a token ({short}…) is in a reply");
        }
    }
}
