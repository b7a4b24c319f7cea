//! The pipeline's decisions, as pure functions of stored state: what to run next, and how a
//! step's outcome changes the job. Table-tested; the worker only applies them.

use super::{ErrorKind, JobStatus, Stage, StepError, StepOutcome};
use crate::store::{JobRow, JobUpdate};
use serde::Serialize;

/// What the worker should do with a job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this stage now.
    Run(Stage),
    /// Nothing until this time (backoff, polling interval).
    WaitUntil(i64),
    /// Nothing until the user acts (paused, waiting for sign-in, failed, cancelled, done).
    Idle,
}

/// Retry policy: exponential backoff with full jitter and a cap, never sooner than the server
/// asked. There is no limit on attempts: trouble reaching a service (network, timeouts, 5xx,
/// 429) never uses a job up; the job waits for the service, trying again at most `cap_ms`
/// apart, and resumes by itself once the service answers. Only definite answers fail a job.
#[derive(Debug, Clone, Serialize)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub cap_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_ms: 1_000,
            cap_ms: 5 * 60_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based). `jitter` in [0, 1) spreads clients apart;
    /// the server's own delay (Retry-After, backoff) is a floor.
    pub fn delay_ms(&self, attempt: i64, server_after_ms: Option<i64>, jitter: f64) -> i64 {
        let exp = self
            .base_ms
            .saturating_mul(1_i64 << attempt.clamp(1, 30).saturating_sub(1).min(20));
        let ceiling = exp.min(self.cap_ms);
        // Half fixed, half jittered: never zero, never in lockstep.
        let jittered = ceiling / 2 + ((ceiling / 2) as f64 * jitter.clamp(0.0, 1.0)) as i64;
        jittered.max(asked_wait(server_after_ms))
    }
}

/// A wait the service asked for, plus 1 ms: the clock is read in whole milliseconds
/// (floored), so the wait counts from up to 1 ms before the reply arrived, and a retry must
/// never come before the time the service gave. 0 when it asked nothing.
fn asked_wait(server_after_ms: Option<i64>) -> i64 {
    server_after_ms.map_or(0, |ms| ms.max(0).saturating_add(1))
}

pub fn next_action(job: &JobRow, now: i64) -> Action {
    if !job.status.is_active() || job.stage == Stage::Done {
        return Action::Idle;
    }
    if job.next_run_at > now {
        Action::WaitUntil(job.next_run_at)
    } else {
        Action::Run(job.stage)
    }
}

