//! The worker with stand-in drivers: a driver that panics fails its job and says where, and a
//! service that answers again wakes every job that was waiting for it.

#![allow(clippy::unwrap_used)]

use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::clock::{Clock, ManualClock, SharedClock};
use mtp_core::engine::{
    Driver, Engine, EngineConfig, ErrorKind, JobCtx, JobStatus, RetryPolicy, Stage, StepError,
    StepOutcome,
};
use mtp_core::secret::Secret;
use mtp_core::store::{Account, JobRow, JobUpdate, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const T0: i64 = 1_700_000_000_000;

/// A sequence of three photos, saved, with a job for each of `destinations`.
async fn sequence(store: &Store, folder: &str, destinations: &[Destination]) -> Vec<i64> {
    let id = mtp_core::photo::fixture::save_walk(store, folder, T0).await;
    store.create_jobs(id, destinations, T0).await.unwrap()
}

struct Panicking;

impl Driver for Panicking {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        _ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            if stage == Stage::Upload {
                panic!("index out of bounds: the len is 0 but the index is 3");
            }
            Ok(StepOutcome::Advance)
        })
    }
}

/// A service that is down while `down` is set: every stage answers "try later".
struct Flaky {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Driver for Flaky {
    fn run<'a>(
        &'a self,
        _stage: Stage,
        _job: &'a JobRow,
        _ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(StepError::retry("connection refused"))
            } else {
                Ok(StepOutcome::Advance)
            }
        })
    }
}

fn engine(
    store: &Store,
    clock: SharedClock,
    drivers: Vec<(Destination, Arc<dyn Driver>)>,
) -> Engine {
    Engine::new(
        store.clone(),
        clock,
        drivers.into_iter().collect::<HashMap<_, _>>(),
        EngineConfig {
            retry: RetryPolicy {
                base_ms: 1_000,
                cap_ms: 5 * 60_000,
            },
            idle_poll_ms: 20,
            ..EngineConfig::default()
        },
        Arc::new(|_| {}),
    )
}

/// An engine on `clock` whose only service, KartaView, is played by `driver`.
fn kartaview_engine(store: &Store, clock: &ManualClock, driver: impl Driver + 'static) -> Engine {
    engine(
        store,
        Arc::new(clock.clone()),
        vec![(Destination::Kartaview, Arc::new(driver))],
    )
}

