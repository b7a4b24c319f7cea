//! Clients of the remote services (see PROTOCOLS.md): Mapillary, KartaView, Panoramax and
//! Map the Paths Web, plus the OAuth logins that feed them.
//!
//! Each client takes a `reqwest::Client` (share one; [`http::build_client`] makes a
//! suitable one) and its base URLs from configuration, so the same code talks to the real
//! services and to the sandbox emulators mounted under a path prefix. Every failure is a
//! [`ProviderError`] that classifies itself ([`ErrorKind`]): retry (with the server's
//! delay), permanent (with the server's words), re-authenticate, or re-read the offset.

pub mod config;
pub mod decode;
pub mod error;
pub mod http;
pub mod kartaview;
pub mod mapillary;
pub mod mtpw;
pub mod oauth;
pub mod panoramax;
pub mod panoramax_login;
pub mod search;
pub mod source;

pub use config::{KartaViewConfig, MapillaryConfig, MtpwConfig, PanoramaxConfig};
pub use error::{ErrorKind, ProviderError};
pub use kartaview::KartaViewClient;
pub use mapillary::MapillaryClient;
pub use mtpw::MtpwClient;
pub use oauth::{PendingAuthorization, TokenSet};
pub use panoramax::PanoramaxClient;
pub use source::{FileStamp, SourceError, UploadSource};
