// What a job's row says about it: one wording for the status list and the sequence page.
import type { JobView } from "../ipc";
import { formatDuration } from "../dom";

export const STAGE: Record<string, string> = {
  prepare: "Checking files",
  upload: "Uploading",
  publish: "Publishing",
  poll: "Waiting for processing",
  sync: "Syncing",
  done: "Done",
};

/** The job's state in words, and the class that colours it. A done job with a note did not
 * end plainly (partly published, not linked, not confirmed…): the note is its state. */
export function statusText(j: JobView): { text: string; cls: string } {
  const stage = STAGE[j.stage] ?? j.stage;
  switch (j.status) {
    case "done":
      return j.note ? { text: j.note, cls: "warn" } : { text: "Done", cls: "ok" };
    case "failed":
      // Mapillary not confirming an upload is not a failure: its own words, with Check again.
      if (j.mapillary?.unconfirmed) return { text: j.last_error ?? "Not confirmed by Mapillary yet.", cls: "warn" };
      return { text: `Failed: ${j.last_error ?? "unknown error"}`, cls: "bad" };
    case "cancelled":
      return { text: "Cancelled", cls: "muted" };
    case "paused":
      return { text: `Paused (${stage.toLowerCase()})`, cls: "muted" };
    case "waiting_auth":
      return { text: `Needs sign-in: ${j.last_error ?? `integrate ${j.label} on the Integrations screen.`} Nothing is lost; it goes on once you do.`, cls: "warn" };
    case "running":
      return { text: j.waiting ?? stage, cls: "" };
    case "pending": {
      if (j.last_error_kind === "retry" && j.last_error) {
        // The service could not be reached or asked us to wait: the job never gives up on
        // its own, it tries again (at most 5 minutes apart) and goes on when it answers.
        const wait = Math.max(0, (j.next_run_at - Date.now()) / 1000);
        const when = wait < 1 ? "trying again now" : `next try in ${formatDuration(wait)}`;
        return { text: `Waiting for ${j.label} (${when}) — ${j.last_error}`, cls: "warn" };
      }
      if (j.waiting) return { text: j.waiting, cls: "" };
      return { text: j.stage === "prepare" ? "Queued" : stage, cls: "" };
    }
  }
}

/** The web address a failed job's message names, if any (e.g. Panoramax's page to accept its
 * terms of service): the row offers to open it. */
export function linkIn(text: string | null | undefined): string | null {
  const found = text?.match(/https?:\/\/[^\s"'<>]+/);
  return found ? found[0].replace(/[.,;:)\]]+$/, "") : null;
}
