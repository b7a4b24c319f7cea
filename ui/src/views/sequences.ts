// The status list: one card per sequence, one row per destination. Rows are keyed by job id
// and updated in place from throttled progress events; a state change re-reads only the
// sequence it concerns.
import { api, notify, type AppEvent, type Destination, type JobView, type SequenceSummary } from "../ipc";
import { clear, formatBytes, formatDuration, h, toast } from "../dom";
import { mapillaryNotice, mapillaryRetryLabel, mapillaryStepper } from "./mapillary";
import { linkIn, statusText } from "./status";
import { closePage, openPageId, refreshPage, renderSequencePage } from "./sequence-page";

let root: HTMLElement | null = null;
let listEl: HTMLElement | null = null;
const cards = new Map<number, HTMLElement>();
const sequences = new Map<number, SequenceSummary>();
const speeds = new Map<number, { at: number; bytes: number; rate: number; since: number; sinceBytes: number }>();
const pendingRefresh = new Set<number>();
let refreshTimer: number | null = null;

const ALL: { id: Destination; label: string }[] = [
  { id: "mapillary", label: "Mapillary" },
  { id: "kartaview", label: "KartaView" },
  { id: "panoramax", label: "Panoramax" },
  { id: "mtpw", label: "Map the Paths Web" },
];

export async function renderSequences(el: HTMLElement): Promise<void> {
  root = el;
  closePage();
  // Newest import first; the parts of one import in their natural order (Part 1, Part 2…).
  const list = (await api.sequences()).sort((a, b) => b.created_at - a.created_at || a.id - b.id);
  sequences.clear();
  cards.clear();
  filling = false;
  clear(el);
  el.append(h("h1", {}, "Sequences"));
  updateCount(list.length);
  if (list.length === 0) {
    el.append(
      h(
        "div",
        { class: "empty", id: "sequences-empty" },
        h("p", { class: "empty-title" }, "No sequences yet"),
        h("p", {}, "Import a folder of geotagged photos to build your first sequence. Its uploads will show here, one row per destination."),
        h("button", { class: "primary", onclick: () => document.getElementById("nav-import")?.click() }, "Import a folder"),
      ),
    );
    listEl = null;
    return;
  }
  const list_ = h("div", { class: "seq-list", id: "seq-list" });
  listEl = list_;
  el.append(list_);
  for (const s of list) sequences.set(s.id, s);
  ordered = list;
  shown = 0;
  renderPage(list_, ++renderGeneration);
}

/** Cards shown at a time: a long history stays light to scroll; older ones come on demand. */
const PAGE = 100;
/** Every sequence, in the list's order, and how many of them have a card. */
let ordered: SequenceSummary[] = [];
let shown = 0;

/** Adds the next page of cards a few per frame, then the "older" button. What a card costs
 * is mostly the browser's style, layout and paint in the frame that shows it, not the script
 * that builds it, so the number of cards per frame follows how long the last frame took:
 * halved when it went over 33 ms, one more (up to MAX_PER_FRAME) when it took under 22 ms. */
