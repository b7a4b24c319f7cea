//! The Map the Paths transport-type taxonomy.
//!
//! MTPW refuses a sequence whose `transport_type` does not match one of its names
//! (case-insensitively), and Mapillary does not accept aerial imagery, so the list lives
//! here as data: the UI offers it and the validators check against it. The MTPW emulator
//! keeps its own copy of the table (`mtp-sandbox/src/mtpw.rs`), as a second reading of
//! PROTOCOLS §5 that catches a mistake in this one.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The groups of the MTPW docs. The order is the order the UI lists them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportGroup {
    Earth,
    Snow,
    Water,
    /// Aerial capture: not accepted by Mapillary.
    Air,
    Other,
}

impl TransportGroup {
    /// Human name for the UI and messages.
    pub fn label(self) -> &'static str {
        match self {
            TransportGroup::Earth => "Earth",
            TransportGroup::Snow => "Snow",
            TransportGroup::Water => "Water",
            TransportGroup::Air => "Air",
            TransportGroup::Other => "Other",
        }
    }
}

/// One transport type: the exact name MTPW expects, and its group.
///
/// `name` is a `Cow` so that the built-in table is `'static` data with no allocation,
/// while the type can still be deserialized (e.g. from the UI or the store).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct TransportType {
    pub name: Cow<'static, str>,
    pub group: TransportGroup,
}

const fn t(name: &'static str, group: TransportGroup) -> TransportType {
    TransportType {
        name: Cow::Borrowed(name),
        group,
    }
}

use TransportGroup::{Air, Earth, Other, Snow, Water};

/// Every transport type, grouped and ordered as in the MTPW docs.
///
/// Where sources disagree (PROTOCOLS §7) we follow the MTPW docs: Plane, Helicopter and
/// Drone are Air (MTPDU filed them under Water), Row is Water.
static TRANSPORT_TYPES: [TransportType; 38] = [
    t("Bicycle", Earth),
    t("Walk", Earth),
    t("Scooter", Earth),
    t("Skateboard", Earth),
    t("Rollerskate", Earth),
    t("Rock Climbing", Earth),
    t("Wheelchair", Earth),
    t("Car", Earth),
    t("Electric Car", Earth),
    t("Electric Bicycle", Earth),
    t("Electric Scooter", Earth),
    t("Ski", Snow),
    t("Snowboard", Snow),
    t("Snowshoe", Snow),
    t("Ice Skating", Snow),
    t("Snowmobile", Snow),
    t("Swim", Water),
    t("Paddleboard", Water),
    t("Scuba Dive", Water),
    t("Surf", Water),
    t("Windsurf", Water),
    t("Kiteboard", Water),
    t("Canoe", Water),
    t("Freedive", Water),
    t("Kayak", Water),
    t("Row", Water),
    t("Sail", Water),
    t("Boat", Water),
    t("Parachute", Air),
    t("Paraglide", Air),
    t("Hang Glide", Air),
    t("Wingsuit", Air),
    t("BASE Jump", Air),
    t("Glider", Air),
    t("Plane", Air),
    t("Helicopter", Air),
    t("Drone", Air),
    t("Other", Other),
];

/// Other spellings accepted on input, mapped to the canonical name. MTPDU sent
/// "Unlisted" where the MTPW docs say "Other"; which one the server stores is unverified,
/// so both are accepted and normalised to the docs' name.
const ALIASES: [(&str, &str); 1] = [("Unlisted", "Other")];

/// All transport types, for the UI's picker. Serializes as `[{"name","group"}, …]`.
pub fn all() -> &'static [TransportType] {
    &TRANSPORT_TYPES
}

/// Finds a transport type by name, ignoring ASCII case and surrounding whitespace (MTPW
/// matches case-insensitively). Aliases such as "Unlisted" resolve to their canonical
/// entry, so callers always send MTPW a name from the table.
pub fn lookup(name: &str) -> Option<&'static TransportType> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, target)| *target);
    TRANSPORT_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(canonical))
}

/// True when `name` is a known aerial transport type. Unknown names are not air: the
/// validator reports them separately as unknown.
pub fn is_air(name: &str) -> bool {
    lookup(name).is_some_and(|t| t.group == TransportGroup::Air)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_trims() {
        let cases = [
            ("Bicycle", Some("Bicycle")),
            ("bicycle", Some("Bicycle")),
            ("  ELECTRIC car ", Some("Electric Car")),
            ("base jump", Some("BASE Jump")),
            ("Unlisted", Some("Other")),
            ("unlisted", Some("Other")),
            ("other", Some("Other")),
            ("Bike", None),
            ("", None),
            ("   ", None),
        ];
        for (input, want) in cases {
            assert_eq!(lookup(input).map(|t| t.name.as_ref()), want, "{input:?}");
        }
    }

    #[test]
    fn groups_match_the_mtpw_docs() {
        let count = |g| all().iter().filter(|t| t.group == g).count();
        assert_eq!(count(Earth), 11);
        assert_eq!(count(Snow), 5);
        assert_eq!(count(Water), 12);
        assert_eq!(count(Air), 9);
        assert_eq!(count(Other), 1);
        assert_eq!(lookup("Row").unwrap().group, Water);
        assert_eq!(lookup("Drone").unwrap().group, Air);
        // Names are unique, case-insensitively.
        for (i, a) in all().iter().enumerate() {
            for b in &all()[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(&b.name), "{}", a.name);
            }
        }
    }

    #[test]
    fn air_detection() {
        for name in ["Drone", "plane", "Helicopter", "Paraglide", "BASE Jump"] {
            assert!(is_air(name), "{name}");
        }
        for name in ["Walk", "Boat", "Other", "Unlisted", "Spaceship", ""] {
            assert!(!is_air(name), "{name}");
        }
    }

    #[test]
    fn serializes_for_the_ui() {
        let json = serde_json::to_string(&all()[..2]).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"Bicycle","group":"earth"},{"name":"Walk","group":"earth"}]"#
        );
        let back: Vec<TransportType> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, all()[..2].to_vec());
        assert_eq!(TransportGroup::Air.label(), "Air");
    }
}
