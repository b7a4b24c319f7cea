//! Editing and deleting a collection (PROTOCOLS §6): `PATCH /api/collections/{id}` with
//! `title`, `visible` (≤ 2.10) or `visibility` (2.11+) answers 200 with the collection;
//! `DELETE /api/collections/{id}` answers 204 and hides it at once (GeoVisio deletes it in
//! the background; here its pictures go at once). Both need a token (401), answer 404 for
//! an unknown, deleted or not yet dispatched collection, and 403 to anyone but its owner.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::app::{AppRef, json_response};
use crate::state::lock;

use super::stac::{collection_json, visible_collection};
use super::upload::{VISIBILITIES, object_body};
use super::{err, require_user};

/// GeoVisio's limit on a sequence title.
const MAX_TITLE_CHARS: usize = 250;

/// What a `PATCH` changes, once checked.
#[derive(Default)]
struct Patch {
    title: Option<String>,
    visibility: Option<String>,
}

/// Reads the fields GeoVisio knows (others are ignored, as its parameter model does).
fn parse_patch(body: &serde_json::Map<String, Value>) -> Result<Patch, Response> {
    let mut patch = Patch::default();
    if let Some(title) = body.get("title") {
        match title.as_str() {
            Some(t) if t.chars().count() <= MAX_TITLE_CHARS => patch.title = Some(t.to_owned()),
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Sequence title is not valid, should be a string with a max of 250 characters",
                ));
            }
        }
    }
    if let Some(visible) = body.get("visible") {
        // GeoVisio takes the strings only: a JSON `true` is refused.
        let visible = match visible {
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        };
        match visible {
            Some(true) => patch.visibility = Some("anyone".to_owned()),
            Some(false) => patch.visibility = Some("owner-only".to_owned()),
            None => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Picture visibility parameter (visible) should be either unset, true or false",
                ));
            }
        }
    }
    if let Some(visibility) = body.get("visibility") {
        match visibility.as_str().filter(|v| VISIBILITIES.contains(v)) {
            Some(v) => patch.visibility = Some(v.to_owned()),
            None => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Visibility parameter should be one of anyone, owner-only, logged-only",
                ));
            }
        }
    }
    Ok(patch)
}

/// Finds the collection `user` may change: its index, or the 404 / 403 reply. As GeoVisio's
/// PATCH and DELETE, whoever may see it: someone else's collection is a 403 even when it is
/// owner-only (`web/collections.py`, `utils/sequences.py`).
fn owned_collection(
    app: &AppRef,
    id: &str,
    user: usize,
    action: Action,
) -> Result<usize, Response> {
    let st = lock(&app.pnx);
    let Some(idx) = st.collections.iter().position(|c| {
        c.id == id && !c.deleted && st.sets.iter().any(|s| s.id == c.set_id && !s.deleted)
    }) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            &format!("Collection {id} wasn't found in database"),
        ));
    };
    if st.collections[idx].user != user {
        return Err(err(StatusCode::FORBIDDEN, action.not_yours()));
    }
    Ok(idx)
}

/// What is asked of a collection, for GeoVisio's words when it is someone else's.
#[derive(Clone, Copy)]
enum Action {
    Edit,
    Delete,
}

impl Action {
    fn not_yours(self) -> &'static str {
        match self {
            Action::Edit => {
                "You're not authorized to edit those fields for this sequence. Only the owner can change the visibility and the title"
            }
            Action::Delete => "You're not authorized to edit this sequence",
        }
    }
}

pub(super) async fn patch_collection(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let user = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let patch = match object_body(&headers, body)
        .await
        .and_then(|b| parse_patch(&b))
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let idx = match owned_collection(&app, &id, user, Action::Edit) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    if let Some(title) = patch.title {
        st.collections[idx].title = title;
    }
    if let Some(visibility) = patch.visibility {
        st.collections[idx].visibility = Some(visibility);
    }
    match visible_collection(&app, &st, &id, Some(user)) {
        Some((c, phase)) => json_response(
            StatusCode::OK,
            &collection_json(&app, &st, c, phase, Some(user)),
        ),
        None => err(StatusCode::NOT_FOUND, "Collection doesn't exist"),
    }
}

pub(super) async fn delete_collection(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let idx = match owned_collection(&app, &id, user, Action::Delete) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    st.collections[idx].deleted = true;
    st.pictures
        .retain(|p| p.collection_id.as_deref() != Some(id.as_str()));
    StatusCode::NO_CONTENT.into_response()
}
