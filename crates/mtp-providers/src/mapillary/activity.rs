//! What Mapillary made of an upload, as mapillary.com's own page shows it (PROTOCOLS §2.6):
//! the undocumented GraphQL `getData` (account stats) and `getLatestActivity` (one node per
//! upload, joined to ours by the `cluster_id` that `finish_upload` returned, with the four
//! processing stages and an `error_code`).
//!
//! Requests are `GET {graph}/graphql?doc=<query>&operationName=<name>&variables=<json>` with
//! `Authorization: OAuth <token>`; replies `{"data":{…},"extensions":{"is_final":true}}`.
//! The user's token is tried first, then the web client token (`MAPILLARY_WEB_CLIENT_TOKEN`)
//! when one is set: the service refused user tokens here in 2023.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{MapillaryClient, SERVICE, decode, flex_id, flex_id_opt};
use crate::error::ProviderError;

/// The `getData` query, as mapillary.com's profile page sends it.
pub const GET_DATA_DOC: &str = "query getData($username: String!) { user_by_username(username: $username) { id username created_at_seconds description stats { distance { km } images } } }";

/// The `getLatestActivity` query, as mapillary.com's upload page sends it.
pub const LATEST_ACTIVITY_DOC: &str = "query getLatestActivity($id: ID!, $first: Int, $after: ID, $hide_after: Int) { fetch__User(id: $id) { id feed(first: $first, after: $after, hide_failed_sequences_after_days: $hide_after) { page_info { start_cursor end_cursor has_next_page has_previous_page } nodes { cluster_id type created_at_seconds captured_at_seconds thumb_url item_count image_id status initial_processing_status anonymization_status tiler_status error_code timezone } } } }";

/// Nodes per feed page (what the web app asks for).
pub const PAGE_SIZE: u32 = 50;
/// `hide_failed_sequences_after_days`, as the web app sends it.
pub const HIDE_FAILED_AFTER_DAYS: u32 = 14;
/// Pages read at most in one look (a feed of 1,000 uploads newer than the job's).
pub const MAX_PAGES: u32 = 20;
/// Feed nodes this much older than the job's first `finish_upload` end the search.
const FEED_SLACK_S: i64 = 3_600;

/// The four stages, in the order mapillary.com shows them.
pub const STAGE_NAMES: [&str; 4] = [
    "Image ingestion",
    "Image processing",
    "Map data processing",
    "Map update",
];

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    message: String,
}

#[derive(Debug, Deserialize)]
struct DataReply {
    user_by_username: Option<UserByUsername>,
}

#[derive(Debug, Deserialize)]
struct UserByUsername {
    #[serde(deserialize_with = "flex_id")]
    id: String,
    username: String,
    stats: Option<UserStats>,
}

#[derive(Debug, Deserialize)]
struct UserStats {
    distance: Option<Distance>,
    images: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Distance {
    km: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct ActivityReply {
    #[serde(rename = "fetch__User")]
    user: Option<FeedUser>,
}

#[derive(Debug, Deserialize)]
struct FeedUser {
    feed: Feed,
}

#[derive(Debug, Deserialize)]
struct Feed {
    page_info: PageInfo,
    nodes: Vec<ActivityNode>,
}

/// Relay-style paging: `after` = the previous page's `end_cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PageInfo {
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Account stats from `getData`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStats {
    pub user_id: String,
    pub username: String,
    pub images: Option<u64>,
    pub km: Option<f64>,
}

/// One upload in the feed (`__typename` `ClusterLatestActivityItem`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ActivityNode {
    #[serde(deserialize_with = "flex_id")]
    pub cluster_id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub created_at_seconds: i64,
    pub captured_at_seconds: Option<i64>,
    pub thumb_url: Option<String>,
    pub item_count: Option<u64>,
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub image_id: Option<String>,
    /// Stage 1, image ingestion.
    pub status: Option<String>,
    /// Stage 2, image processing.
    pub initial_processing_status: Option<String>,
    /// Stage 3, map data processing.
    pub anonymization_status: Option<String>,
    /// Stage 4, map update.
    pub tiler_status: Option<String>,
    pub error_code: Option<String>,
    pub timezone: Option<String>,
}

/// Where one processing stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    #[default]
    Waiting,
    Running,
    Done,
    Failed,
}

impl StageState {
    /// Reads a raw status. Only `FINISHED` and `UNSET` are observed values (PROTOCOLS §2.6):
    /// anything reading as a failure (`FAIL`, `ERROR`) failed, `UNSET`/`PENDING`/absent has
    /// not started, and any other value is in progress.
    pub fn from_raw(raw: Option<&str>) -> StageState {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return StageState::Waiting;
        };
        let upper = raw.to_ascii_uppercase();
        if upper == "FINISHED" || upper == "SUCCESS" || upper == "DONE" {
            StageState::Done
        } else if upper.contains("FAIL") || upper.contains("ERROR") {
            StageState::Failed
        } else if matches!(
            upper.as_str(),
            "UNSET" | "PENDING" | "NOT_STARTED" | "QUEUED"
        ) {
            StageState::Waiting
        } else {
            StageState::Running
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Waiting => "waiting",
            StageState::Running => "running",
            StageState::Done => "done",
            StageState::Failed => "failed",
        }
    }
}

