//! The remote services a sequence can be sent to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A remote service. The order is the order the UI lists them in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sqlx::Type,
    ts_rs::TS,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum Destination {
    Mapillary,
    Kartaview,
    Panoramax,
    /// Map the Paths Web: metadata only, synced after the others.
    Mtpw,
}

impl Destination {
    pub const ALL: [Destination; 4] = [
        Destination::Mapillary,
        Destination::Kartaview,
        Destination::Panoramax,
        Destination::Mtpw,
    ];

    /// Stable identifier used in the database, the CLI and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Mapillary => "mapillary",
            Destination::Kartaview => "kartaview",
            Destination::Panoramax => "panoramax",
            Destination::Mtpw => "mtpw",
        }
    }

    /// Human name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Destination::Mapillary => "Mapillary",
            Destination::Kartaview => "KartaView",
            Destination::Panoramax => "Panoramax",
            Destination::Mtpw => "Map the Paths Web",
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown destination {0:?}: expected one of mapillary, kartaview, panoramax, mtpw")]
pub struct UnknownDestination(pub String);

impl FromStr for Destination {
    type Err = UnknownDestination;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mapillary" => Ok(Destination::Mapillary),
            "kartaview" | "openstreetcam" => Ok(Destination::Kartaview),
            "panoramax" | "geovisio" => Ok(Destination::Panoramax),
            "mtpw" | "mapthepaths" => Ok(Destination::Mtpw),
            _ => Err(UnknownDestination(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_str() {
        for d in Destination::ALL {
            assert_eq!(d.as_str().parse::<Destination>().ok(), Some(d));
        }
        assert!("flickr".parse::<Destination>().is_err());
    }
}
