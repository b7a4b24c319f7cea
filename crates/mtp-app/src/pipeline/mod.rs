//! The upload pipeline as the app runs it: one [`Driver`] per destination (the child
//! modules), the engine's life (start, shutdown) and waiting for jobs to settle.
//!
//! Every driver follows the same rules:
//! - a stage can be run again at any time (after a crash, a retry, a pause) and then only
//!   does what the remote does not have yet;
//! - every remote id is saved on the job (`remote_json`) or its photo item the moment the
//!   remote returns it, before anything else is done with it;
//! - provider errors keep their meaning: retry (with the server's delay), permanent (with
//!   the server's words), auth (the engine parks the job until the user integrates again);
//! - a photo that fails for good is named in the job's error and keeps its own error on its
//!   item, while the other photos go on; the job then fails and "retry" sends only what is
//!   missing.
//!
//! What each job's `remote_json` holds is one typed struct per destination, in
//! [`crate::remote`]; drivers change it through [`Remote::update`].
//!
//! Per photo (`job_items`): Mapillary `remote_key` = upload key `mly_tools_<md5>.jpg` (saved
//! before the first byte), `remote_id` = file handle; KartaView `remote_key` =
//! `sequenceIndex`, `remote_id` = photo id; Panoramax `remote_key` = file name,
//! `remote_id` = picture id.

mod errors;
mod follow;
mod items;
pub(crate) mod kartaview;
mod lifecycle;
pub(crate) mod mapillary;
mod mapillary_zip;
pub(crate) use mapillary_zip::sweep_zips;
pub mod mtpw;
pub(crate) mod panoramax;
mod remote_state;
mod transfer;

pub(crate) use errors::{account, app_step_error, item_error, provider_step_error};
pub(crate) use items::{
    check_files, check_size, count_items, photo_of, photo_source, photos_by_id,
    read_photo_blocking, run_items, unsent,
};
pub(crate) use lifecycle::{Shared, Worker};
pub(crate) use remote_state::{Remote, remote_ids_of};
pub(crate) use transfer::watched;

/// How the drivers pace themselves. The engine's own settings (jobs and transfers at once,
/// retry policy) are in [`mtp_core::engine::EngineConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Photos of one job sent at once (each also holds one of the engine's transfer slots).
    pub parallel_uploads: usize,
    /// Photos per Mapillary manifest (one `finish_upload`, one cluster, one sequence).
    pub mapillary_chunk: usize,
    /// First wait between two looks at a service's processing state; doubles up to
    /// `poll_max_ms`.
    pub poll_first_ms: i64,
    pub poll_max_ms: i64,
    /// Panoramax prepares pictures in seconds (PROTOCOLS §4.4: 200 pictures ready about
    /// 4 s after the upload set is completed), so its first look comes sooner; the waits
    /// then double up to `poll_max_ms` as the others do.
    pub panoramax_poll_first_ms: i64,
    /// After this long without the service showing the published sequence, stop looking
    /// (the job ends with a note; the upload itself is done).
    pub publish_timeout_ms: i64,
    /// How often Map the Paths Web looks whether Mapillary has published the sequence.
    pub mtpw_wait_ms: i64,
    /// Mapillary's processing stages are read this often for `mapillary_fast_window_ms`
    /// after `finish_upload`, then every `mapillary_poll_slow_ms`.
    pub mapillary_poll_fast_ms: i64,
    pub mapillary_fast_window_ms: i64,
    pub mapillary_poll_slow_ms: i64,
    /// When Map the Paths Web's server cannot check the Mapillary account, the waits
    /// before each new try (all within a day of the first failure); then the job ends
    /// created but not linked.
    pub mtpw_link_retry_ms: Vec<i64>,
    /// After a `finish_upload` whose reply was lost, when neither the activity feed nor
    /// the published photos can tell whether it made the cluster: how long its photos are
    /// looked for before it is sent again (which, had the first gone through, would
    /// publish them twice). A multiple of the service's usual processing time.
    pub mapillary_unsure_finish_wait_ms: i64,
}

impl PipelineOptions {
    /// Against the real services: Mapillary publishes "usually within 72 h" (PROTOCOLS §2.6).
    pub fn live() -> PipelineOptions {
        PipelineOptions {
            parallel_uploads: 4,
            mapillary_chunk: mtp_core::plan::MAPILLARY_MAX_SEQUENCE_PHOTOS,
            poll_first_ms: 30_000,
            poll_max_ms: 10 * 60_000,
            panoramax_poll_first_ms: 2_000,
            publish_timeout_ms: 72 * 3_600_000,
            mtpw_wait_ms: 60_000,
            mapillary_poll_fast_ms: 30_000,
            mapillary_fast_window_ms: 5 * 60_000,
            mapillary_poll_slow_ms: 15 * 60_000,
            mtpw_link_retry_ms: vec![3_600_000, 4 * 3_600_000, 12 * 3_600_000],
            mapillary_unsure_finish_wait_ms: 24 * 3_600_000,
        }
    }