impl ActivityNode {
    /// The raw statuses of the four stages, in [`STAGE_NAMES`] order.
    pub fn raw_stages(&self) -> [Option<&str>; 4] {
        [
            self.status.as_deref(),
            self.initial_processing_status.as_deref(),
            self.anonymization_status.as_deref(),
            self.tiler_status.as_deref(),
        ]
    }

    pub fn stages(&self) -> [StageState; 4] {
        self.raw_stages().map(StageState::from_raw)
    }

    /// The error code, unless `UNSET` (or absent).
    pub fn error(&self) -> Option<&str> {
        self.error_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("UNSET"))
    }

    /// The first stage that failed (a stage reads as failed, or an error code is set while
    /// a stage is not done).
    pub fn failed_stage(&self) -> Option<usize> {
        let stages = self.stages();
        stages
            .iter()
            .position(|s| *s == StageState::Failed)
            .or_else(|| {
                self.error()
                    .and_then(|_| stages.iter().position(|s| *s != StageState::Done))
            })
    }

    /// Every stage done: the upload is on the map.
    pub fn published(&self) -> bool {
        self.stages().iter().all(|s| *s == StageState::Done)
    }
}

/// Words for the error codes whose meaning we know; others are shown raw.
pub fn explain_error_code(code: &str) -> Option<&'static str> {
    Some(match code {
        "NO_VALID_IMAGES" => "no photo had a usable position",
        "CORRUPT_IMAGES" | "CORRUPT_FILES" => "Mapillary could not read the photos",
        "TOO_FAST" | "SEQUENCE_TOO_FAST" => {
            "the photos move faster than Mapillary allows (over 400 km/h)"
        }
        "DUPLICATE_UPLOAD" => "these photos are already on Mapillary",
        _ => return None,
    })
}

/// A feed page.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPage {
    pub nodes: Vec<ActivityNode>,
    pub page_info: PageInfo,
}

/// Which token the feed answered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityToken {
    User,
    WebClient,
}

/// What one look at the feed found.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLookup {
    /// The wanted clusters found, by id.
    pub nodes: HashMap<String, ActivityNode>,
    pub pages: u32,
    pub token: ActivityToken,
}

impl MapillaryClient {
    /// `GET {graph}/graphql?doc&operationName&variables`, decoded as `T`. A GraphQL error
    /// (HTTP 200 with `errors`) and a reply without `data` are permanent errors naming the
    /// operation.
    pub async fn graphql<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        doc: &str,
        variables: serde_json::Value,
    ) -> Result<T, ProviderError> {
        let url = self.graph(&["graphql"])?;
        let request = self.http.get(url).query(&[
            ("doc", doc.to_string()),
            ("operationName", operation.to_string()),
            ("variables", variables.to_string()),
        ]);
        let reply = self.call(request).await?;
        let status = reply.status.as_u16();
        let envelope: Envelope<T> = decode(operation, status, &reply.body)?;
        if let Some(e) = envelope.errors.first() {
            return Err(ProviderError::unexpected_reply(
                SERVICE,
                status,
                format!("{operation}: {}", e.message),
                &reply.body,
            ));
        }
        envelope.data.ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                status,
                format!("{operation}: field data of the reply is missing"),
                &reply.body,
            )
        })
    }

    /// `getData(username)`: the account's id and stats; `None` for an unknown username.
    pub async fn account_stats(
        &self,
        username: &str,
    ) -> Result<Option<AccountStats>, ProviderError> {
        let data: DataReply = self
            .graphql("getData", GET_DATA_DOC, json!({ "username": username }))
            .await?;
        Ok(data.user_by_username.map(|u| AccountStats {
            user_id: u.id,
            username: u.username,
            images: u.stats.as_ref().and_then(|s| s.images),
            km: u
                .stats
                .as_ref()
                .and_then(|s| s.distance.as_ref())
                .and_then(|d| d.km),
        }))
    }

    /// One page of `getLatestActivity(id, first, after)`, newest first.
    pub async fn activity_page(
        &self,
        user_id: &str,
        first: u32,
        after: Option<&str>,
    ) -> Result<ActivityPage, ProviderError> {
        let data: ActivityReply = self
            .graphql(
                "getLatestActivity",
                LATEST_ACTIVITY_DOC,
                json!({ "id": user_id, "first": first, "after": after,
                        "hide_after": HIDE_FAILED_AFTER_DAYS }),
            )
            .await?;
        let user = data.user.ok_or_else(|| {
            ProviderError::invalid(
                SERVICE,
                format!("getLatestActivity: no Mapillary user with id {user_id}"),
            )
        })?;
        Ok(ActivityPage {
            nodes: user.feed.nodes,
            page_info: user.feed.page_info,
        })
    }

    /// Pages through the feed until every cluster in `wanted` is found, the feed is older
    /// than `not_before_s` (the job's first `finish_upload`), or it ends.
    pub async fn find_clusters(
        &self,
        user_id: &str,
        wanted: &[String],
        not_before_s: i64,
    ) -> Result<(HashMap<String, ActivityNode>, u32), ProviderError> {
        let mut found = HashMap::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        while pages < MAX_PAGES {
            let page = self
                .activity_page(user_id, PAGE_SIZE, after.as_deref())
                .await?;
            pages += 1;
            let oldest = page.nodes.iter().map(|n| n.created_at_seconds).min();
            for node in page.nodes {
                if wanted.contains(&node.cluster_id) {
                    found.insert(node.cluster_id.clone(), node);
                }
            }
            let older_than_job = oldest.is_some_and(|s| s < not_before_s - FEED_SLACK_S);
            if found.len() == wanted.len() || older_than_job || !page.page_info.has_next_page {
                break;
            }
            match page.page_info.end_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        Ok((found, pages))
    }
}

