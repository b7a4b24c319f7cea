//! Shared helpers for the emulator tests: a sandbox with a short processing delay, a plain
//! HTTP client that does not follow redirects, and synthetic geotagged JPEGs.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use md5::{Digest as _, Md5};

pub mod search;
use mtp_sandbox::{Sandbox, SandboxConfig};

/// Processing delay used by the tests (short, so that state changes are quick to observe).
pub const DELAY: Duration = Duration::from_millis(400);

pub async fn sandbox() -> Sandbox {
    sandbox_with(|_| {}).await
}

pub async fn sandbox_with(f: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut cfg = SandboxConfig {
        processing_delay: DELAY,
        ..SandboxConfig::default()
    };
    f(&mut cfg);
    Sandbox::start(cfg).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// Base of a service URL as a string without a trailing slash.
pub fn s(u: &url::Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

/// A query parameter of a URL (query or fragment).
pub fn param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).unwrap();
    let from_query = u
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    from_query.or_else(|| {
        u.fragment().and_then(|f| {
            url::form_urlencoded::parse(f.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    })
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// What to put in a synthetic photo.
#[derive(Clone, Debug)]
pub struct Photo {
    pub lat: f64,
    pub lon: f64,
    /// EXIF `DateTimeOriginal` (`YYYY:MM:DD HH:MM:SS`, read as UTC).
    pub time: String,
    pub heading: Option<f64>,
    /// Mapillary `ImageDescription` JSON.
    pub description: Option<serde_json::Value>,
    pub gps: bool,
    pub date: bool,
    /// Makes the bytes unique.
    pub salt: u32,
}

impl Photo {
    pub fn at(lat: f64, lon: f64, time: &str, salt: u32) -> Photo {
        Photo {
            lat,
            lon,
            time: time.to_owned(),
            heading: Some(90.0),
            description: None,
            gps: true,
            date: true,
            salt,
        }
    }

    /// A photo as mapillary_tools sends it: `ImageDescription` JSON plus plain EXIF.
    pub fn mapillary(lat: f64, lon: f64, capture: &str, heading: f64, salt: u32) -> Photo {
        let time = {
            let p: Vec<&str> = capture.split('_').collect();
            format!("{}:{}:{} {}:{}:{}", p[0], p[1], p[2], p[3], p[4], p[5])
        };
        Photo {
            lat,
            lon,
            time,
            heading: Some(heading),
            description: Some(serde_json::json!({
                "MAPLatitude": lat,
                "MAPLongitude": lon,
                "MAPCaptureTime": capture,
                "MAPCompassHeading": {"TrueHeading": heading, "MagneticHeading": heading},
                "MAPAltitude": 372.5,
            })),
            gps: true,
            date: true,
            salt,
        }
    }

    pub fn jpeg(&self) -> Vec<u8> {
        jpeg(self)
    }
}

enum Val {
    Ascii(Vec<u8>),
    Long(u32),
    Rational(Vec<(u32, u32)>),
}

impl Val {
    fn parts(&self) -> (u16, u32, Vec<u8>) {
        match self {
            Val::Ascii(b) => {
                let mut v = b.clone();
                v.push(0);
                (2, v.len() as u32, v)
            }
            Val::Long(x) => (4, 1, x.to_be_bytes().to_vec()),
            Val::Rational(r) => {
                let mut v = Vec::new();
                for (n, d) in r {
                    v.extend_from_slice(&n.to_be_bytes());
                    v.extend_from_slice(&d.to_be_bytes());
                }
                (5, r.len() as u32, v)
            }
        }
    }
}

/// One big-endian IFD at TIFF offset `start`, values after it.
fn ifd(entries: &[(u16, Val)], start: u32) -> Vec<u8> {
    let n = entries.len() as u32;
    let data_start = start + 2 + 12 * n + 4;
    let mut head = Vec::new();
    let mut data = Vec::new();
    head.extend_from_slice(&(n as u16).to_be_bytes());
    for (tag, val) in entries {
        let (ty, count, bytes) = val.parts();
        head.extend_from_slice(&tag.to_be_bytes());
        head.extend_from_slice(&ty.to_be_bytes());
        head.extend_from_slice(&count.to_be_bytes());
        if bytes.len() <= 4 {
            let mut b = bytes.clone();
            b.resize(4, 0);
            head.extend_from_slice(&b);
        } else {
            head.extend_from_slice(&(data_start + data.len() as u32).to_be_bytes());
            data.extend_from_slice(&bytes);
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    head.extend_from_slice(&0u32.to_be_bytes());
    head.extend_from_slice(&data);
    head
}

fn dms(v: f64) -> Vec<(u32, u32)> {
    let v = v.abs();
    let d = v.floor();
    let m = ((v - d) * 60.0).floor();
    let s = (v - d - m / 60.0) * 3600.0;
    vec![
        (d as u32, 1),
        (m as u32, 1),
        ((s * 10_000.0).round() as u32, 10_000),
    ]
}

fn tiff(p: &Photo) -> Vec<u8> {
    let build = |exif_off: u32, gps_off: u32| -> Vec<(u16, Val)> {
        let mut e = Vec::new();
        if let Some(d) = &p.description {
            e.push((0x010E, Val::Ascii(d.to_string().into_bytes())));
        }
        e.push((0x010F, Val::Ascii(b"MTP".to_vec())));
        e.push((0x0110, Val::Ascii(b"Sandbox Cam".to_vec())));
        e.push((0x8769, Val::Long(exif_off)));
        if p.gps {
            e.push((0x8825, Val::Long(gps_off)));
        }
        e
    };
    let exif_entries = || -> Vec<(u16, Val)> {
        if p.date {
            vec![(0x9003, Val::Ascii(p.time.as_bytes().to_vec()))]
        } else {
            vec![(0xA002, Val::Long(64))]
        }
    };
    let gps_entries = || -> Vec<(u16, Val)> {
        let mut g = vec![
            (
                1,
                Val::Ascii(if p.lat >= 0.0 {
                    b"N".to_vec()
                } else {
                    b"S".to_vec()
                }),
            ),
            (2, Val::Rational(dms(p.lat))),
            (
                3,
                Val::Ascii(if p.lon >= 0.0 {
                    b"E".to_vec()
                } else {
                    b"W".to_vec()
                }),
            ),
            (4, Val::Rational(dms(p.lon))),
        ];
        if let Some(h) = p.heading {
            g.push((0x10, Val::Ascii(b"T".to_vec())));
            g.push((0x11, Val::Rational(vec![((h * 100.0).round() as u32, 100)])));
        }
        g
    };
    let ifd0_len = ifd(&build(0, 0), 8).len() as u32;
    let exif_off = 8 + ifd0_len;
    let exif_len = ifd(&exif_entries(), exif_off).len() as u32;
    let gps_off = exif_off + exif_len;
    let mut out = b"MM\0\x2a\0\0\0\x08".to_vec();
    out.extend(ifd(&build(exif_off, gps_off), 8));
    out.extend(ifd(&exif_entries(), exif_off));
    if p.gps {
        out.extend(ifd(&gps_entries(), gps_off));
    }
    out
}

/// SOI, APP1 Exif, a COM segment (salt), SOF0 (64×48), EOI: enough for every emulator.
pub fn jpeg(p: &Photo) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff(p));
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    let com = format!("mtp-sandbox test photo {}", p.salt).into_bytes();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((com.len() + 2) as u16).to_be_bytes());
    out.extend(com);
    out.extend_from_slice(&[
        0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x30, 0x00, 0x40, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11,
        0x01, 0x03, 0x11, 0x01,
    ]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}
