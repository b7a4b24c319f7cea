//! MTP Desktop's domain: reading photos, building sequences, the SQLite store and the
//! upload pipeline. Nothing here depends on Tauri or on an HTTP client, so it builds and
//! tests in seconds and is shared by the desktop app and the `mtp` CLI.

pub mod clock;
pub mod deeplink;
pub mod destination;
pub mod engine;
#[cfg(any(test, feature = "fixtures"))]
pub mod fuzz_checks;
pub mod geo;
pub mod memory;
pub mod photo;
pub mod plan;
pub mod secret;
pub mod store;
pub mod transport;

pub use destination::Destination;
