//! mapillary.com's private GraphQL, as its own web page reads it (PROTOCOLS §2.6):
//! `GET {graph}/graphql?doc=<query>&operationName=<name>&variables=<json>` with
//! `Authorization: OAuth <token>`, answering `getData` (account stats),
//! `getLatestActivity` (the upload feed: one node per cluster, its four stages and
//! `error_code`, paged with opaque cursors) and `getNewSequences`. Replies are
//! `{"data":{…},"extensions":{"is_final":true}}`, with `__typename` on every object.
//!
//! Tokens: the web client token ([`crate::MAPILLARY_WEB_CLIENT_TOKEN`]) always works; user
//! tokens are refused with a 403, as in 2023, unless the knob `graphql_refuses_user_tokens`
//! is turned off.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::processing::{Cluster, ExtraActivity, MlyState, STAGES};
use super::{graph_error, user};
use crate::app::{App, AppRef, auth_credential, json_response};
use crate::auth::USERS;
use crate::state::lock;

/// The most nodes one feed page returns.
const MAX_FIRST: usize = 200;

/// The four stage fields of a feed node, in the web page's order (ingestion, processing,
/// map data processing, map update).
pub(crate) const STAGE_FIELDS: [&str; 4] = [
    "status",
    "initial_processing_status",
    "anonymization_status",
    "tiler_status",
];

fn gql_error(message: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "errors": [{"message": message, "severity": "CRITICAL"}],
            "data": null,
            "extensions": {"is_final": true},
        }),
    )
}

fn reply(data: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"data": data, "extensions": {"is_final": true}}),
    )
}

pub(super) async fn graphql(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let web_client =
        auth_credential(&headers, &["OAuth", "Bearer"]) == Some(crate::MAPILLARY_WEB_CLIENT_TOKEN);
    if !web_client {
        if let Err(r) = user(&app, &headers, None) {
            return r;
        }
        if !lock(&app.mly).graphql_accepts_user_tokens {
            return graph_error(
                StatusCode::FORBIDDEN,
                "(#10) Application does not have permission for this action",
                "OAuthException",
                10,
            );
        }
    }
    let (Some(doc), Some(op)) = (q.get("doc"), q.get("operationName")) else {
        return gql_error("A GraphQL request needs doc and operationName");
    };
    if !doc.contains(&format!("query {op}")) {
        return gql_error(&format!("Unknown operation named \"{op}\"."));
    }
    let vars: serde_json::Map<String, Value> = match q.get("variables") {
        None => serde_json::Map::new(),
        Some(v) => match serde_json::from_str(v) {
            Ok(Value::Object(m)) => m,
            _ => return gql_error("Variables are invalid JSON."),
        },
    };
    let var_str = |name: &str| match vars.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match op.as_str() {
        "getData" => {
            if !doc.contains("user_by_username") {
                return gql_error("getData must select user_by_username");
            }
            let Some(username) = var_str("username") else {
                return gql_error(
                    "Variable \"$username\" of required type \"String!\" was not provided.",
                );
            };
            reply(json!({"user_by_username": user_by_username(&app, &username)}))
        }
        "getLatestActivity" => {
            if !doc.contains("fetch__User") || !doc.contains("feed") {
                return gql_error("getLatestActivity must select fetch__User { feed }");
            }
            let Some(id) = var_str("id") else {
                return gql_error("Variable \"$id\" of required type \"ID!\" was not provided.");
            };
            let first = vars
                .get("first")
                .and_then(Value::as_u64)
                .map_or(50, |f| (f as usize).clamp(1, MAX_FIRST));
            let after = match var_str("after") {
                None => 0,
                Some(c) => match decode_cursor(&c) {
                    Some(i) => i + 1,
                    None => return gql_error(&format!("Invalid cursor: {c}")),
                },
            };
            // `hide_failed_sequences_after_days`: failed uploads older than this many days
            // leave the feed (the web app sends 14).
            let hide_after = vars.get("hide_after").and_then(Value::as_u64);
            let Some(u) = USERS.iter().position(|u| u.mapillary_id == id) else {
                return reply(json!({"fetch__User": null}));
            };
            reply(json!({"fetch__User": {
                "__typename": "User",
                "id": id,
                "feed": feed(&app, u, first, after, hide_after),
            }}))
        }
        "getNewSequences" => {
            let Some(id) = var_str("id") else {
                return gql_error("Variable \"$id\" of required type \"ID!\" was not provided.");
            };
            let Some(u) = USERS.iter().position(|u| u.mapillary_id == id) else {
                return reply(json!({"fetch__User": null}));
            };
            let st = lock(&app.mly);
            let now = crate::clock::now_ms();
            let nodes: Vec<Value> = st
                .sequences
                .iter()
                .rev()
                .filter(|s| s.user == u && now >= s.visible_at)
                .map(|s| {
                    json!({"__typename": "Sequence", "id": s.id,
                           "image_count": s.image_ids.len(), "cluster_id": s.cluster_id})
                })
                .collect();
            reply(json!({"fetch__User": {
                "__typename": "User", "id": id,
                "new_sequences": {"__typename": "SequenceConnection", "nodes": nodes},
            }}))
        }
        other => gql_error(&format!("Unknown operation named \"{other}\".")),
    }
}