/// How a step's result changes the job.
pub fn apply_outcome(
    job: &JobRow,
    stage: Stage,
    result: &Result<StepOutcome, StepError>,
    policy: &RetryPolicy,
    now: i64,
    jitter: f64,
) -> JobUpdate {
    match result {
        Ok(StepOutcome::Advance) => {
            let next = stage.next();
            JobUpdate {
                stage: Some(next),
                status: Some(if next == Stage::Done {
                    JobStatus::Done
                } else {
                    JobStatus::Pending
                }),
                attempts: Some(0),
                next_run_at: Some(now),
                not_before: Some(0),
                last_error: Some(None),
                remote_url: None,
            }
        }
        Ok(StepOutcome::Finish) => JobUpdate {
            stage: Some(Stage::Done),
            status: Some(JobStatus::Done),
            attempts: Some(0),
            next_run_at: Some(now),
            not_before: Some(0),
            last_error: Some(None),
            remote_url: None,
        },
        Ok(StepOutcome::Again { after_ms }) => JobUpdate {
            status: Some(JobStatus::Pending),
            attempts: Some(0),
            next_run_at: Some(now + after_ms.max(&0)),
            not_before: Some(0),
            last_error: Some(None),
            ..JobUpdate::default()
        },
        Ok(StepOutcome::AgainAt { at_ms }) => JobUpdate {
            status: Some(JobStatus::Pending),
            attempts: Some(0),
            next_run_at: Some(*at_ms.max(&now)),
            not_before: Some(0),
            last_error: Some(None),
            ..JobUpdate::default()
        },
        Err(StepError::Retry { after_ms, message }) => {
            let attempts = job.attempts + 1;
            JobUpdate {
                status: Some(JobStatus::Pending),
                attempts: Some(attempts),
                next_run_at: Some(now + policy.delay_ms(attempts, *after_ms, jitter)),
                // Kept apart from the backoff: another job's success may cut the backoff
                // short (`Store::wake_jobs_waiting_for`), never the service's own wait.
                not_before: Some(if after_ms.is_some() {
                    now.saturating_add(asked_wait(*after_ms))
                } else {
                    0
                }),
                last_error: Some(Some((ErrorKind::Retry, message.clone()))),
                ..JobUpdate::default()
            }
        }
        Err(StepError::Permanent { message }) => JobUpdate {
            status: Some(JobStatus::Failed),
            attempts: Some(job.attempts + 1),
            last_error: Some(Some((ErrorKind::Permanent, message.clone()))),
            ..JobUpdate::default()
        },
        Err(StepError::Auth { message }) => JobUpdate {
            status: Some(JobStatus::WaitingAuth),
            last_error: Some(Some((ErrorKind::Auth, message.clone()))),
            ..JobUpdate::default()
        },
        Err(StepError::Internal { message }) => JobUpdate {
            status: Some(JobStatus::Failed),
            attempts: Some(job.attempts + 1),
            last_error: Some(Some((ErrorKind::Internal, message.clone()))),
            ..JobUpdate::default()
        },
        Err(StepError::Interrupted) => JobUpdate {
            // Paused or cancelled by the user meanwhile: the status they set stays.
            ..JobUpdate::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Destination;

    fn job(stage: Stage, status: JobStatus, next_run_at: i64, attempts: i64) -> JobRow {
        JobRow {
            id: 1,
            sequence_id: 1,
            destination: Destination::Mapillary,
            stage,
            status,
            attempts,
            next_run_at,
            not_before: 0,
            last_error: None,
            last_error_kind: None,
            remote_json: "{}".into(),
            remote_url: None,
            photos_total: 0,
            photos_done: 0,
            bytes_total: 0,
            bytes_done: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn next_action_table() {
        let now = 1_000;
        let cases = [
            (
                job(Stage::Prepare, JobStatus::Pending, 0, 0),
                Action::Run(Stage::Prepare),
            ),
            (
                job(Stage::Upload, JobStatus::Pending, 999, 0),
                Action::Run(Stage::Upload),
            ),
            (
                job(Stage::Upload, JobStatus::Pending, 5_000, 2),
                Action::WaitUntil(5_000),
            ),
            (
                job(Stage::Poll, JobStatus::Running, 0, 0),
                Action::Run(Stage::Poll),
            ),
            (job(Stage::Upload, JobStatus::Paused, 0, 0), Action::Idle),
            (
                job(Stage::Upload, JobStatus::WaitingAuth, 0, 0),
                Action::Idle,
            ),
            (job(Stage::Upload, JobStatus::Failed, 0, 0), Action::Idle),
            (job(Stage::Upload, JobStatus::Cancelled, 0, 0), Action::Idle),
            (job(Stage::Done, JobStatus::Done, 0, 0), Action::Idle),
            (job(Stage::Done, JobStatus::Pending, 0, 0), Action::Idle),
        ];
        for (j, want) in cases {
            assert_eq!(next_action(&j, now), want, "{} {}", j.stage, j.status);
        }
    }

    #[test]
    fn outcomes_move_the_job_as_expected() {
        let p = RetryPolicy::default();
        let j = job(Stage::Upload, JobStatus::Running, 0, 3);
        let adv = apply_outcome(&j, Stage::Upload, &Ok(StepOutcome::Advance), &p, 10, 0.5);
        assert_eq!(adv.stage, Some(Stage::Publish));
        assert_eq!(adv.status, Some(JobStatus::Pending));
        assert_eq!(adv.attempts, Some(0));

        let last = apply_outcome(
            &job(Stage::Sync, JobStatus::Running, 0, 0),
            Stage::Sync,
            &Ok(StepOutcome::Advance),
            &p,
            10,
            0.5,
        );
        assert_eq!(last.stage, Some(Stage::Done));
        assert_eq!(last.status, Some(JobStatus::Done));

        let again = apply_outcome(
            &j,
            Stage::Poll,
            &Ok(StepOutcome::Again { after_ms: 500 }),
            &p,
            10,
            0.5,
        );
        assert_eq!(again.next_run_at, Some(510));
        let at = apply_outcome(
            &j,
            Stage::Poll,
            &Ok(StepOutcome::AgainAt { at_ms: 400 }),
            &p,
            10,
            0.5,
        );
        assert_eq!(at.next_run_at, Some(400), "an absolute deadline stays put");
        assert_eq!(again.stage, None);

        let retry = apply_outcome(
            &j,
            Stage::Upload,
            &Err(StepError::Retry {
                after_ms: Some(60_000),
                message: "429".into(),
            }),
            &p,
            10,
            0.0,
        );
        assert_eq!(retry.attempts, Some(4));
        assert_eq!(retry.status, Some(JobStatus::Pending));
        assert!(
            retry.next_run_at.is_some_and(|t| t >= 60_010),
            "server delay is a floor"
        );
        assert_eq!(
            retry.not_before,
            Some(60_011),
            "and is kept apart from the backoff"
        );

        // However long a service stays away, the job keeps waiting for it, at most
        // `cap_ms` between tries.
        let long_outage = apply_outcome(
            &job(Stage::Upload, JobStatus::Running, 0, 10_000),
            Stage::Upload,
            &Err(StepError::Retry {
                after_ms: None,
                message: "503".into(),
            }),
            &p,
            10,
            1.0,
        );
        assert_eq!(long_outage.status, Some(JobStatus::Pending));
        assert_eq!(long_outage.next_run_at, Some(10 + p.cap_ms));
        assert_eq!(long_outage.not_before, Some(0), "nothing asked: no floor");
        assert_eq!(
            long_outage.last_error,
            Some(Some((ErrorKind::Retry, "503".into())))
        );

        let internal = apply_outcome(
            &j,
            Stage::Upload,
            &Err(StepError::Internal {
                message: "Internal error in Mapillary, upload: boom".into(),
            }),
            &p,
            10,
            0.0,
        );
        assert_eq!(internal.status, Some(JobStatus::Failed));
        assert!(matches!(
            internal.last_error,
            Some(Some((ErrorKind::Internal, _)))
        ));

        let perm = apply_outcome(
            &j,
            Stage::Upload,
            &Err(StepError::Permanent {
                message: "bad".into(),
            }),
            &p,
            10,
            0.0,
        );
        assert_eq!(perm.status, Some(JobStatus::Failed));
        let auth = apply_outcome(
            &j,
            Stage::Upload,
            &Err(StepError::Auth {
                message: "401".into(),
            }),
            &p,
            10,
            0.0,
        );
        assert_eq!(auth.status, Some(JobStatus::WaitingAuth));
        let intr = apply_outcome(&j, Stage::Upload, &Err(StepError::Interrupted), &p, 10, 0.0);
        assert!(intr.status.is_none() && intr.stage.is_none());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            base_ms: 1_000,
            cap_ms: 30_000,
        };
        assert_eq!(p.delay_ms(1, None, 0.0), 500);
        assert_eq!(p.delay_ms(1, None, 1.0), 1_000);
        assert_eq!(p.delay_ms(3, None, 1.0), 4_000);
        assert_eq!(p.delay_ms(30, None, 1.0), 30_000);
        assert!(p.delay_ms(30, None, 0.0) >= 15_000);
        // The service's wait, never a millisecond short (the clock reads whole ms).
        assert_eq!(p.delay_ms(1, Some(7_000), 0.0), 7_001);
        let a = p.delay_ms(4, None, 0.1);
        let b = p.delay_ms(4, None, 0.9);
        assert!(a < b);
    }
}
