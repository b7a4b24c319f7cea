// The only module that talks to the Rust side (invoke/listen). Views import from here.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type Destination = "mapillary" | "kartaview" | "panoramax" | "mtpw";

export interface AppError {
  code: string;
  message: string;
}

export interface Overview {
  version: string;
  mode: { mode: "sandbox" | "live"; reason: string };
  data_dir: string;
  database: string;
}

export interface IntegrationCard {
  service: Destination;
  label: string;
  blurb: string;
  missing_settings: string[];
  connected_as: string | null;
  needs_reauth: boolean;
}

export interface DeepLinkOutcome {
  accepted: boolean;
  service: Destination | null;
  message: string;
}

export type AppEvent =
  | ({ type: "deep_link" } & DeepLinkOutcome)
  | { type: "accounts_changed" }
  | { type: "sequences_changed"; ids: number[] };

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
  integrations: () => call<IntegrationCard[]>("integrations"),
  notices: () => call<DeepLinkOutcome[]>("notices"),
};

export function onAppEvent(handler: (e: AppEvent) => void): Promise<UnlistenFn> {
  return listen<AppEvent>("mtp://event", (msg) => handler(msg.payload));
}
