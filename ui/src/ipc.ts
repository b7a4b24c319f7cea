// The only module that talks to the Rust side (invoke/listen). Views import from here.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open, save } from "@tauri-apps/plugin-dialog";
import { isPermissionGranted, requestPermission, sendNotification } from "@tauri-apps/plugin-notification";

import type {
  ChangeOutcome,
  DeletePlan,
  Destination,
  DryRun,
  ExploreProgress,
  ExploreQuery,
  ExploreResult,
  JobStatus,
  KartaViewStats,
  Overview,
  PanoramaxStats,
  SequencePage,
  SequenceSummary,
  Stage,
  StageRecord,
} from "./gen/types";

// The job table's types are generated from the Rust ones (crates/mtp-app/tests/ui_types.rs).
export type { Destination, ErrorKind, ItemState, JobStatus, JobView, SequenceSummary, Stage } from "./gen/types";
export type { ChunkStatus, MapillaryStatus, StageDetail, StageFailure, StageRecord } from "./gen/types";
export type { ExploreProgress, ExploreQuery, ExploreResult, FoundImage, ServiceOutcome, ServiceState } from "./gen/types";
export type { AccountCheck, ChunkPlan, DestinationDryRun, DryRun, Refusal, SequenceDryRun } from "./gen/types";
export type { KartaViewStats, PanoramaxStats } from "./gen/types";
export type { Mode, ModeReason, Overview } from "./gen/types";
export type {
  ChangeOutcome,
  DeletePlan,
  HistoryLine,
  PagePhoto,
  RemoteActionView,
  RemoteHow,
  RemotePlan,
  SequencePage,
} from "./gen/types";

export interface AppError {
  code: string;
  message: string;
}

export interface IntegrationCard {
  service: Destination;
  label: string;
  blurb: string;
  missing_settings: string[];
  connected_as: string | null;
  needs_reauth: boolean;
  /** Why a new sign-in is needed when the service did not say so (token in an OS keychain that does not answer). */
  reauth_reason: string | null;
  instance_url: string | null;
  uses_browser: boolean;
  /** Where the browser comes back: the deep link or a loopback address. */
  redirect_uri: string | null;
  suggested_loopback: string | null;
  sign_in: SignInStatus | null;
  /** Map the Paths Web: may the app send the Mapillary token to it (null: not asked yet). */
  mapillary_consent: boolean | null;
}

/** A sign-in in progress, or why the last one failed (kept until the user acts). */
export interface SignInStatus {
  phase: "waiting" | "failed";
  page_url: string | null;
  redirect_uri: string | null;
  listening: boolean;
  browser_opened: boolean;
  browser_error: string | null;
  message: string | null;
  offer_token: boolean;
  can_retry: boolean;
  /** KartaView refused the OpenStreetMap app in the settings: offer KartaView's own app (a code to paste). */
  offer_kartaview_app: boolean;
  /** Waiting for the code OpenStreetMap shows after approving (KartaView's app). */
  wants_code: boolean;
}

export interface StartedIntegration {
  service: Destination;
  authorize_url: string;
  browser_opened: boolean;
  browser_error: string | null;
  redirect_uri: string | null;
  listening: boolean;
}

export interface DeepLinkOutcome {
  accepted: boolean;
  service: Destination | null;
  message: string;
}

export interface Problem {
  code: string;
  severity: "error" | "warning";
  message: string;
}

export interface DestinationCheck {
  destination: Destination;
  ok: boolean;
  problems: Problem[];
}

export interface PhotoPoint {
  file_name: string;
  lat: number;
  lon: number;
  captured_at: number;
  heading: number | null;
  from_gpx: boolean;
}

export interface SequenceView {
  index: number;
  photo_count: number;
  distance_m: number;
  started_at: number;
  ended_at: number;
  is_360: boolean;
  total_bytes: number;
  split_message: string;
  photos: PhotoPoint[];
  checks: DestinationCheck[];
  camera: string | null;
  sub_folder: string;
  from_gpx: number;
  warnings: string[];
  include_by_default: boolean;
}

export interface LeftOutGroup {
  code: string;
  title: string;
  action: string;
  files: { rel_path: string; detail: string }[];
}

export interface LeftOut {
  file_name: string;
  path: string;
  code: string;
  message: string;
  lat: number | null;
  lon: number | null;
}