function renderPage(list_: HTMLElement, generation: number): void {
  const end = Math.min(ordered.length, shown + PAGE);
  // The "older" button keeps its place, out of sight, while the page comes in: the page's
  // height then does not change when it shows again.
  let more = document.getElementById("seq-more") as HTMLButtonElement | null;
  if (!more && end < ordered.length) {
    more = h("button", { class: "secondary seq-more", id: "seq-more", onclick: () => renderPage(list_, generation) }, "Show older sequences");
    list_.after(more);
  }
  if (more) {
    more.disabled = true;
    more.style.visibility = "hidden";
  }
  // How far down the cards reach, in fractional pixels (a rounded height, over a hundred
  // cards, is pixels off; and the list's own height may be room kept for the last page).
  const height = () => contentHeight(list_);
  const top = height();
  const from = shown;
  let roomKept = false;
  filling = true;
  const batch = (count: number, frameStart: number) => {
    if (generation !== renderGeneration) return;
    const frag = document.createDocumentFragment();
    for (let n = 0; shown < end && n < count; shown++, n++) {
      const s = ordered[shown];
      if (cards.has(s.id)) continue;
      const card = sequenceCard(s);
      cards.set(s.id, card);
      frag.append(card);
    }
    list_.append(frag);
    if (shown < end && !roomKept) {
      roomKept = true;
      // Room for the whole page, from the first cards' pitch (a card's height and the space
      // above it, which the list's first card does not have): the next cards land in room
      // already there, so the page's height stays put and the window is not painted again
      // for each of them (that, not the cards, cost most of each frame).
      const last = list_.lastElementChild;
      const gap = from === 0 && last ? parseFloat(getComputedStyle(last).marginTop) || 0 : 0;
      const per = (height() - top + gap) / Math.max(1, shown - from);
      // A pixel over, never under: cards that outgrew the room would move the page's end
      // in the last frames; a pixel or two left over is kept at the end (`fitRoom`).
      list_.style.minHeight = `${Math.ceil(height() + per * (end - shown)) + 1}px`;
    }
    if (shown < end) {
      requestAnimationFrame((t) => batch(t - frameStart > 33 ? Math.max(1, count >> 1) : t - frameStart < 22 ? Math.min(MAX_PER_FRAME, count + 1) : count, t));
    } else {
      // The button, in a frame of its own (with the room given up, if the cards did not
      // fill it): nothing more is added to a frame that laid out cards.
      requestAnimationFrame(() => finish(list_, generation));
    }
  };
  // A first screenful at once, then a few at a time.
  batch(shown === 0 ? FIRST_SCREEN : 2, performance.now());
}

/** Ends a page: the "older" button shows again with what is left, or goes when nothing is.
 * The room kept for the page stays while the cards fill it: giving it up lays out the whole
 * list again (the slowest frame of the fill, 56-58 ms in the release build), for nothing. */
function finish(list_: HTMLElement, generation: number): void {
  if (generation !== renderGeneration) return;
  filling = false;
  fitRoom(list_);
  const more = document.getElementById("seq-more") as HTMLButtonElement | null;
  if (!more) return;
  const left = ordered.length - shown;
  if (left <= 0) {
    more.remove();
    return;
  }
  more.textContent = `Show ${Math.min(PAGE, left)} older sequences (${left} not shown)`;
  more.disabled = false;
  more.style.visibility = "";
}

/** Gives up the room kept for a page once the cards no longer fill it (the estimate was
 * high, or a card got shorter or went), so that no gap stays under the last card. While a
 * page comes in, the room is for the cards still to come and stays. */
function fitRoom(list_: HTMLElement): void {
  if (filling || list_.style.minHeight === "") return;
  if (parseFloat(list_.style.minHeight) - contentHeight(list_) > ROOM_SLACK_PX) list_.style.minHeight = "";
}

let fitPending = false;

/** `fitRoom` once, in the next frame, however many cards changed before it: reading where
 * the cards end right after each change would lay the list out once per card. */
function scheduleFit(): void {
  if (fitPending) return;
  fitPending = true;
  requestAnimationFrame(() => {
    fitPending = false;
    if (listEl) fitRoom(listEl);
  });
}

/** From the list's top to its last card's bottom (fractional pixels), whatever room the list
 * keeps below. */
function contentHeight(list_: HTMLElement): number {
  const last = list_.lastElementChild;
  return last ? last.getBoundingClientRect().bottom - list_.getBoundingClientRect().top : 0;
}

/** Room kept beyond the cards' bottom that is not worth a layout of the whole list: the
 * estimate is rounded up to a whole pixel. */
const ROOM_SLACK_PX = 2;
/** A page of cards is coming in (between `renderPage` and `finish`). */
let filling = false;

/** Cards that fill the window: the list's first frame shows them all. */
const FIRST_SCREEN = 5;
/** Never more cards in one frame than this, however fast the last frames were. */
const MAX_PER_FRAME = 4;

let renderGeneration = 0;

function updateCount(n: number): void {
  const badge = document.getElementById("seq-count");
  if (!badge) return;
  badge.hidden = n === 0;
  badge.textContent = String(n);
}

