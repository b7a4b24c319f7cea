// Generated from the Rust types by crates/mtp-app/tests/ui_types.rs (ts-rs). Do not edit.

export type Destination = "mapillary" | "kartaview" | "panoramax" | "mtpw";

export type Mode = "sandbox" | "live";

export type ModeReason = { mode: Mode, reason: string, };

export type Overview = { version: string, mode: ModeReason, data_dir: string, database: string, 
/**
 * Where the user's settings file is (or would be): [`config::user_settings_file`].
 */
settings_file: string | null, 
/**
 * The settings files read at start.
 */
settings_read: Array<string>, 
/**
 * What was wrong with a settings file, one line each (which file, what, what to do).
 */
settings_problems: Array<string>, 
/**
 * The app's licence (SPDX).
 */
licence: string, 
/**
 * Nobody has closed the first-run screen yet for this mode's data (sandbox and real
 * services each get theirs: switching to real accounts is a first run too).
 */
first_run: boolean, 
/**
 * Another process runs this data folder's uploads (`mtp upload`, or another window):
 * this one shows their progress and takes over when that process ends.
 */
uploads_elsewhere: boolean, };

export type Stage = "prepare" | "upload" | "publish" | "poll" | "sync" | "done";

export type JobStatus = "pending" | "running" | "paused" | "waiting_auth" | "failed" | "cancelled" | "done";

export type ItemState = "pending" | "partial" | "sent" | "rejected";

export type ErrorKind = "retry" | "retry_exhausted" | "permanent" | "auth" | "internal";

export type StageRecord = { state: "waiting" | "running" | "done" | "failed", 
/**
 * The raw status from the feed (`FINISHED`, `UNSET`, …).
 */
raw: string | null, 
/**
 * When we first saw it in its current state (epoch ms).
 */
changed_at: number | null, };

export type ChunkStatus = { cluster_id: string | null, 
/**
 * Photos sent in this chunk.
 */
sent: number, stages: Array<StageRecord>, 
/**
 * The raw `error_code` when it is not `UNSET`.
 */
error_code: string | null, 
/**
 * Photos Mapillary counted in the cluster (`item_count`).
 */
item_count: number | null, 
/**
 * One published image of the cluster.
 */
image_id: string | null, 
/**
 * Every sequence the chunk became (Mapillary sometimes splits one).
 */
sequence_keys: Array<string>, 
/**
 * Photos of the chunk found published.
 */
published: number | null, };

export type StageDetail = "user_token" | "web_client_token" | "unavailable";

export type StageFailure = { chunk: number, stage: number, error_code: string | null, reason: string, };

export type MapillaryStatus = { stage_names: Array<string>, chunks: Array<ChunkStatus>, detail: StageDetail | null, failure: StageFailure | null, 
/**
 * Mapillary did not confirm in time: the row offers "Check again".
 */
unconfirmed: boolean, next_check_at: number | null, };

export type JobView = { id: number, destination: Destination, label: string, stage: Stage, status: JobStatus, attempts: number, next_run_at: number, last_error: string | null, last_error_kind: ErrorKind | null, remote_url: string | null, remote_id: string | null, 
/**
 * Why a job that is done ended without the result it aims for (e.g. "Created on Map
 * the Paths Web, not linked to Mapillary: …"): shown instead of "Done".
 */
note: string | null, 
/**
 * What a waiting job waits for, in words (shown instead of the stage name).
 */
waiting: string | null, photos_total: number, photos_done: number, bytes_total: number, bytes_done: number, updated_at: number, 
/**
 * Mapillary jobs: the processing stages (the row's stepper).
 */
mapillary: MapillaryStatus | null, };

export type SequenceSummary = { id: number, name: string, description: string, transport_type: string | null, tags: Array<string>, folder: string | null, photo_count: number, total_bytes: number, distance_m: number, started_at: number | null, ended_at: number | null, is_360: boolean, created_at: number, 
/**
 * Being deleted everywhere (since when): it goes once every service confirmed.
 */
deleting_at: number | null, jobs: Array<JobView>, };

export type RemoteHow = { "kind": "api" } | { "kind": "open_page", url: string, } | { "kind": "no_api", link: string | null, };

export type RemotePlan = { destination: Destination, label: string, 
/**
 * What is there (e.g. "KartaView sequence 4000001 with 8 photos").
 */
what: string, how: RemoteHow, 
/**
 * One sentence for the confirmation.
 */
says: string, };

export type DeletePlan = { sequence_id: number, name: string, 
/**
 * What "Remove from MTP Desktop" removes.
 */
local: string, 
/**
 * Per destination where something of this sequence is, what "Delete everywhere" does.
 */
remote: Array<RemotePlan>, 
/**
 * Uploads still running for it (cancelled first).
 */
running_uploads: number, };

export type ChangeOutcome = { sequence_id: number, 
/**
 * Remote actions queued (their ids).
 */
actions: Array<number>, 
/**
 * Per destination, what happens there.
 */
remote: Array<RemotePlan>, 
/**
 * The local records are gone already (nothing had to be asked of a service first).
 */
removed_locally: boolean, };

