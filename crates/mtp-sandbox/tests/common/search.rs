//! Helpers for the search tests: worlds, queries to each service, expected answers.

use std::collections::BTreeSet;

use mtp_sandbox::{Sandbox, Service, World, WorldBbox, WorldImage, WorldSpec};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{client, s, sandbox_with};

/// The whole of a 5 km dense area around Paris fits in one allowed Mapillary box.
pub const DENSE: (f64, f64, f64) = (48.8566, 2.3522, 5.0);

pub fn dense(n: usize) -> WorldSpec {
    WorldSpec::dense(n, DENSE.0, DENSE.1, DENSE.2)
}

/// A box around the whole dense area (about 0.0031 square degrees).
pub fn dense_box() -> WorldBbox {
    WorldBbox::new(2.30, 48.82, 2.40, 48.89)
}

pub fn bbox_param(b: WorldBbox) -> String {
    format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat)
}

pub fn iso(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

pub async fn with_world(spec: WorldSpec) -> Sandbox {
    sandbox_with(|c| c.world = spec).await
}

pub async fn mly(sb: &Sandbox, query: &str) -> (u16, Value, Option<String>) {
    let token = sb.issue_token(Service::Mapillary, 0);
    let r = client()
        .get(format!("{}/images?{query}", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap(), retry)
}

pub fn data_ids(v: &Value, list: &str, key: &str) -> BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

pub fn expected(
    world: &World,
    service: Service,
    b: WorldBbox,
    keep: impl Fn(&WorldImage) -> bool,
) -> Vec<WorldImage> {
    world
        .in_bbox_on(b, service)
        .filter(|i| keep(i))
        .copied()
        .collect()
}

pub async fn nearby(sb: &Sandbox, b: WorldBbox, ipp: Option<usize>, page: usize) -> Value {
    let mut form = vec![
        ("bbTopLeft", format!("{},{}", b.max_lat, b.min_lon)),
        ("bbBottomRight", format!("{},{}", b.min_lat, b.max_lon)),
        ("page", page.to_string()),
    ];
    if let Some(ipp) = ipp {
        form.push(("ipp", ipp.to_string()));
    }
    let r = client()
        .post(format!(
            "{}/1.0/list/nearby-photos/",
            s(&sb.urls().kartaview_api)
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["apiCode"], "600");
    v
}

pub fn items(v: &Value) -> Vec<String> {
    v["currentPageItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn pnx_get(sb: &Sandbox, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!(
            "{}/api{path_and_query}",
            s(&sb.urls().panoramax_instance)
        ))
        .send()
        .await
        .unwrap()
}

pub async fn pnx(sb: &Sandbox, path_and_query: &str) -> Value {
    let r = pnx_get(sb, path_and_query).await;
    assert_eq!(r.status(), 200, "{path_and_query}");
    r.json().await.unwrap()
}

/// The status of a Panoramax GET, for the refusals.
pub async fn pnx_status(sb: &Sandbox, path_and_query: &str) -> u16 {
    pnx_get(sb, path_and_query).await.status().as_u16()
}

pub fn has_next(v: &Value) -> Option<String> {
    v["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["href"].as_str().unwrap().to_owned())
}