    /// Against the built-in emulators, which process in seconds.
    pub fn sandbox() -> PipelineOptions {
        PipelineOptions {
            poll_first_ms: 500,
            poll_max_ms: 5_000,
            panoramax_poll_first_ms: 500,
            mtpw_wait_ms: 500,
            mapillary_poll_fast_ms: 250,
            mapillary_fast_window_ms: 60_000,
            mapillary_poll_slow_ms: 2_000,
            mapillary_unsure_finish_wait_ms: 60_000,
            ..PipelineOptions::live()
        }
    }

    /// The wait before look number `polls` (0-based) at a processing state, the first
    /// one `first_ms` after it was asked for.
    pub(crate) fn poll_delay(&self, first_ms: i64, polls: i64) -> i64 {
        let doubled = first_ms.max(1).saturating_mul(1_i64 << polls.clamp(0, 30));
        doubled.min(self.poll_max_ms.max(first_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::items::worst;
    use super::*;
    use crate::AppError;
    use mtp_core::Destination;
    use mtp_core::engine::StepError;
    use mtp_providers::{ErrorKind, ProviderError};
    use std::time::Duration;

    #[test]
    fn polling_backs_off_to_a_cap() {
        let o = PipelineOptions::live();
        assert_eq!(o.poll_delay(o.poll_first_ms, 0), 30_000);
        assert_eq!(o.poll_delay(o.poll_first_ms, 1), 60_000);
        assert_eq!(o.poll_delay(o.poll_first_ms, 4), 480_000);
        assert_eq!(o.poll_delay(o.poll_first_ms, 5), 600_000);
        assert_eq!(o.poll_delay(o.poll_first_ms, 500), 600_000);
        // Panoramax is looked at 2 s after completing, then 4, 8… up to the same cap.
        let p = o.panoramax_poll_first_ms;
        assert_eq!(
            (0..4).map(|n| o.poll_delay(p, n)).collect::<Vec<_>>(),
            [2_000, 4_000, 8_000, 16_000]
        );
        assert_eq!(o.poll_delay(p, 500), 600_000);
        let s = PipelineOptions::sandbox();
        assert_eq!(s.poll_delay(s.poll_first_ms, 0), 500);
        assert_eq!(s.poll_delay(s.poll_first_ms, 10), 5_000);
    }

    #[test]
    fn the_most_telling_error_wins() {
        let retry = |ms: Option<i64>| StepError::Retry {
            after_ms: ms,
            message: "busy".into(),
        };
        let perm = |m: &str| StepError::Permanent { message: m.into() };
        assert_eq!(worst(vec![]), None);
        assert_eq!(
            worst(vec![retry(Some(5)), retry(Some(50)), retry(None)]),
            Some(StepError::Retry {
                after_ms: Some(50),
                message: "busy".into()
            })
        );
        assert_eq!(
            worst(vec![retry(None), perm("a.jpg: bad")]),
            Some(perm("a.jpg: bad"))
        );
        let many = worst(vec![perm("a"), perm("b"), perm("c"), perm("d")]);
        assert_eq!(
            many,
            Some(perm("4 photos could not be sent: a; b; c; and 1 more"))
        );
        assert_eq!(
            worst(vec![
                perm("a"),
                StepError::Auth {
                    message: "401".into()
                }
            ]),
            Some(StepError::Auth {
                message: "401".into()
            })
        );
        assert_eq!(
            worst(vec![StepError::Interrupted, retry(None)]),
            Some(StepError::Interrupted)
        );
    }

    #[test]
    fn provider_errors_keep_their_meaning() {
        let e = ProviderError::http(
            Destination::Mapillary,
            ErrorKind::Retry {
                after: Some(Duration::from_millis(1500)),
            },
            429,
            None,
            "slow down",
            None,
        );
        assert!(matches!(
            provider_step_error(e),
            StepError::Retry {
                after_ms: Some(1500),
                ..
            }
        ));
        let e = ProviderError::http(
            Destination::Mapillary,
            ErrorKind::OffsetInvalid,
            412,
            None,
            "offset",
            None,
        );
        assert!(matches!(
            provider_step_error(e),
            StepError::Retry {
                after_ms: Some(0),
                ..
            }
        ));
        let e = ProviderError::auth(Destination::Kartaview, "expired");
        assert!(matches!(provider_step_error(e), StepError::Auth { .. }));
        let e = ProviderError::invalid(Destination::Panoramax, "bad");
        assert!(matches!(
            provider_step_error(e),
            StepError::Permanent { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("needs_reauth", "again")),
            StepError::Auth { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("network", "down")),
            StepError::Retry { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("not_configured", "x")),
            StepError::Permanent { .. }
        ));
    }
}