export type RemoteActionView = { id: number, destination: Destination, label: string, action: "edit" | "delete", status: "pending" | "running" | "done" | "failed", attempts: number, next_run_at: number, last_error: string | null, outcome: string | null, updated_at: number, };

export type PagePhoto = { 
/**
 * Position in the sequence (kept photos), or `None` (left out).
 */
index: number | null, file_name: string, path: string, lat: number | null, lon: number | null, captured_at: number | null, heading: number | null, altitude: number | null, 
/**
 * Camera make and model, as one text.
 */
camera: string | null, width: number | null, height: number | null, is_360: boolean, file_size: number | null, 
/**
 * Why it was left out (a left-out photo).
 */
reason: string | null, };

export type HistoryLine = { at: number, kind: string, message: string, };

export type SequencePage = { summary: SequenceSummary, 
/**
 * Kept photos in sequence order, then the photos of its import left out.
 */
photos: Array<PagePhoto>, actions: Array<RemoteActionView>, 
/**
 * Newest first.
 */
history: Array<HistoryLine>, 
/**
 * Being deleted everywhere (since when).
 */
deleting_at: number | null, 
/**
 * Per destination, what an edit does there.
 */
edit_plan: Array<RemotePlan>, };

export type AccountCheck = { connected: boolean, username: string | null, can_upload: boolean, 
/**
 * What the check found, in words (and what to do about a problem).
 */
says: string, };

export type ChunkPlan = { photos: number, bytes: number, };

export type Refusal = { file: string | null, reason: string, };

export type DestinationDryRun = { destination: Destination, label: string, account: AccountCheck, 
/**
 * The destination's rules accept the sequence; otherwise saving leaves this
 * destination out for it, and `refused` says why.
 */
accepted: boolean, 
/**
 * Photos and bytes (the files' sizes) that would be sent; 0 for Map the Paths Web,
 * which receives the sequence's details only.
 */
photos: number, bytes: number, 
/**
 * How the photos go: Mapillary in chunks (one manifest and one Mapillary sequence
 * each), the others in one.
 */
chunks: Array<ChunkPlan>, 
/**
 * The fields sent with the first photo (Map the Paths Web: with the sequence), in the
 * order they are sent; tokens are not shown.
 */
fields: Array<[string, string]>, 
/**
 * Mapillary: the `MAP*` JSON written into the first photo's EXIF `ImageDescription`.
 */
first_description: string | null, refused: Array<Refusal>, 
/**
 * Warnings of the destination's rules, and what else happens around the photos.
 */
notes: Array<string>, };

export type SequenceDryRun = { 
/**
 * The name it gets when saved ("<name> Part N" when the folder makes several).
 */
name: string, photos: number, bytes: number, destinations: Array<DestinationDryRun>, };

export type DryRun = { sequences: Array<SequenceDryRun>, };

export type Bbox = { min_lon: number, min_lat: number, max_lon: number, max_lat: number, };

export type FoundImage = { service: Destination, id: string, lon: number, lat: number, captured_at_ms: number | null, 
/**
 * Degrees clockwise from north.
 */
heading: number | null, sequence_id: string | null, user: string | null, 
/**
 * `None` when the service does not say.
 */
is_pano: boolean | null, 
/**
 * Its page on the service.
 */
page_url: string | null, thumb_url: string | null, };

export type Near = { lat: number, lon: number, radius_m: number, };

export type UserFilter = { "kind": "anyone" } | { "kind": "me" } | { "kind": "named", "name": string };

export type ExploreQuery = { services: Array<Destination>, 
/**
 * Either a box…
 */
bbox: Bbox | null, 
/**
 * …or a circle (a box for the services, then filtered by true distance).
 */
near: Near | null, 
/**
 * `YYYY-MM-DD` (from the start of that day, UTC) or RFC 3339.
 */
from: string | null, 
/**
 * `YYYY-MM-DD` (to the end of that day, UTC) or RFC 3339.
 */
to: string | null, user: UserFilter, pano_only: boolean, 
/**
 * Stop after this many images in all.
 */
limit: number | null, };

export type ServiceState = "running" | "done" | "skipped" | "failed" | "stopped";

export type ServiceOutcome = { service: Destination, state: ServiceState, images: number, requests: number, rate_limited: number, 
/**
 * Why it was skipped or failed.
 */
message: string | null, 
/**
 * What the results miss, in the user's words.
 */
incomplete: Array<string>, };

export type ExploreProgress = { search_id: number, images: Array<FoundImage>, outcome: ServiceOutcome | null, };

export type ExploreResult = { search_id: number, images: number, services: Array<ServiceOutcome>, 
/**
 * The limit cut the results short.
 */
limited: boolean, cancelled: boolean, };

export type KartaViewStats = { username: string, photos: number | null, km: number | null, tracks: number | null, 
/**
 * `None`: not on the leaderboard.
 */
overall_rank: number | null, weekly_rank: number | null, };

export type PanoramaxStats = { instance_url: string, photos: number, km: number, sequences: number, 
/**
 * Sequences still being processed, whose photos or length are not counted yet.
 */
incomplete: number, };
