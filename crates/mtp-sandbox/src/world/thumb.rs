//! Thumbnails of world images: a small gradient JPEG whose colour depends on the sequence,
//! so that a client's preview shows sequences apart. A handful of variants are encoded
//! once and shared (world images have no bytes of their own).

use std::sync::OnceLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

use super::WorldSequence;

const HUES: usize = 12;

static THUMBS: [OnceLock<Bytes>; HUES * 2] = [const { OnceLock::new() }; HUES * 2];

/// A thumbnail (256 px wide; 2:1 for panoramas, else 4:3) for anything without bytes of
/// its own, coloured by `key`.
pub(crate) fn jpeg_for(key: u32, pano: bool) -> Bytes {
    let hue = key as usize % HUES;
    let slot = hue * 2 + usize::from(pano);
    THUMBS[slot].get_or_init(|| encode(hue, pano)).clone()
}

/// `200 image/jpeg` with the thumbnail of one of `seq`'s images.
pub(crate) fn response(seq: &WorldSequence) -> Response {
    response_for(seq.n, seq.is_pano)
}

/// `200 image/jpeg` with [`jpeg_for`].
pub(crate) fn response_for(key: u32, pano: bool) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        jpeg_for(key, pano),
    )
        .into_response()
}

fn encode(hue: usize, pano: bool) -> Bytes {
    let (w, h) = if pano { (256, 128) } else { (256, 192) };
    let base = hsv(hue as f64 * 360.0 / HUES as f64);
    // Sky-like at the top, darker "street" at the bottom.
    let img = RgbImage::from_fn(w, h, |_, y| {
        let t = f64::from(y) / f64::from(h);
        let k = 1.0 - 0.6 * t;
        Rgb([
            (base[0] * k) as u8,
            (base[1] * k) as u8,
            (base[2] * k) as u8,
        ])
    });
    let mut out = Vec::new();
    // Encoding an in-memory RGB buffer cannot fail; an empty body would only show as a
    // broken thumbnail.
    let _ = JpegEncoder::new_with_quality(&mut out, 70).encode_image(&img);
    Bytes::from(out)
}

/// A light colour of hue `h` (degrees).
fn hsv(h: f64) -> [f64; 3] {
    let (s, v) = (0.45, 235.0);
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r + m, g + m, b + m]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{World, WorldSpec};

    #[test]
    fn thumbnails_are_jpegs() {
        let w = World::generate(&WorldSpec::images(200));
        for s in w.sequences() {
            let b = jpeg_for(s.n, s.is_pano);
            assert!(crate::photo::is_jpeg(&b));
            let (width, _) = crate::photo::jpeg_dimensions(&b).unwrap_or_default();
            assert_eq!(width, 256);
        }
    }
}