/// Waits until `reached` holds, 10 s at most (the caller asserts it).
async fn until(reached: impl Fn() -> bool) {
    for _ in 0..2_000 {
        if reached() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `engine` in the background; send `true` to stop it, then await the handle.
fn started(
    engine: &Engine,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), mtp_core::store::StoreError>>,
) {
    let (stop, shutdown) = watch::channel(false);
    let engine = engine.clone();
    (
        stop,
        tokio::spawn(async move { engine.run(shutdown).await }),
    )
}

async fn wait_for(store: &Store, id: i64, what: impl Fn(&JobRow) -> bool) -> JobRow {
    for _ in 0..2_000 {
        let job = store.job(id).await.unwrap().unwrap();
        if what(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never got there: {:?}", store.job(id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_driver_fails_its_job_and_the_worker_goes_on() {
    let store = Store::open_in_memory().await.unwrap();
    let jobs = sequence(
        &store,
        "/walk",
        &[Destination::Mapillary, Destination::Kartaview],
    )
    .await;
    let clock = ManualClock::at(T0);
    let healthy = Arc::new(Flaky {
        down: Arc::new(AtomicBool::new(false)),
        calls: Arc::new(AtomicUsize::new(0)),
    });
    let engine = engine(
        &store,
        Arc::new(clock.clone()),
        vec![
            (Destination::Mapillary, Arc::new(Panicking)),
            (Destination::Kartaview, healthy),
        ],
    );
    let (stop, running) = started(&engine);

    let failed = wait_for(&store, jobs[0], |j| j.status == JobStatus::Failed).await;
    assert_eq!(failed.stage, Stage::Upload);
    assert_eq!(failed.last_error_kind, Some(ErrorKind::Internal));
    assert_eq!(
        failed.last_error.as_deref(),
        Some(
            "Internal error in Mapillary, upload: index out of bounds: the len is 0 but the index is 3"
        )
    );
    // The other destination is not held up by it.
    wait_for(&store, jobs[1], |j| j.status == JobStatus::Done).await;
    let events = store.events(None, 100).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "internal_error" && e.job_id == Some(jobs[0])),
        "{events:#?}"
    );

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_waiting_for_a_service_never_give_up_and_resume_when_it_answers() {
    let store = Store::open_in_memory().await.unwrap();
    let a = sequence(&store, "/a", &[Destination::Kartaview]).await[0];
    let b = sequence(&store, "/b", &[Destination::Kartaview]).await[0];
    let clock = ManualClock::at(T0);
    let down = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = kartaview_engine(
        &store,
        &clock,
        Flaky {
            down: down.clone(),
            calls: calls.clone(),
        },
    );
    let (stop, running) = started(&engine);

    // Thirty minutes of outage on the injected clock, from one try to the next: the jobs
    // keep waiting, never more than five minutes between tries, and never fail.
    while clock.now_ms() - T0 <= 30 * 60_000 {
        let job = wait_for(&store, a, |j| {
            j.status == JobStatus::Pending && j.next_run_at > clock.now_ms()
        })
        .await;
        assert!(job.next_run_at - clock.now_ms() <= 5 * 60_000, "{job:?}");
        assert_eq!(job.last_error_kind, Some(ErrorKind::Retry));
        clock.set_ms(job.next_run_at);
    }
    let a_row = store.job(a).await.unwrap().unwrap();
    assert!(a_row.attempts > 12, "{a_row:?}");
    for id in [a, b] {
        let job = store.job(id).await.unwrap().unwrap();
        assert!(job.status.is_active(), "{job:?}");
        assert_eq!(job.last_error.as_deref(), Some("connection refused"));
    }

    // `b` is told to wait another hour; the service comes back, `a` gets through, and `b`
    // is woken by it instead of sleeping out its backoff.
    wait_for(&store, b, |j| j.status == JobStatus::Pending).await;
    store
        .update_job(
            b,
            &JobUpdate {
                next_run_at: Some(clock.now_ms() + 3_600_000),
                ..JobUpdate::default()
            },
            None,
            clock.now_ms(),
        )
        .await
        .unwrap();
    down.store(false, Ordering::SeqCst);
    let due = wait_for(&store, a, |j| j.status == JobStatus::Pending)
        .await
        .next_run_at;
    clock.set_ms(due.max(clock.now_ms()));
    wait_for(&store, a, |j| j.status == JobStatus::Done).await;
    let done = wait_for(&store, b, |j| j.status == JobStatus::Done).await;
    assert!(done.updated_at < due + 3_600_000, "{done:?}");
    assert_eq!(done.last_error, None);
    assert!(calls.load(Ordering::SeqCst) > 24);

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

/// A service that tells one job's upload to wait a minute (a 429 with Retry-After: 60) and
/// lets everything else through: the other job's upload only once the first was told.
struct RateLimitsOne {
    limited: i64,
    uploads_of_limited: Arc<AtomicUsize>,
}

impl Driver for RateLimitsOne {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            if stage != Stage::Upload {
                return Ok(StepOutcome::Advance);
            }
            if ctx.job_id == self.limited {
                if self.uploads_of_limited.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(StepError::Retry {
                        after_ms: Some(60_000),
                        message: "429 Too Many Requests".into(),
                    });
                }
                return Ok(StepOutcome::Advance);
            }
            while ctx
                .store
                .job(self.limited)
                .await?
                .and_then(|j| j.last_error_kind)
                != Some(ErrorKind::Retry)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(StepOutcome::Advance)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_job_getting_through_never_wakes_a_job_before_the_service_allows() {
    let store = Store::open_in_memory().await.unwrap();
    let limited = sequence(&store, "/a", &[Destination::Kartaview]).await[0];
    let other = sequence(&store, "/b", &[Destination::Kartaview]).await[0];
    let clock = ManualClock::at(T0);
    let uploads_of_limited = Arc::new(AtomicUsize::new(0));
    let engine = kartaview_engine(
        &store,
        &clock,
        RateLimitsOne {
            limited,
            uploads_of_limited: uploads_of_limited.clone(),
        },
    );
    let (stop, running) = started(&engine);

    // The other job's upload, publish and poll get through after the limited one was told
    // to wait: each wakes the jobs waiting for KartaView, but not before the minute is up.
    wait_for(&store, other, |j| j.status == JobStatus::Done).await;
    let waiting = store.job(limited).await.unwrap().unwrap();
    assert_eq!(waiting.status, JobStatus::Pending, "{waiting:?}");
    assert_eq!(waiting.not_before, T0 + 60_001, "{waiting:?}");
    assert_eq!(waiting.next_run_at, T0 + 60_001, "{waiting:?}");
    assert_eq!(uploads_of_limited.load(Ordering::SeqCst), 1);

    // The minute is up: it goes on.
    clock.set_ms(T0 + 60_001);
    let done = wait_for(&store, limited, |j| j.status == JobStatus::Done).await;
    assert_eq!(done.last_error, None);
    assert_eq!(uploads_of_limited.load(Ordering::SeqCst), 2);

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

/// A stage that does not stop when asked (a request in flight that is not watched for a
/// pause) until the test opens `gate`; every stage run is written down.
struct Unwinding {
    slow: i64,
    gate: Arc<tokio::sync::Semaphore>,
    runs: Arc<std::sync::Mutex<Vec<(i64, Stage)>>>,
}

impl Driver for Unwinding {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            self.runs.lock().unwrap().push((ctx.job_id, stage));
            if ctx.job_id == self.slow && stage == Stage::Upload {
                self.gate.acquire().await.unwrap().forget();
            }
            Ok(StepOutcome::Advance)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paused_and_resumed_mid_stage_is_not_run_twice_at_once() {
    let store = Store::open_in_memory().await.unwrap();
    let slow = sequence(&store, "/a", &[Destination::Kartaview]).await[0];
    let clock = ManualClock::at(T0);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let engine = kartaview_engine(
        &store,
        &clock,
        Unwinding {
            slow,
            gate: gate.clone(),
            runs: runs.clone(),
        },
    );
    let (stop, running) = started(&engine);
    let uploads = |runs: &std::sync::Mutex<Vec<(i64, Stage)>>| {
        runs.lock()
            .unwrap()
            .iter()
            .filter(|r| **r == (slow, Stage::Upload))
            .count()
    };
    until(|| uploads(&runs) == 1).await;
    assert_eq!(uploads(&runs), 1);

    // Pause, then resume at once, while the upload is still under way: the job is pending
    // again, and due.
    let now = clock.now_ms();
    let paused = store
        .set_jobs_status(
            &[slow],
            &[JobStatus::Pending, JobStatus::Running],
            JobStatus::Paused,
            now,
        )
        .await
        .unwrap();
    assert_eq!(paused.len(), 1);
    engine.interrupt(&[slow]);
    store
        .set_jobs_status(&[slow], &[JobStatus::Paused], JobStatus::Pending, now)
        .await
        .unwrap();
    engine.wake();
    // A job queued after it, due at the same time, runs: the engine has looked at the
    // queue and passed the resumed job over while its upload is still running.
    let other = sequence(&store, "/b", &[Destination::Kartaview]).await[0];
    wait_for(&store, other, |j| j.status == JobStatus::Done).await;
    assert_eq!(uploads(&runs), 1, "{:?}", runs.lock().unwrap());

    // The upload ends: its outcome is kept, and the job goes on from the next stage.
    gate.add_permits(1);
    let done = wait_for(&store, slow, |j| j.status == JobStatus::Done).await;
    assert_eq!(done.last_error, None);
    assert_eq!(uploads(&runs), 1, "{:?}", runs.lock().unwrap());

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

fn kartaview_account(token: &str) -> Account {
    Account {
        service: Destination::Kartaview,
        user_id: Some("7".into()),
        username: Some("tester".into()),
        access_token: Secret::from(token),
        refresh_token: None,
        expires_at: None,
        needs_reauth: false,
        instance_url: None,
        reauth_reason: None,
    }
}

/// A service that refuses the first two uploads' token; during the second, the user signs
/// in again (as Integrate would, while the stage waits for the reply). Later uploads go
/// through.
struct RefusesTwice {
    uploads: Arc<AtomicUsize>,
}

impl Driver for RefusesTwice {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            if stage != Stage::Upload {
                return Ok(StepOutcome::Advance);
            }
            let refused = StepError::Auth {
                message: "KartaView refused the token".into(),
            };
            match self.uploads.fetch_add(1, Ordering::SeqCst) {
                0 => Err(refused),
                1 => {
                    let now = ctx.clock.now_ms();
                    ctx.store
                        .save_account(&kartaview_account("token-of-the-new-sign-in"), now)
                        .await
                        .unwrap();
                    ctx.store
                        .release_waiting_auth(Destination::Kartaview, now)
                        .await
                        .unwrap();
                    Err(refused)
                }
                _ => Ok(StepOutcome::Advance),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_never_undoes_a_sign_in_made_while_the_stage_ran() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .save_account(&kartaview_account("first-token"), T0)
        .await
        .unwrap();
    let id = sequence(&store, "/a", &[Destination::Kartaview]).await[0];
    let clock = ManualClock::at(T0);
    let uploads = Arc::new(AtomicUsize::new(0));
    let engine = kartaview_engine(
        &store,
        &clock,
        RefusesTwice {
            uploads: uploads.clone(),
        },
    );
    let (stop, running) = started(&engine);

    // Refused, nobody signed in meanwhile: the account needs a new sign-in, the job waits.
    wait_for(&store, id, |j| j.status == JobStatus::WaitingAuth).await;
    let account = store
        .account(Destination::Kartaview)
        .await
        .unwrap()
        .unwrap();
    assert!(account.needs_reauth);

    // The user signs in; the job tries again, and while its upload waits for the service
    // the user signs in once more. The refusal was of the token before: the new sign-in
    // stays good, and the job tries again with it instead of waiting for another.
    store
        .save_account(&kartaview_account("second-token"), clock.now_ms())
        .await
        .unwrap();
    store
        .release_waiting_auth(Destination::Kartaview, clock.now_ms())
        .await
        .unwrap();
    engine.wake();
    let retrying = wait_for(&store, id, |j| {
        j.status == JobStatus::WaitingAuth
            || (j.status == JobStatus::Pending && j.last_error_kind == Some(ErrorKind::Retry))
    })
    .await;
    assert_eq!(retrying.status, JobStatus::Pending, "{retrying:?}");
    let account = store
        .account(Destination::Kartaview)
        .await
        .unwrap()
        .unwrap();
    assert!(!account.needs_reauth);
    assert_eq!(account.access_token.expose(), "token-of-the-new-sign-in");

    clock.set_ms(retrying.next_run_at.max(clock.now_ms()));
    engine.wake();
    let done = wait_for(&store, id, |j| j.status == JobStatus::Done).await;
    assert_eq!(done.last_error, None);
    assert_eq!(uploads.load(Ordering::SeqCst), 3);

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

/// An upload that goes on until it is interrupted (or a minute has passed).
struct UntilInterrupted {
    started: Arc<AtomicUsize>,
    interrupted: Arc<AtomicUsize>,
}

impl Driver for UntilInterrupted {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            if stage != Stage::Upload {
                return Ok(StepOutcome::Advance);
            }
            self.started.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                _ = ctx.interrupted() => {
                    self.interrupted.fetch_add(1, Ordering::SeqCst);
                    Err(StepError::Interrupted)
                }
                _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(StepOutcome::Advance),
            }
        })
    }
}

/// Another process sharing the database (the window while `mtp upload` runs the uploads)
/// pauses one running job and cancels another: it can only write their rows, yet both
/// uploads stop here, and the statuses it set stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_paused_or_cancelled_by_another_process_stop_here_too() {
    let store = Store::open_in_memory().await.unwrap();
    let paused = sequence(&store, "/a", &[Destination::Kartaview]).await[0];
    let cancelled = sequence(&store, "/b", &[Destination::Kartaview]).await[0];
    let clock = ManualClock::at(T0);
    let started_uploads = Arc::new(AtomicUsize::new(0));
    let interrupted = Arc::new(AtomicUsize::new(0));
    let engine = kartaview_engine(
        &store,
        &clock,
        UntilInterrupted {
            started: started_uploads.clone(),
            interrupted: interrupted.clone(),
        },
    );
    let (stop, running) = started(&engine);
    until(|| started_uploads.load(Ordering::SeqCst) == 2).await;
    assert_eq!(started_uploads.load(Ordering::SeqCst), 2);

    // What the other process does: its own engine is not running, so only the rows change.
    let other = store.clone();
    let now = clock.now_ms();
    let from = [JobStatus::Pending, JobStatus::Running];
    other
        .set_jobs_status(&[paused], &from, JobStatus::Paused, now)
        .await
        .unwrap();
    other
        .set_jobs_status(&[cancelled], &from, JobStatus::Cancelled, now)
        .await
        .unwrap();

    until(|| interrupted.load(Ordering::SeqCst) == 2).await;
    assert_eq!(interrupted.load(Ordering::SeqCst), 2);
    assert_eq!(
        store.job(paused).await.unwrap().unwrap().status,
        JobStatus::Paused
    );
    assert_eq!(
        store.job(cancelled).await.unwrap().unwrap().status,
        JobStatus::Cancelled
    );
    assert_eq!(
        started_uploads.load(Ordering::SeqCst),
        2,
        "nothing ran again"
    );

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}