fn user_by_username(app: &App, username: &str) -> Value {
    let Some(u) = USERS.iter().position(|u| u.username == username) else {
        return Value::Null;
    };
    let st = lock(&app.mly);
    let now = crate::clock::now_ms();
    let mut images = 0usize;
    let mut km = 0.0;
    for seq in st
        .sequences
        .iter()
        .filter(|s| s.user == u && now >= s.visible_at)
    {
        images += seq.image_ids.len();
        let points: Vec<(f64, f64)> = seq
            .image_ids
            .iter()
            .filter_map(|id| st.images.iter().find(|i| &i.id == id))
            .filter_map(|i| i.meta.position())
            .collect();
        km += points
            .windows(2)
            .map(|w| crate::geo::distance_m(w[0], w[1]))
            .sum::<f64>()
            / 1000.0;
    }
    json!({
        "__typename": "User",
        "id": USERS[u].mapillary_id,
        "username": USERS[u].username,
        "created_at_seconds": 1_577_836_800,
        "description": "",
        "stats": {
            "__typename": "UserStats",
            "distance": {"__typename": "UserStatsDistance", "km": (km * 1000.0).round() / 1000.0},
            "images": images,
        },
    })
}

/// `cursor` ↔ position in the feed: opaque to clients (base64 of a Relay-style string).
fn cursor(i: usize) -> String {
    STANDARD.encode(format!("arrayconnection:{i}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = String::from_utf8(STANDARD.decode(c).ok()?).ok()?;
    raw.strip_prefix("arrayconnection:")?.parse().ok()
}

/// One node per cluster of the user's, and the extra ones, newest first; without the
/// failed clusters older than `hide_after` days.
fn feed(app: &App, u: usize, first: usize, after: usize, hide_after: Option<u64>) -> Value {
    let st = lock(&app.mly);
    let now_s = i64::try_from(st.now() / 1000).unwrap_or(i64::MAX);
    let hidden = |c: &Cluster| {
        hide_after.is_some_and(|days| {
            let days = i64::try_from(days).unwrap_or(i64::MAX);
            now_s - c.created_at.unix_timestamp() > days.saturating_mul(86_400)
                && stage_statuses(app, c).contains(&"FAILED")
        })
    };
    let mut all: Vec<(i64, Value)> = st
        .clusters
        .iter()
        .filter(|c| c.user == u && !hidden(c))
        .map(|c| (c.created_at.unix_timestamp(), cluster_node(app, &st, c)))
        .chain(
            st.extra_activity
                .iter()
                .filter(|e| e.user == u)
                .map(|e| (e.created_at.unix_timestamp(), extra_node(e))),
        )
        .collect();
    // Newest first; among the same second, the later cluster id first.
    all.sort_by(|a, b| {
        b.0.cmp(&a.0).then_with(|| {
            let id = |v: &Value| v["cluster_id"].as_str().unwrap_or_default().to_owned();
            let (x, y) = (id(&a.1), id(&b.1));
            y.len().cmp(&x.len()).then(y.cmp(&x))
        })
    });
    let total = all.len();
    let page: Vec<Value> = all
        .into_iter()
        .skip(after)
        .take(first)
        .map(|(_, v)| v)
        .collect();
    let end = after + page.len();
    json!({
        "__typename": "ClusterLatestActivityConnection",
        "page_info": {
            "__typename": "PageInfo",
            "start_cursor": (!page.is_empty()).then(|| cursor(after)),
            "end_cursor": (!page.is_empty()).then(|| cursor(end - 1)),
            "has_next_page": end < total,
            "has_previous_page": after > 0,
        },
        "nodes": page,
    })
}

/// The raw status of each stage now: `PENDING` before it starts, `IN_PROGRESS`, then
/// `FINISHED` (or `FAILED` for the failing stage; those after it stay `PENDING`).
pub(crate) fn stage_statuses(app: &App, c: &Cluster) -> [&'static str; 4] {
    let elapsed = crate::clock::since(c.created);
    let step = app.step(4);
    let mut out = ["PENDING"; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let start = step * i as u32;
        let due = step * (i as u32 + 1);
        *slot = match &c.failure {
            Some((stage, _)) if i > *stage => "PENDING",
            Some((stage, _)) if i == *stage && elapsed >= due => "FAILED",
            _ if elapsed >= due => "FINISHED",
            _ if elapsed >= start => "IN_PROGRESS",
            _ => "PENDING",
        };
    }
    out
}

fn cluster_node(app: &App, st: &MlyState, c: &Cluster) -> Value {
    let statuses = stage_statuses(app, c);
    let failed = statuses.contains(&"FAILED");
    let images: Vec<_> = st.images.iter().filter(|i| i.cluster_id == c.id).collect();
    let captured = images
        .iter()
        .filter_map(|i| i.meta.captured_at_ms())
        .min()
        .map(|ms| ms / 1000);
    // An image id once the images are processed (stage 2 done), as on the web page.
    let image_id = (statuses[1] == "FINISHED")
        .then(|| images.first().map(|i| i.id.clone()))
        .flatten();
    let mut node = json!({
        "__typename": "ClusterLatestActivityItem",
        "cluster_id": c.id,
        "type": "UPLOAD",
        "created_at_seconds": c.created_at.unix_timestamp(),
        "captured_at_seconds": captured,
        "thumb_url": image_id.as_ref().map(|id| app.url(&format!("/mapillary/graph/sandbox/images/{id}/original"))),
        "item_count": c.image_count,
        "image_id": image_id,
        "error_code": if failed { c.error_code.clone().unwrap_or_else(|| "UNKNOWN_ERROR".into()) } else { "UNSET".into() },
        "timezone": "UTC",
    });
    for (field, status) in STAGE_FIELDS.iter().zip(statuses) {
        node[*field] = json!(status);
    }
    node
}

fn extra_node(e: &ExtraActivity) -> Value {
    let mut node = json!({
        "__typename": "ClusterLatestActivityItem",
        "cluster_id": e.cluster_id,
        "type": "UPLOAD",
        "created_at_seconds": e.created_at.unix_timestamp(),
        "captured_at_seconds": e.created_at.unix_timestamp() - 86_400,
        "thumb_url": null,
        "item_count": e.item_count,
        "image_id": null,
        "error_code": "UNSET",
        "timezone": "UTC",
    });
    for field in STAGE_FIELDS {
        node[field] = json!("FINISHED");
    }
    node
}

impl crate::SandboxState {
    /// Moves the Mapillary emulator's clock forward (upload handles age with it).
    pub fn advance_mapillary_clock(&self, by: std::time::Duration) {
        lock(&self.app.mly).clock_offset += by;
    }

    /// Knob: how many Graph API requests the app may make a minute (default 50,000, as
    /// Mapillary's docs say); over it, 429 until a minute has passed since the first
    /// request counted (on the sandbox clock).
    pub fn set_mapillary_rate_limit(&self, per_minute: u32) {
        lock(&self.app.mly).graph_rate_limit = Some(per_minute);
    }

    /// How long Mapillary upload handles stay valid (default 2 days).
    pub fn set_mapillary_handle_max_age(&self, age: std::time::Duration) {
        lock(&self.app.mly).handle_max_age = Some(age);
    }

    /// Knob: the next cluster becomes two sequences, split before image `at`.
    pub fn mapillary_split_next_cluster(&self, at: usize) {
        lock(&self.app.mly).publish_split_next = Some(at);
    }

    /// Knob: of the next cluster, one image in `every` is never published (0: none, which
    /// also turns off the default ~1 % for large clusters).
    pub fn mapillary_drop_from_next_cluster(&self, every: usize) {
        lock(&self.app.mly).publish_drop_next = Some(every);
    }

    /// Knob: the owner hides the first image of the next cluster on the website once it is
    /// made: the activity feed still names it, but the Graph API no longer loads it and
    /// searches do not find it.
    pub fn mapillary_hide_first_image_of_next_cluster(&self) {
        lock(&self.app.mly).hide_first_image_next = true;
    }

    /// Knob: whether `/graphql` refuses user tokens (the web client token always works).
    /// It does by default, as Mapillary did in 2023; `false` lets them through.
    pub fn mapillary_graphql_refuses_user_tokens(&self, refuse: bool) {
        lock(&self.app.mly).graphql_accepts_user_tokens = !refuse;
    }

    /// Knob: the next `finish_upload` makes a cluster that fails at `stage` (0 = image
    /// ingestion … 3 = map update) with `error_code`; it is never published.
    pub fn mapillary_fail_next_cluster(&self, stage: usize, error_code: &str) {
        lock(&self.app.mly).next_failure = Some((stage.min(STAGES.len() - 1), error_code.into()));
    }

    /// Knob: `count` finished uploads by sandbox account `user`, made now, that only the
    /// activity feed shows (a long feed, so that clients page through it).
    pub fn mapillary_add_activity(&self, user: usize, count: usize) {
        let now = time::OffsetDateTime::now_utc();
        let mut st = lock(&self.app.mly);
        for i in 0..count {
            let id = 9_000_000_000u64 + st.extra_activity.len() as u64;
            st.extra_activity.push(ExtraActivity {
                cluster_id: id.to_string(),
                user,
                created_at: now,
                item_count: 10 + i % 50,
            });
        }
    }
}

/// The Mapillary knobs of the control plane (`POST /sandbox/mapillary`, JSON), for `mtp
/// sandbox` and demos; tests call the [`crate::SandboxState`] methods.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Knobs {
    graphql_refuses_user_tokens: Option<bool>,
    fail_next_cluster: Option<FailKnob>,
    add_activity: Option<usize>,
    split_next_cluster: Option<usize>,
    drop_from_next_cluster: Option<usize>,
    advance_clock_seconds: Option<u64>,
    handle_max_age_seconds: Option<u64>,
    graph_requests_per_minute: Option<u32>,
}

#[derive(Debug, serde::Deserialize)]
struct FailKnob {
    stage: usize,
    error_code: String,
}

pub(crate) async fn knobs(State(app): State<AppRef>, body: axum::body::Body) -> Response {
    let bytes = crate::body::read_all(body).await.unwrap_or_default();
    let k: Knobs = match serde_json::from_slice(&bytes) {
        Ok(k) => k,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}));
        }
    };
    let state = crate::SandboxState { app: app.clone() };
    if let Some(r) = k.graphql_refuses_user_tokens {
        state.mapillary_graphql_refuses_user_tokens(r);
    }
    if let Some(f) = k.fail_next_cluster {
        state.mapillary_fail_next_cluster(f.stage, &f.error_code);
    }
    if let Some(n) = k.add_activity {
        state.mapillary_add_activity(0, n);
    }
    if let Some(at) = k.split_next_cluster {
        state.mapillary_split_next_cluster(at);
    }
    if let Some(every) = k.drop_from_next_cluster {
        state.mapillary_drop_from_next_cluster(every);
    }
    if let Some(s) = k.advance_clock_seconds {
        state.advance_mapillary_clock(std::time::Duration::from_secs(s));
    }
    if let Some(s) = k.handle_max_age_seconds {
        state.set_mapillary_handle_max_age(std::time::Duration::from_secs(s));
    }
    if let Some(n) = k.graph_requests_per_minute {
        state.set_mapillary_rate_limit(n);
    }
    json_response(StatusCode::OK, &json!({"ok": true}))
}
