// Mapillary's processing stages on a status row, as mapillary.com's upload page shows them:
// image ingestion, image processing, map data processing, map update. Hover or focus a step
// to see when it changed and the raw statuses Mapillary reported.
import { api, type JobView, type MapillaryStatus, type StageState } from "../ipc";
import { h } from "../dom";

const LABEL: Record<StageState, string> = { waiting: "waiting", running: "in progress", done: "done", failed: "failed" };

/** The stage of all chunks together: as far as the slowest one. */
function overall(m: MapillaryStatus, i: number): StageState {
  const states = m.chunks.map((c) => c.stages[i]?.state ?? "waiting");
  if (states.includes("failed")) return "failed";
  if (states.every((s) => s === "done")) return "done";
  if (states.some((s) => s !== "waiting")) return "running";
  return "waiting";
}

function time(ms: number | null): string {
  return ms ? new Date(ms).toISOString().slice(0, 19).replace("T", " ") + " UTC" : "not yet";
}

/** The stepper, or null for a job that has not been published to Mapillary yet. */
export function mapillaryStepper(j: JobView): HTMLElement | null {
  const m = j.mapillary;
  if (!m || m.chunks.length === 0) return null;
  const steps = m.stage_names.map((name, i) => {
    const state = overall(m, i);
    const lines = m.chunks.map((c, k) => {
      const s = c.stages[i];
      const part = m.chunks.length > 1 ? `part ${k + 1}: ` : "";
      return `${part}${LABEL[s.state]} (${s.raw ?? "no status"}) since ${time(s.changed_at)}`;
    });
    const code = m.chunks.map((c) => c.error_code).find((c) => c);
    if (state === "failed" && code) lines.push(`error code ${code}`);
    const tip = h("span", { class: "step-tip", role: "tooltip" }, h("strong", {}, name), ...lines.map((l) => h("span", {}, l)));
    return h(
      "li",
      { class: `step step-${state}`, tabindex: "0", "data-state": state, "data-focus-key": `mly-${j.id}-${i}`, "aria-label": `${name}: ${LABEL[state]}. ${lines.join(". ")}` },
      h("span", { class: "step-dot", "aria-hidden": "true" }),
      h("span", { class: "step-label" }, name),
      tip,
    );
  });
  const notes: string[] = [];
  const sent = m.chunks.reduce((n, c) => n + c.sent, 0);
  const counted = m.chunks.every((c) => c.item_count !== null) ? m.chunks.reduce((n, c) => n + (c.item_count ?? 0), 0) : null;
  if (counted !== null) notes.push(`Mapillary counted ${counted} of ${sent} photos`);
  const keys = m.chunks.flatMap((c) => c.sequence_keys);
  if (keys.length > 1) notes.push(`${keys.length} sequences`);
  if (m.detail === "unavailable") {
    const found = keys.length > 0;
    notes.push(`stage detail unavailable (Mapillary refused to show it): ${found ? "the sequence was found on the map" : "the sequence is looked for on the map"}`);
  }
  if (m.next_check_at && j.status !== "done" && j.status !== "failed") notes.push(`next look at ${time(m.next_check_at).slice(11)}`);
  return h(
    "div",
    { class: "mly-progress" },
    h("ol", { class: "mly-stepper", "aria-label": "Mapillary processing", "data-stages": m.stage_names.map((_, i) => overall(m, i)).join(",") }, ...steps),
    notes.length ? h("p", { class: "muted small mly-notes" }, notes.join(" · ")) : null,
  );
}

/** What the retry of a Mapillary job does, in words. */
export function mapillaryRetryLabel(j: JobView): string | null {
  if (j.mapillary?.failure) return "Upload again";
  if (j.mapillary?.unconfirmed) return "Check again";
  return null;
}

/** The Mapillary card's account stats (images, km); nothing when unavailable. */
export async function mapillaryStatsLine(): Promise<HTMLElement | null> {
  const stats = await api.mapillaryStats().catch(() => null);
  if (!stats) return null;
  const parts: string[] = [];
  if (stats.images !== null) parts.push(`${stats.images.toLocaleString()} images`);
  if (stats.km !== null) parts.push(`${stats.km.toLocaleString(undefined, { maximumFractionDigits: 1 })} km`);
  if (parts.length === 0) return null;
  return h("p", { class: "muted small mly-stats", "data-testid": "mapillary-stats" }, `On Mapillary: ${parts.join(" · ")}`);
}

/** The OS notification for a Mapillary job that just finished or failed. */
export function mapillaryNotice(name: string, j: JobView): { title: string; body: string } | null {
  const m = j.mapillary;
  if (!m) return null;
  if (j.status === "done") {
    const keys = m.chunks.flatMap((c) => c.sequence_keys);
    const published = m.chunks.reduce((n, c) => n + (c.published ?? 0), 0);
    const sent = m.chunks.reduce((n, c) => n + c.sent, 0);
    return { title: `${name} is on Mapillary`, body: `${keys.length === 1 ? "1 sequence" : `${keys.length} sequences`} published, ${published} of ${sent} photos.` };
  }
  if (j.status === "failed" && m.unconfirmed) return { title: `${name}: not confirmed by Mapillary yet`, body: j.last_error ?? "see MTP Desktop" };
  if (j.status === "failed") return { title: `${name}: Mapillary did not publish it`, body: j.last_error ?? "see MTP Desktop" };
  return null;
}
