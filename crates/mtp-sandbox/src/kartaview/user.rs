//! `POST /1.0/user/details/` (form `username`, no login): an account's totals and ranks, as
//! KartaView's profile page reads them (PROTOCOLS §6).
//!
//! The totals come from what the user uploaded and has not removed: tracks (live sequences),
//! photos, and distance along each sequence's photos in index order. Ranks order the
//! sandbox accounts by distance (then photos); the weekly rank counts only photos added in
//! the last seven days. An account with nothing to rank gets 0, as KartaView answers for
//! someone off the leaderboard. Like v1 does, ids and totals go out as strings, ranks as
//! numbers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::app::AppRef;
use crate::auth::USERS;
use crate::geo::distance_m;
use crate::state::lock;

use super::state::{KvState, Photo};
use super::{form_and_user, missing, ok, v1};

/// What one account holds, counting only photos for which `count` says yes.
#[derive(Clone, Copy, Default)]
struct Totals {
    tracks: u64,
    photos: u64,
    km: f64,
}

fn totals(st: &KvState, user: usize, count: impl Fn(&Photo) -> bool) -> Totals {
    let mut t = Totals::default();
    for s in st.sequences.iter().filter(|s| s.user == user && !s.deleted) {
        let mut photos: Vec<&Photo> = s.photos.iter().filter(|p| count(p)).collect();
        if photos.is_empty() {
            continue;
        }
        photos.sort_by_key(|p| p.index);
        t.tracks += 1;
        t.photos += photos.len() as u64;
        t.km += photos
            .windows(2)
            .map(|w| distance_m((w[0].lat, w[0].lng), (w[1].lat, w[1].lng)))
            .sum::<f64>()
            / 1000.0;
    }
    t
}

/// 1-based rank of `user` among the accounts with photos; 0 when it has none.
fn rank(all: &[Totals], user: usize) -> u64 {
    if all[user].photos == 0 {
        return 0;
    }
    let ahead = all
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            *i != user
                && t.photos > 0
                && (t.km, t.photos, std::cmp::Reverse(*i))
                    > (all[user].km, all[user].photos, std::cmp::Reverse(user))
        })
        .count();
    ahead as u64 + 1
}

pub(super) async fn user_details(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, _) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(name) = form
        .get("username")
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return missing("username");
    };
    let Some(user) = USERS.iter().position(|u| u.username == name) else {
        // What KartaView's user controller answers for an account it cannot find.
        return v1(
            StatusCode::BAD_REQUEST,
            "690",
            " An unexpected server error has occurred",
            None,
        );
    };
    let week_ago = OffsetDateTime::now_utc() - Duration::days(7);
    let st = lock(&app.kv);
    let overall: Vec<Totals> = (0..USERS.len()).map(|u| totals(&st, u, |_| true)).collect();
    let weekly: Vec<Totals> = (0..USERS.len())
        .map(|u| totals(&st, u, |p| p.date_added >= week_ago))
        .collect();
    let mine = overall[user];
    ok(json!({
        "id": USERS[user].kartaview_id.to_string(),
        "username": USERS[user].username,
        "full_name": USERS[user].display_name,
        "type": "user",
        "totalDistance": format!("{:.3}", mine.km),
        "totalPhotos": mine.photos.to_string(),
        "totalTracks": mine.tracks.to_string(),
        "overallRank": rank(&overall, user),
        "weeklyRank": rank(&weekly, user),
        "obdDistance": 0,
    }))
}
