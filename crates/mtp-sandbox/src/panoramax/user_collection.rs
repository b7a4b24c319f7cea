//! `GET /api/users/{id|me}/collection`: a user's sequences as one STAC collection, the way
//! GeoVisio 2.15 lists them (PROTOCOLS §6). Each sequence is a `rel=child` link carrying
//! `stats:items.count` and `geovisio:length_km`; `limit` (1–1000, default 100) cuts the list
//! into pages chained by `rel=next`, newest first. The collection itself carries the totals
//! (`stats:items`, `stats:collections`, `geovisio:length_km`), as GeoVisio's does.
//!
//! As on GeoVisio: the owner (the token's account) sees every sequence not deleted, others
//! only the ready ones they may see; `next` links point at the `/users/{id}` form even when
//! `/users/me` was asked; an unknown account is a 404, and so is an account without any
//! sequence ("No data loaded for user …").

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::{App, AppRef, json_response};
use crate::auth::USERS;
use crate::geo::distance_m;
use crate::state::lock;

use super::stac::{extent, visible_collection};
use super::state::{Collection, Picture, PnxState, SetPhase};
use super::{err, require_user, rfc3339, token_user};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub(super) async fn my_collection(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match require_user(&app, &headers) {
        Ok(user) => listing(&app, user, Some(user), &q),
        Err(r) => r,
    }
}

pub(super) async fn user_collection(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match token_user(&app, &headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match USERS.iter().position(|u| u.panoramax_id == id) {
        Some(user) => listing(&app, user, viewer, &q),
        None => err(
            StatusCode::NOT_FOUND,
            &format!("Impossible to find user {id}"),
        ),
    }
}

/// Length along the pictures in sequence order, in km rounded to the metre (as GeoVisio's
/// `ROUND(ST_Length(geom::geography)) / 1000`).
fn length_km(pics: &[&Picture]) -> f64 {
    let pos: Vec<(f64, f64)> = pics.iter().filter_map(|p| p.meta.position()).collect();
    let m: f64 = pos.windows(2).map(|w| distance_m(w[0], w[1])).sum();
    m.round() / 1000.0
}

fn child(app: &App, st: &PnxState, c: &Collection, phase: SetPhase, owner: bool) -> Value {
    let pics = st.collection_pictures(c, owner.then_some(c.user));
    let mut link = json!({
        "id": c.id,
        "title": c.title,
        "rel": "child",
        "href": app.url(&format!("/panoramax/api/collections/{}", c.id)),
        "stats:items": {"count": pics.len()},
        "created": rfc3339(c.created_at),
        "updated": rfc3339(c.created_at),
        "extent": extent(&pics),
    });
    // GeoVisio's length is that of the sequence's line, which exists once its pictures
    // are prepared; until then the key is left out (`removeNoneInDict`).
    if phase == SetPhase::Ready {
        link["geovisio:length_km"] = json!(length_km(&pics));
    }
    if owner {
        link["geovisio:status"] = json!(if phase == SetPhase::Ready {
            "ready"
        } else {
            "preparing"
        });
        link["geovisio:visibility"] = json!(st.collection_visibility(c));
    }
    link
}

fn listing(
    app: &AppRef,
    user: usize,
    viewer: Option<usize>,
    q: &HashMap<String, String>,
) -> Response {
    let limit = match q.get("limit").map(|l| l.trim()).filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
            Ok(_) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &format!("limit parameter should be an integer between 1 and {MAX_LIMIT}"),
                );
            }
            Err(_) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "limit parameter should be a valid, positive integer (between 1 and {MAX_LIMIT})"
                    ),
                );
            }
        },
    };
    // GeoVisio's `page` is a filter on the sort keys; an offset does here.
    let offset = match q.get("page") {
        None => 0,
        Some(p) => match p
            .strip_prefix("offset:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "Impossible to parse parameter page",
                );
            }
        },
    };
    let owner = viewer == Some(user);
    let st = lock(&app.pnx);
    let mut mine: Vec<(&Collection, SetPhase)> = st
        .collections
        .iter()
        .filter(|c| c.user == user)
        .filter_map(|c| visible_collection(app, &st, &c.id, viewer))
        .filter(|(_, phase)| owner || *phase == SetPhase::Ready)
        .collect();
    let id = USERS[user].panoramax_id;
    if mine.is_empty() {
        return err(
            StatusCode::NOT_FOUND,
            &format!("No data loaded for user {id}"),
        );
    }
    mine.sort_by(|a, b| {
        b.0.created_at
            .cmp(&a.0.created_at)
            .then(a.0.id.cmp(&b.0.id))
    });
    let shown = |c: &Collection| st.collection_pictures(c, owner.then_some(user));
    let total_pics: usize = mine.iter().map(|(c, _)| shown(c).len()).sum();
    let total_km: f64 = mine.iter().map(|(c, _)| length_km(&shown(c))).sum();
    let base = app.url(&format!("/panoramax/api/users/{id}/collection"));
    let mut links = vec![
        json!({"rel": "root", "type": "application/json", "href": app.url("/panoramax/api")}),
        json!({"rel": "parent", "type": "application/json", "href": app.url("/panoramax/api")}),
        json!({"rel": "self", "type": "application/json", "href": base}),
    ];
    if offset > 0 {
        links.push(json!({"rel": "first", "type": "application/json",
                          "href": format!("{base}?limit={limit}")}));
        links.push(json!({"rel": "prev", "type": "application/json",
                          "href": format!("{base}?limit={limit}&page=offset:{}", offset.saturating_sub(limit))}));
    }
    if offset + limit < mine.len() {
        links.push(json!({"rel": "next", "type": "application/json",
                          "href": format!("{base}?limit={limit}&page=offset:{}", offset + limit)}));
    }
    links.extend(
        mine.iter()
            .skip(offset)
            .take(limit)
            .map(|(c, phase)| child(app, &st, c, *phase, owner)),
    );
    let name = USERS[user].username;
    json_response(
        StatusCode::OK,
        &json!({
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": format!("user:{id}"),
            "title": format!("{name}'s sequences"),
            "description": format!("List of all sequences of user {name}"),
            "license": "CC-BY-SA-4.0",
            "providers": [{"name": name, "roles": ["producer"], "id": id}],
            "stats:items": {"count": total_pics},
            "stats:collections": {"count": mine.len()},
            "geovisio:length_km": total_km,
            "links": links,
        }),
    )
}
