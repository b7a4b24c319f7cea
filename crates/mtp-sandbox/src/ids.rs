//! Random and sequential identifiers in the shapes the real services use.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng as _;
use rand::distr::{Alphanumeric, SampleString as _};

/// `n` random bytes as lowercase hex (`2 * n` characters).
pub(crate) fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
    hex::encode(bytes)
}

/// `len` random characters from `[A-Za-z0-9]`.
pub(crate) fn base62(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// A monotonically increasing numeric id, rendered as a string of digits.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub const fn new(start: u64) -> Counter {
        Counter(AtomicU64::new(start))
    }

    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes every later id greater than `id`.
    pub fn advance_past(&self, id: u64) {
        self.0.fetch_max(id.saturating_add(1), Ordering::Relaxed);
    }

    pub fn next_string(&self) -> String {
        self.next().to_string()
    }
}