export interface PreparedImport {
  token: string;
  folder: string;
  suggested_name: string;
  files_seen: number;
  ignored: number;
  summary: { photos: number; kept: number; dropped: number; sequences: number; total_bytes: number; distance_m: number };
  sequences: SequenceView[];
  left_out: LeftOut[];
  already_imported: { import_id: number; sequence_ids: number[]; names: string[] } | null;
  left_out_groups: LeftOutGroup[];
  not_photos: string[];
  warnings: string[];
  already_saved: { sequence_id: number; name: string; folder: string | null; photos: number }[];
  gpx: string | null;
  gpx_placed: number;
  /** Why nothing of this folder can be uploaded; null when it makes a sequence. */
  nothing_to_upload: string | null;
}

export interface SequenceChoice {
  index: number;
  include: boolean;
  name: string;
}

export interface PrepareOptions {
  gpx?: string | null;
  gpx_offset_s?: number;
  camera_utc_offset_minutes?: number | null;
  transport_type?: string | null;
  files?: string[];
  plan?: { min_distance_m?: number | null; min_interval_s?: number | null; heading_offset_deg?: number };
}

export interface SequenceMeta {
  name: string;
  description: string;
  transport_type: string | null;
  tags: string[];
}

export interface SavedImport {
  import_id: number;
  sequence_ids: number[];
  created: boolean;
  skipped: string[];
}

export interface TransportType {
  name: string;
  group: string;
}

export type StageState = StageRecord["state"];
export interface MapillaryStats {
  user_id: string;
  username: string;
  images: number | null;
  km: number | null;
}

export type AppEvent =
  | ({ type: "deep_link" } & DeepLinkOutcome)
  | { type: "accounts_changed" }
  | { type: "sequences_changed"; ids: number[] }
  | { type: "import_progress"; files_done: number; files_total: number }
  | { type: "job_changed"; job_id: number; sequence_id: number; status: JobStatus; stage: Stage }
  | { type: "uploads_elsewhere"; elsewhere: boolean }
  | {
      type: "job_progress";
      job_id: number;
      sequence_id: number;
      photos_done: number;
      photos_total: number;
      bytes_done: number;
      bytes_total: number;
    };

/** Turns whatever a command rejected with into an AppError. */
export function asAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { code?: unknown; message: unknown };
    return { code: String(o.code ?? "error"), message: String(o.message) };
  }
  return { code: "error", message: String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asAppError(e);
  }
}

export const api = {
  overview: () => call<Overview>("app_overview"),
  finishFirstRun: () => call<void>("finish_first_run"),
  integrations: () => call<IntegrationCard[]>("integrations"),
  mapillaryStats: () => call<MapillaryStats | null>("mapillary_stats"),
  kartaviewStats: () => call<KartaViewStats | null>("kartaview_stats"),
  panoramaxStats: () => call<PanoramaxStats | null>("panoramax_stats"),
  setMtpwMapillaryConsent: (allow: boolean) => call<void>("set_mtpw_mapillary_consent", { allow }),
  notices: () => call<DeepLinkOutcome[]>("notices"),
  prepareFolder: (path: string, options: PrepareOptions) => call<PreparedImport>("prepare_folder", { path, options }),
  saveImport: (token: string, meta: SequenceMeta, destinations: Destination[], sequences: SequenceChoice[]) =>
    call<SavedImport>("save_import", { request: { token, meta, destinations, sequences } }),
  dryRun: (token: string, meta: SequenceMeta, destinations: Destination[]) =>
    call<DryRun>("dry_run", { token, meta, destinations }),
  sequences: () => call<SequenceSummary[]>("sequences"),
  sequence: (id: number) => call<SequenceSummary>("sequence", { id }),
  transportTypes: () => call<TransportType[]>("transport_types"),
  startIntegration: (service: Destination) => call<StartedIntegration>("start_integration", { service }),
  connectPanoramax: (instanceUrl: string | null, token: string | null) =>
    call<string>("connect_panoramax", { instanceUrl, token }),
  disconnect: (service: Destination) => call<void>("disconnect", { service }),
  startPanoramaxClaim: (instanceUrl: string | null) => call<StartedIntegration>("start_panoramax_claim", { instanceUrl }),
  cancelSignIn: (service: Destination) => call<void>("cancel_sign_in", { service }),
  setRedirectUri: (service: Destination, redirectUri: string | null) =>
    call<string | null>("set_redirect_uri", { service, redirectUri }),
  retryKartaview: () => call<string>("retry_kartaview"),
  startKartaviewAppSignIn: () => call<StartedIntegration>("start_kartaview_app_sign_in"),
  finishSignInWithCode: (code: string) => call<string>("finish_sign_in_with_code", { code }),
  connectWithToken: (service: Destination, token: string, username: string | null = null) => call<string>("connect_with_token", { service, token, username }),
  jobAction: (target: { kind: "sequence" | "job"; id: number }, action: "pause" | "resume" | "cancel" | "retry") =>
    call<number>("job_action", { target, action }),
  pathKinds: (paths: string[]) => call<("dir" | "file" | "missing")[]>("path_kinds", { paths }),
  openExternal: (url: string) => call<void>("open_external", { url }),
  queueUpload: (sequenceId: number, destinations: Destination[]) =>
    call<string[]>("queue_upload", { sequenceId, destinations }),
  sequencePage: (id: number) => call<SequencePage>("sequence_page", { id }),
  photoThumbnail: (id: number, path: string) => call<string>("photo_thumbnail", { id, path }),
  editSequence: (id: number, meta: SequenceMeta) => call<ChangeOutcome>("edit_sequence", { id, meta }),
  deletePlan: (id: number) => call<DeletePlan>("delete_plan", { id }),
  deleteSequence: (id: number, everywhere: boolean) => call<ChangeOutcome>("delete_sequence", { id, everywhere }),
  retryRemoteActions: (id: number) => call<number>("retry_remote_actions", { id }),
  newSearch: () => call<number>("new_search"),
  cancelSearch: (searchId: number) => call<boolean>("cancel_search", { searchId }),
  exportSearch: (searchId: number, path: string) => call<number>("export_search", { searchId, path }),
};

