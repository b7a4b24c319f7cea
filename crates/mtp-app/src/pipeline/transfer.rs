//! Watching one transfer: its bytes as they go, and a pause or cancel that stops it.

use mtp_core::engine::{JobCtx, StepError};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a transfer in progress reports its bytes.
const TRANSFER_TICK: Duration = Duration::from_millis(100);

/// Drives one transfer while reporting the bytes `sent` counts (the position in the file)
/// and watching for a pause or cancel, which drops the request at once (the remote keeps
/// what it received; the next run resumes from there). Returns the outcome and the bytes
/// reported as in flight: take them back (`bytes_in_flight(-n)`) once the item is saved.
pub(crate) async fn watched<F: Future>(
    ctx: &JobCtx,
    sent: Option<&AtomicU64>,
    transfer: F,
) -> (Result<F::Output, StepError>, i64) {
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval(TRANSFER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reported = 0_i64;
    loop {
        tokio::select! {
            out = &mut transfer => return (Ok(out), reported),
            _ = ctx.interrupted() => return (Err(StepError::Interrupted), reported),
            _ = tick.tick() => {
                if let Some(sent) = sent {
                    let now = i64::try_from(sent.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
                    if now != reported {
                        ctx.bytes_in_flight(now - reported).await;
                        reported = now;
                    }
                }
            }
        }
    }
}
