//! The two XMP GPano properties we need: ProjectionType (is it a 360° photo?) and
//! PoseHeadingDegrees (a heading when EXIF has none).
//!
//! XMP allows each property either as an attribute of `rdf:Description` or as a child element,
//! and cameras use both, so both are read. A broken packet never rejects a photo: whatever was
//! read before the error is kept.

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

const GPANO_NS: &str = "http://ns.google.com/photos/1.0/panorama/";

/// GPano values found in an XMP packet.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Gpano {
    pub projection_type: Option<String>,
    pub pose_heading_degrees: Option<f64>,
}

impl Gpano {
    pub(crate) fn is_equirectangular(&self) -> bool {
        self.projection_type
            .as_deref()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("equirectangular"))
    }
}

/// True when the name resolves to the GPano namespace, or carries the conventional `GPano`
/// prefix with no declaration (some writers forget the xmlns).
fn is_gpano(res: &ResolveResult<'_>, prefix: Option<&str>) -> bool {
    match res {
        ResolveResult::Bound(Namespace(ns)) => *ns == GPANO_NS,
        ResolveResult::Unknown(p) => p == "GPano",
        ResolveResult::Unbound => prefix == Some("GPano"),
    }
}

fn set(g: &mut Gpano, local: &str, value: &str) {
    match local {
        "ProjectionType" if g.projection_type.is_none() => {
            g.projection_type = Some(value.trim().to_string());
        }
        "PoseHeadingDegrees" if g.pose_heading_degrees.is_none() => {
            g.pose_heading_degrees = value.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        }
        _ => {}
    }
}

/// Reads the GPano properties from an XMP packet (UTF-8; invalid bytes are replaced).
pub(crate) fn parse_gpano(packet: &[u8]) -> Gpano {
    let text = String::from_utf8_lossy(packet);
    let mut reader = NsReader::from_str(&text);
    let mut g = Gpano::default();
    // The GPano element whose text we are collecting, if any.
    let mut open: Option<String> = None;
    let mut text_buf = String::new();
    // A malformed packet just ends the reading: keep what was found before the error.
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                for attr in e.attributes().with_checks(false).flatten() {
                    let (res, local) = reader.resolver().resolve_attribute(attr.key);
                    if is_gpano(&res, attr.key.prefix().map(|p| p.into_inner())) {
                        let value = attr.value.as_ref().to_string();
                        set(&mut g, local.into_inner(), &value);
                    }
                }
                if matches!(event, Event::Start(_)) {
                    let name = e.name();
                    let (res, local) = reader.resolver().resolve_element(name);
                    if is_gpano(&res, name.prefix().map(|p| p.into_inner())) {
                        open = Some(local.into_inner().to_string());
                        text_buf.clear();
                    } else {
                        open = None;
                    }
                }
            }
            Event::Text(t) if open.is_some() => text_buf.push_str(&t.xml10_content()),
            Event::CData(t) if open.is_some() => text_buf.push_str(&t.xml10_content()),
            Event::End(_) => {
                if let Some(local) = open.take() {
                    set(&mut g, &local, &text_buf);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_form() {
        let x = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
            <rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/"
              GPano:ProjectionType="equirectangular" GPano:PoseHeadingDegrees="123.5"/></rdf:RDF></x:xmpmeta>"#;
        let g = parse_gpano(x);
        assert!(g.is_equirectangular());
        assert_eq!(g.pose_heading_degrees, Some(123.5));
    }

    #[test]
    fn element_form_with_other_prefix() {
        let x = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
            <rdf:Description rdf:about="" xmlns:p="http://ns.google.com/photos/1.0/panorama/">
              <p:ProjectionType>equirectangular</p:ProjectionType>
              <p:PoseHeadingDegrees> 10 </p:PoseHeadingDegrees>
            </rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let g = parse_gpano(x);
        assert!(g.is_equirectangular());
        assert_eq!(g.pose_heading_degrees, Some(10.0));
    }

    #[test]
    fn other_namespace_or_garbage_is_not_360() {
        let x = br#"<a xmlns:GPano="urn:other" GPano:ProjectionType="equirectangular"/>"#;
        assert!(!parse_gpano(x).is_equirectangular());
        assert_eq!(parse_gpano(b"\xff\xfe<<<>>>&&&"), Gpano::default());
        let cyl = br#"<a xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" GPano:ProjectionType="cylindrical"/>"#;
        assert!(!parse_gpano(cyl).is_equirectangular());
    }

    #[test]
    fn undeclared_gpano_prefix_is_accepted() {
        let x = br#"<rdf:Description GPano:ProjectionType="equirectangular"/>"#;
        assert!(parse_gpano(x).is_equirectangular());
    }
}