/** Opens the page of sequence `id` in place of the list. */
function openPage(id: number): void {
  if (!root) return;
  const el = root;
  listEl = null;
  cards.clear();
  void renderSequencePage(el, id, () => void renderSequences(el));
}

export function onSequencesEvent(e: AppEvent): void {
  const pageId = openPageId();
  if (pageId !== null) {
    const ids =
      e.type === "job_changed" ? [e.sequence_id] :
      e.type === "sequences_changed" ? e.ids : [];
    if (ids.includes(pageId)) refreshPage();
    return;
  }
  switch (e.type) {
    case "job_progress":
      progress(e.job_id, e.photos_done, e.photos_total, e.bytes_done, e.bytes_total);
      break;
    case "job_changed":
      scheduleRefresh(e.sequence_id);
      if (e.status === "done" || e.status === "failed") void maybeNotify(e.sequence_id, e.status, e.job_id);
      break;
    case "sequences_changed":
      for (const id of e.ids) scheduleRefresh(id);
      break;
  }
}

function scheduleRefresh(id: number): void {
  pendingRefresh.add(id);
  if (refreshTimer !== null) return;
  refreshTimer = window.setTimeout(() => {
    refreshTimer = null;
    const ids = [...pendingRefresh];
    pendingRefresh.clear();
    for (const id of ids) void refresh(id);
  }, 120);
}

async function refresh(id: number): Promise<void> {
  if (!root || root.hidden) {
    // Not on screen: re-read everything next time it is shown.
    return;
  }
  if (!listEl) {
    await renderSequences(root);
    return;
  }
  let s: SequenceSummary;
  try {
    s = await api.sequence(id);
  } catch {
    cards.get(id)?.remove();
    cards.delete(id);
    sequences.delete(id);
    scheduleFit();
    const at = ordered.findIndex((o) => o.id === id);
    if (at >= 0) {
      ordered.splice(at, 1);
      if (at < shown) shown--;
    }
    return;
  }
  const known = sequences.has(id);
  sequences.set(id, s);
  const old = cards.get(id);
  // An older sequence without a card yet: its card is drawn from the fresh summary when
  // it is shown.
  if (!old && known) {
    const at = ordered.findIndex((o) => o.id === id);
    if (at >= 0) ordered[at] = s;
    return;
  }
  const fresh = sequenceCard(s);
  // Keyboard focus stays on the sequence, or on a stepper step, when its card is re-drawn.
  const focusedHead = old !== undefined && document.activeElement === old.querySelector("h2");
  const focusKey = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
  if (old) old.replaceWith(fresh);
  else {
    // A new sequence: on top, as the newest.
    listEl.prepend(fresh);
    ordered.unshift(s);
    shown++;
  }
  if (focusedHead) {
    const head = fresh.querySelector<HTMLElement>("h2");
    if (head) {
      head.tabIndex = -1;
      head.focus();
    }
  }
  if (focusKey) fresh.querySelector<HTMLElement>(`[data-focus-key="${focusKey}"]`)?.focus();
  cards.set(id, fresh);
  scheduleFit();
  updateCount(sequences.size);
}

async function maybeNotify(sequenceId: number, status: string, jobId: number): Promise<void> {
  const s = await api.sequence(sequenceId).catch(() => null);
  if (!s) return;
  const job = s.jobs.find((x) => x.id === jobId);
  const mly = job && job.destination === "mapillary" ? mapillaryNotice(s.name, job) : null;
  if (mly) {
    // Published on the map or refused by Mapillary: said as Mapillary says it.
    void notify(mly.title, mly.body);
    return;
  }
  if (status === "failed") {
    const j = s.jobs.find((x) => x.status === "failed");
    void notify(`${s.name}: upload failed`, `${j?.label ?? "A destination"}: ${j?.last_error ?? "see MTP Desktop"}`);
  } else if (s.jobs.length > 0 && s.jobs.every((j) => j.status === "done")) {
    // A done job with a note did not end plainly (partly published, not linked…): said
    // as its row says it, never as "published".
    const noted = s.jobs.filter((j) => j.note);
    if (noted.length === 0) void notify(`${s.name} is published`, `Done on ${s.jobs.map((j) => j.label).join(", ")}.`);
    else void notify(`${s.name}: finished, with notes`, noted.map((j) => `${j.label}: ${j.note}`).join("\n"));
  }
}