impl MapillaryClient {
    /// The uploads the feed lists as made at `since_s` (Unix seconds) or later, newest
    /// first: pages through it until it is older than that, or ends.
    pub async fn uploads_since(
        &self,
        user_id: &str,
        since_s: i64,
    ) -> Result<Vec<ActivityNode>, ProviderError> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .activity_page(user_id, PAGE_SIZE, after.as_deref())
                .await?;
            let oldest = page.nodes.iter().map(|n| n.created_at_seconds).min();
            found.extend(
                page.nodes
                    .into_iter()
                    .filter(|n| n.created_at_seconds >= since_s),
            );
            if oldest.is_none_or(|s| s < since_s) || !page.page_info.has_next_page {
                break;
            }
            match page.page_info.end_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        Ok(found)
    }
}

/// The feed's uploads made at `since_s` or later, read as [`lookup_clusters`] reads: with
/// the user's token, then the web client token; `Ok(None)` when neither works.
pub async fn lookup_uploads_since(
    user: &MapillaryClient,
    web: Option<&MapillaryClient>,
    user_id: &str,
    since_s: i64,
) -> Result<Option<(Vec<ActivityNode>, ActivityToken)>, ProviderError> {
    first_feed_that_answers(user, web, |client| async move {
        client.uploads_since(user_id, since_s).await
    })
    .await
}

/// Asks the feed with the user's token, then with the web client token. `Ok(None)` when
/// neither works; a refusal, a GraphQL error or a reply of another shape count as "does not
/// work with this token"; only a transient failure is an error.
async fn first_feed_that_answers<T, F, Fut>(
    user: &MapillaryClient,
    web: Option<&MapillaryClient>,
    look: F,
) -> Result<Option<(T, ActivityToken)>, ProviderError>
where
    F: Fn(MapillaryClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let refused = |e: &ProviderError| !e.kind().is_retryable();
    match look(user.clone()).await {
        Ok(found) => return Ok(Some((found, ActivityToken::User))),
        Err(e) if refused(&e) => {
            tracing::info!("Mapillary's activity feed does not work with the user's token: {e}");
        }
        Err(e) => return Err(e),
    }
    let Some(web) = web else {
        return Ok(None);
    };
    match look(web.clone()).await {
        Ok(found) => Ok(Some((found, ActivityToken::WebClient))),
        Err(e) if refused(&e) => {
            tracing::info!(
                "Mapillary's activity feed does not work with the web client token either: {e}"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Looks the clusters up with the user's token, then with the web client token. `Ok(None)`
/// when neither works (or there is no web token): stage detail is unavailable and the
/// caller falls back to the image search (PROTOCOLS §2.6). The feed is private and
/// undocumented, so a refusal (401/403), a GraphQL error or a reply of another shape all
/// count as "does not work with this token"; only a transient failure is an error, to be
/// tried again at the next look.
pub async fn lookup_clusters(
    user: &MapillaryClient,
    web: Option<&MapillaryClient>,
    user_id: &str,
    wanted: &[String],
    not_before_s: i64,
) -> Result<Option<ActivityLookup>, ProviderError> {
    let found = first_feed_that_answers(user, web, |client| async move {
        client.find_clusters(user_id, wanted, not_before_s).await
    })
    .await?;
    Ok(found.map(|((nodes, pages), token)| ActivityLookup {
        nodes,
        pages,
        token,
    }))
}