/** Runs a search to its end; what it finds arrives through `onProgress` meanwhile. */
export function explore(
  searchId: number,
  query: ExploreQuery,
  onProgress: (p: ExploreProgress) => void,
): Promise<ExploreResult> {
  const progress = new Channel<ExploreProgress>();
  progress.onmessage = onProgress;
  return call<ExploreResult>("explore", { searchId, query, progress });
}

/** The window's close button while uploads run: `active` uploads would stop. */
export function onCloseRequested(handler: (active: number) => void): Promise<UnlistenFn> {
  return listen<number>("mtp://close-requested", (msg) => handler(msg.payload));
}

export const closeChoice = (choice: "background" | "quit") => call<void>("close_choice", { choice });

/** The system folder picker; null when the user cancels. */
export async function pickFolder(): Promise<string | null> {
  const picked = await open({ directory: true, multiple: false, title: "Choose a folder of photos" });
  return typeof picked === "string" ? picked : null;
}

export async function pickGpx(): Promise<string | null> {
  const picked = await open({ multiple: false, title: "Choose a GPX track", filters: [{ name: "GPX track", extensions: ["gpx"] }] });
  return typeof picked === "string" ? picked : null;
}

/**
 * The system save dialog; null when the user cancels. WebDriver cannot reach a native
 * dialog, so the end-to-end tests answer it by setting `window.__mtpSaveAs` first.
 */
export async function pickSavePath(defaultPath: string, filter: { name: string; extensions: string[] }): Promise<string | null> {
  const answer = (window as { __mtpSaveAs?: unknown }).__mtpSaveAs;
  if (typeof answer === "string") return answer;
  const picked = await save({ defaultPath, title: "Save as", filters: [filter] });
  return typeof picked === "string" ? picked : null;
}

/** Files or folders dragged onto the window (Tauri delivers their paths, not HTML5 files). */
export function onDragDrop(handlers: { hover: (on: boolean) => void; drop: (paths: string[]) => void }): Promise<UnlistenFn> {
  return getCurrentWebview().onDragDropEvent((e) => {
    const p = e.payload;
    if (p.type === "enter" || p.type === "over") handlers.hover(true);
    else if (p.type === "leave") handlers.hover(false);
    else if (p.type === "drop") {
      handlers.hover(false);
      handlers.drop(p.paths);
    }
  });
}

export function onAppEvent(handler: (e: AppEvent) => void): Promise<UnlistenFn> {
  return listen<AppEvent>("mtp://event", (msg) => handler(msg.payload));
}

/** A desktop notification; silently skipped when the user declined them. */
export async function notify(title: string, body: string): Promise<void> {
  try {
    let granted = await isPermissionGranted();
    if (!granted) granted = (await requestPermission()) === "granted";
    if (granted) sendNotification({ title, body });
  } catch {
    // No notification daemon (e.g. a bare X session): the status list still shows it.
  }
}