function sequenceCard(s: SequenceSummary): HTMLElement {
  const active = s.jobs.some((j) => j.status === "pending" || j.status === "running");
  const paused = s.jobs.some((j) => j.status === "paused");
  const missing = ALL.filter((d) => !s.jobs.some((j) => j.destination === d.id));
  const add = missing.length
    ? (() => {
        const sel = h("select", { class: "add-dest", "aria-label": "Send to another destination" }, h("option", { value: "" }, "Send to…"), ...missing.map((d) => h("option", { value: d.id }, d.label)));
        sel.addEventListener("change", async () => {
          const d = sel.value as Destination;
          if (!d) return;
          try {
            const skipped = await api.queueUpload(s.id, [d]);
            for (const m of skipped) toast(m, "error");
          } catch (e) {
            toast((e as Error).message, "error");
          }
        });
        return sel;
      })()
    : null;
  const meta = [
    s.photo_count === 1 ? "1 photo" : `${s.photo_count} photos`,
    `${(s.distance_m / 1000).toFixed(2)} km`,
    formatBytes(s.total_bytes),
    s.transport_type ?? "no transport type",
    s.started_at ? new Date(s.started_at).toISOString().slice(0, 16).replace("T", " ") + " UTC" : null,
    s.is_360 ? "360°" : null,
  ].filter(Boolean);
  return h(
    "article",
    { class: "seq-card", "data-sequence": s.id },
    h(
      "header",
      { class: "seq-head" },
      h("div", {}, h("h2", {}, s.name), h("p", { class: "muted small" }, meta.join(" · ")), s.tags.length ? h("p", { class: "tags" }, ...s.tags.map((t) => h("span", { class: "tag" }, t))) : null),
      h(
        "div",
        { class: "seq-actions" },
        h("button", { class: "secondary small-btn", "data-action": "open", onclick: () => openPage(s.id) }, "Open"),
        active ? button("Pause all", () => act({ kind: "sequence", id: s.id }, "pause")) : null,
        paused ? button("Resume all", () => act({ kind: "sequence", id: s.id }, "resume")) : null,
        add,
      ),
    ),
    s.deleting_at !== null
      ? h("p", { class: "notice small", "data-deleting": "true" }, "Being deleted everywhere: it leaves this list once every service confirmed. Open it to follow.")
      : null,
    s.jobs.length === 0
      ? h("p", { class: "muted" }, "Not sent anywhere yet: choose a destination with “Send to…”.")
      : h("div", { class: "jobs" }, ...s.jobs.map(jobRow)),
  );
}

function button(label: string, onclick: () => void, cls = "secondary"): HTMLButtonElement {
  return h("button", { class: `${cls} small-btn`, onclick }, label);
}

async function act(target: { kind: "sequence" | "job"; id: number }, action: "pause" | "resume" | "cancel" | "retry"): Promise<void> {
  try {
    await api.jobAction(target, action);
  } catch (e) {
    toast((e as Error).message, "error");
  }
}


