//! Wall-clock time in unix milliseconds. The emulators keep their timestamps and deadlines
//! (token expiry, processing stages, publication) this way rather than as `Instant`s, so
//! that a state saved to disk means the same thing after a restart, and whatever fell due
//! while the sandbox was stopped is due at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `d` in whole milliseconds (saturating).
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The time `d` from now.
pub(crate) fn after(d: Duration) -> u64 {
    now_ms().saturating_add(ms(d))
}

/// How long ago `at` was (zero if it is in the future).
pub(crate) fn since(at: u64) -> Duration {
    Duration::from_millis(now_ms().saturating_sub(at))
}

/// Whether `at` has come.
pub(crate) fn reached(at: u64) -> bool {
    now_ms() >= at
}