function jobRow(j: JobView): HTMLElement {
  const st = statusText(j);
  const pct = j.bytes_total > 0 ? (100 * j.bytes_done) / j.bytes_total : j.status === "done" ? 100 : 0;
  const link = j.remote_url
    ? h(
        "div",
        {},
        h("button", { class: "link", onclick: () => void api.openExternal(j.remote_url as string), title: j.remote_url }, `View on ${j.label}`),
        j.remote_id ? h("span", { class: "muted small", title: j.remote_id }, j.remote_id) : null,
      )
    : j.remote_id
      ? h("span", { class: "muted small", title: j.remote_id }, `id ${j.remote_id}`)
      : null;
  const actions: HTMLElement[] = [];
  if (j.status === "pending" || j.status === "running") actions.push(button("Pause", () => act({ kind: "job", id: j.id }, "pause")));
  if (j.status === "paused") actions.push(button("Resume", () => act({ kind: "job", id: j.id }, "resume")));
  const named = j.status === "failed" ? linkIn(j.last_error) : null;
  if (named) actions.push(button("Open the page", () => void api.openExternal(named).catch((e: Error) => toast(e.message, "error")), "secondary open-named"));
  if (j.status === "failed" || j.status === "cancelled") actions.push(button((j.status === "failed" && mapillaryRetryLabel(j)) || "Retry", () => act({ kind: "job", id: j.id }, "retry")));
  if (j.status === "waiting_auth") actions.push(button("Integrate…", () => document.getElementById("nav-integrations")?.click()));
  if (j.status !== "done" && j.status !== "cancelled") actions.push(button("Cancel", () => act({ kind: "job", id: j.id }, "cancel"), "secondary danger"));
  return h(
    "div",
    { class: `job job-${j.status}`, "data-job": j.id, "data-destination": j.destination, "data-status": j.status, "data-stage": j.stage },
    h("div", { class: "job-dest" }, j.label),
    h(
      "div",
      { class: "job-main" },
      h("div", { class: "progress" }, h("div", { class: "bar", style: `width:${pct.toFixed(1)}%` })),
      h(
        "div",
        { class: "job-line" },
        h("span", { class: `job-status ${st.cls}`, title: st.text }, st.text),
        h("span", { class: "job-numbers muted small" }, numbers(j.photos_done, j.photos_total, j.bytes_done, j.bytes_total, j.destination === "mtpw")),
        h("span", { class: "job-speed muted small" }, j.status === "running" ? speedText(j.id, j.bytes_total - j.bytes_done) : ""),
      ),
    ),
    h("div", { class: "job-link" }, link),
    h("div", { class: "job-actions" }, ...actions),
    j.destination === "mapillary" ? mapillaryStepper(j) : null,
  );
}

/** The last speed shown for a running row, kept across re-renders of its card. */
function speedText(jobId: number, left: number): string {
  const sp = speeds.get(jobId);
  return sp && sp.rate > 0 ? `${formatBytes(sp.rate)}/s · ${formatDuration(left / sp.rate)} left` : "";
}

function numbers(pd: number, pt: number, bd: number, bt: number, metadataOnly: boolean): string {
  if (metadataOnly) return "metadata only";
  return `${pd}/${pt} photos · ${formatBytes(bd)} of ${formatBytes(bt)}`;
}

/** A progress tick: touch only this row's bar and numbers. */
function progress(jobId: number, pd: number, pt: number, bd: number, bt: number): void {
  const row = document.querySelector<HTMLElement>(`.job[data-job="${jobId}"]`);
  if (!row) return;
  const bar = row.querySelector<HTMLElement>(".bar");
  if (bar) bar.style.width = `${bt > 0 ? ((100 * bd) / bt).toFixed(1) : 0}%`;
  const nums = row.querySelector(".job-numbers");
  if (nums) nums.textContent = numbers(pd, pt, bd, bt, false);
  const now = performance.now();
  const sp = row.querySelector(".job-speed");
  if (row.dataset.status !== "running") {
    speeds.delete(jobId);
    if (sp) sp.textContent = "";
    return;
  }
  const prev = speeds.get(jobId);
  if (!prev) {
    speeds.set(jobId, { at: now, bytes: bd, rate: 0, since: now, sinceBytes: bd });
    return;
  }
  if (now <= prev.at) return;
  // The first events of an upload come in a burst (small files, buffers filling): measure
  // over at least two seconds before showing a speed, then smooth it.
  const elapsed = now - prev.since;
  if (elapsed < 2000) {
    speeds.set(jobId, { ...prev, at: now, bytes: bd });
    return;
  }
  const inst = prev.rate > 0 ? ((bd - prev.bytes) * 1000) / (now - prev.at) : ((bd - prev.sinceBytes) * 1000) / elapsed;
  const rate = prev.rate > 0 ? prev.rate * 0.8 + inst * 0.2 : inst;
  speeds.set(jobId, { ...prev, at: now, bytes: bd, rate });
  if (sp && rate > 0) sp.textContent = `${formatBytes(rate)}/s · ${formatDuration((bt - bd) / rate)} left`;
}
