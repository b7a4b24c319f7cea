import {
  api,
  onDragDrop,
  pickFolder,
  pickGpx,
  type Destination,
  type DryRun,
  type IntegrationCard,
  type PrepareOptions,
  type SequenceChoice,
  type PreparedImport,
  type TransportType,
} from "../ipc";
import { clear, formatBytes, h, toast } from "../dom";
import { colourOf, drawTrack, type TrackMap } from "../map";
import { existingBar, stopOverlay } from "./import-existing";

const DESTINATIONS: { id: Destination; label: string }[] = [
  { id: "mapillary", label: "Mapillary" },
  { id: "kartaview", label: "KartaView" },
  { id: "panoramax", label: "Panoramax" },
  { id: "mtpw", label: "Map the Paths Web" },
];

let root: HTMLElement;
let map: TrackMap | null = null;
let prepared: PreparedImport | null = null;
let reading = false;
let dropListening = false;
/** Options typed on the start screen: used for the next folder only, then cleared. */
let pending: PrepareOptions = {};
/** Options the plan on screen was made with (changed in place by the GPX rescue). */
let current: { path: string; options: PrepareOptions } | null = null;
let transports: TransportType[] = [];
let cards: IntegrationCard[] = [];
let choicesListener: (() => void) | null = null;

/** Folders can be dropped on the window from any screen: they open in Import. */
export async function listenForDrops(el: HTMLElement): Promise<void> {
  root = el;
  if (!dropListening) {
    dropListening = true;
    await onDragDrop({
      hover: (on) => {
        document.body.classList.toggle("drag-hover", on);
        document.getElementById("dropzone")?.classList.toggle("hover", on);
      },
      drop: (paths) => void dropped(paths),
    });
  }
}

async function dropped(paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  document.getElementById("nav-import")?.click();
  const kinds = await api.pathKinds(paths).catch(() => paths.map(() => "dir" as const));
  const dirs = paths.filter((_, i) => kinds[i] === "dir");
  const files = paths.filter((_, i) => kinds[i] === "file");
  if (dirs.length > 0) {
    if (dirs.length > 1 || files.length > 0) {
      toast(`You dropped ${paths.length} items: reading the folder ${baseName(dirs[0])}. Drop the others one at a time.`, "info");
    }
    await read(dirs[0]);
    return;
  }
  // A GPX track: it places the photos of the plan on screen (or of the next folder).
  if (files.length > 0 && files.every((f) => f.toLowerCase().endsWith(".gpx"))) {
    if (prepared && current) {
      const main = document.getElementById("main");
      await plan(current.path, { ...current.options, gpx: files[0] }, { scrollTop: main?.scrollTop ?? 0 });
    } else {
      pending.gpx = files[0];
      toast(`The GPX track ${baseName(files[0])} will place the photos of the next folder you import.`, "info");
      if (!reading) showStart();
    }
    return;
  }
  // Photo files: read just these, from the folder that holds them.
  const parent = parentOf(files[0]);
  const same = files.filter((f) => parentOf(f) === parent);
  if (same.length < files.length) toast(`The dropped photos are in several folders: reading the ${same.length} in ${baseName(parent)}.`, "info");
  await read(parent, same);
}

function parentOf(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i > 0 ? path.slice(0, i) : path;
}

function baseName(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return path.slice(i + 1);
}

export async function renderImport(el: HTMLElement): Promise<void> {
  root = el;
  await listenForDrops(el);
  if (transports.length === 0) transports = await api.transportTypes();
  if (prepared) showPlan(prepared);
  else if (!reading) showStart();
}

/** Progress events while a folder is read. */
export function onImportProgress(done: number, total: number): void {
  const bar = document.getElementById("read-progress-bar");
  const label = document.getElementById("read-progress-label");
  if (bar) bar.style.width = `${total ? (100 * done) / total : 0}%`;
  if (label) label.textContent = `Reading photo metadata: ${done} of ${total} files`;
}

/** "+02:00", "-05:30", "UTC+2", "+2", "-0330" → minutes; "" → null (this computer's zone). */
export function parseZone(text: string): number | null | "invalid" {
  const t = text.trim().replace(/^(utc|gmt)\s*/i, "");
  if (t === "") return null;
  const m = /^([+-−]?)(\d{1,2})(?::?(\d{2}))?$/.exec(t);
  if (!m) return "invalid";
  const h = Number(m[2]);
  const min = Number(m[3] ?? 0);
  if (h > 14 || min >= 60) return "invalid";
  return (m[1] === "-" || m[1] === "−" ? -1 : 1) * (h * 60 + min);
}

export function formatZone(minutes: number | null | undefined): string {
  if (minutes === null || minutes === undefined) return "";
  const sign = minutes < 0 ? "-" : "+";
  const a = Math.abs(minutes);
  return `${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

function zoneInput(id: string, value: number | null | undefined, set: (v: number | null) => void): HTMLInputElement {
  const input = h("input", { id, type: "text", placeholder: "+02:00", title: "The camera clock's zone, like +02:00 or -05:30. Empty: this computer's zone.", value: formatZone(value), "aria-describedby": `${id}-err` });
  input.addEventListener("change", () => {
    const v = parseZone(input.value);
    const err = document.getElementById(`${id}-err`);
    if (v === "invalid") {
      input.setAttribute("aria-invalid", "true");
      if (err) err.textContent = "Write the zone like +02:00 or -05:30.";
      return;
    }
    input.removeAttribute("aria-invalid");
    if (err) err.textContent = "";
    set(v);
  });
  return input;
}

/** Before the map goes: the overlay's search stops and its layer goes with it. */
function dropMap(): void {
  stopOverlay();
  map?.destroy();
  map = null;
}

function showStart(): void {
  dropMap();
  clear(root);
  const gpxLabel = h("span", { class: "muted", id: "gpx-path" }, pending.gpx ?? "none");
  root.append(
    h("h1", {}, "Import"),
    h("p", { class: "lead" }, "Turn a folder of geotagged photos into clean sequences. You will see the track and everything that was left out before anything is saved."),
    h(
      "div",
      { class: "dropzone", id: "dropzone" },
      h("p", { class: "empty-title" }, "Drop a folder of photos here"),
      h("p", {}, "Geotagged JPEGs, flat or 360°, or just some photo files. Sub-folders are read too; your files are never modified."),
      h("button", { class: "primary", id: "pick-folder", onclick: () => void choose() }, "Choose folder…"),
    ),
    h(
      "details",
      { class: "options" },
      h("summary", {}, "Options for the next folder: GPX track, time zone, spacing"),
      h(
        "div",
        { class: "form-grid" },
        h("label", {}, "GPX track (for photos without GPS)"),
        h("div", {}, gpxLabel, " ", h("button", { class: "secondary", onclick: () => void chooseGpx(gpxLabel) }, "Choose…"), " ",
          h("button", { class: "link", onclick: () => { pending.gpx = null; gpxLabel.textContent = "none"; } }, "clear")),
        h("label", { for: "opt-offset" }, "Camera clock ahead of the GPX by (seconds; negative if behind)"),
        numberInput("opt-offset", pending.gpx_offset_s ?? 0, (v) => (pending.gpx_offset_s = v ?? 0)),
        h("label", { for: "opt-tz" }, "Camera time zone, for photos that do not record one"),
        h("div", {}, zoneInput("opt-tz", pending.camera_utc_offset_minutes ?? null, (v) => (pending.camera_utc_offset_minutes = v)), h("div", { class: "field-error", id: "opt-tz-err" })),
        h("label", { for: "opt-min-dist" }, "Keep at most one photo every … metres (1–20, empty = all)"),
        numberInput("opt-min-dist", pending.plan?.min_distance_m ?? null, (v) => (pending.plan = { ...pending.plan, min_distance_m: v })),
        h("label", { for: "opt-min-int" }, "Keep at most one photo every … seconds (1–20, empty = all)"),
        numberInput("opt-min-int", pending.plan?.min_interval_s ?? null, (v) => (pending.plan = { ...pending.plan, min_interval_s: v })),
        h("label", { for: "opt-heading" }, "Heading offset (degrees, e.g. 90 for a camera facing right)"),
        numberInput("opt-heading", pending.plan?.heading_offset_deg ?? 0, (v) => (pending.plan = { ...pending.plan, heading_offset_deg: v ?? 0 })),
      ),
    ),
  );
}

function numberInput(id: string, value: number | null, set: (v: number | null) => void): HTMLInputElement {
  const input = h("input", { id, type: "number", step: "any", value: value === null ? "" : String(value) });
  input.addEventListener("change", () => set(input.value.trim() === "" ? null : Number(input.value)));
  return input;
}

async function choose(): Promise<void> {
  const path = await pickFolder();
  if (path) await read(path);
}

async function chooseGpx(label: HTMLElement): Promise<void> {
  const path = await pickGpx();
  if (path) {
    pending.gpx = path;
    label.textContent = path;
  }
}

/** A new folder: the start screen's options apply to it once, then are cleared. */
async function read(path: string, files: string[] = []): Promise<void> {
  const options = { ...pending, files };
  pending = {};
  await plan(path, options);
}

/** Reads `path` with `options` and shows the plan (also used to re-plan in place). */
async function plan(path: string, options: PrepareOptions, keep?: { scrollTop: number }): Promise<void> {
  if (reading) return;
  reading = true;
  const inPlace = keep !== undefined && prepared !== null;
  if (inPlace) {
    const status = document.getElementById("replan-status");
    if (status) status.textContent = "Reading the photos again with the track…";
  } else {
    dropMap();
    clear(root);
    root.append(
      h("h1", {}, "Import"),
      h(
        "div",
        { class: "reading" },
        h("p", { id: "read-progress-label" }, `Reading ${path}…`),
        h("div", { class: "progress" }, h("div", { id: "read-progress-bar" })),
      ),
    );
  }
  try {
    const [p, integrations] = await Promise.all([api.prepareFolder(path, options), api.integrations().catch(() => cards)]);
    cards = integrations;
    prepared = p;
    current = { path, options };
    showPlan(p);
    if (keep) {
      const main = document.getElementById("main");
      if (main) main.scrollTop = keep.scrollTop;
    }
  } catch (e) {
    const err = e as { message: string };
    if (inPlace) {
      const status = document.getElementById("replan-status");
      if (status) {
        status.textContent = err.message;
        status.classList.add("bad");
      }
    } else {
      prepared = null;
      current = null;
      showStart();
      root.insertBefore(h("div", { class: "fatal", role: "alert" }, err.message), root.children[1] ?? null);
    }
  } finally {
    reading = false;
  }
}

const NEEDS_POSITION = new Set(["no_gps", "no_position", "bad_gps", "invalid_coordinates", "null_island", "outside_track"]);

/** The GPX rescue, where the missing positions are shown: add a track, set the zone and offset, re-plan. */
function gpxRescue(p: PreparedImport): HTMLElement | null {
  if (!current) return null;
  const missing = p.left_out_groups.filter((g) => NEEDS_POSITION.has(g.code)).reduce((n, g) => n + g.files.length, 0);
  if (missing === 0 && !p.gpx) return null;
  const opts: PrepareOptions = { ...current.options };
  const path = current.path;
  const replan = () => {
    const main = document.getElementById("main");
    void plan(path, opts, { scrollTop: main?.scrollTop ?? 0 });
  };
  const addGpx = async () => {
    const gpx = await pickGpx();
    if (!gpx) return;
    opts.gpx = gpx;
    replan();
  };
  const offset = h("input", { id: "rescue-offset", type: "number", step: "1", value: String(opts.gpx_offset_s ?? 0) });
  const zoneErr = h("span", { class: "field-error", id: "rescue-tz-err" });
  const zone = zoneInput("rescue-tz", opts.camera_utc_offset_minutes ?? null, (v) => (opts.camera_utc_offset_minutes = v));
  const apply = h("button", { class: "secondary", id: "rescue-apply", type: "button", onclick: () => {
    if (parseZone(zone.value) === "invalid") { zone.focus(); return; }
    opts.gpx_offset_s = Number(offset.value) || 0;
    replan();
  } }, "Apply and re-plan");
  const head = p.gpx
    ? h("p", { id: "gpx-used" }, h("strong", {}, `Positions of ${plural(p.gpx_placed, "photo", "photos")} came from the GPX track `), h("span", { class: "path" }, baseName(p.gpx)), missing > 0 ? `; ${plural(missing, "photo is", "photos are")} still without a position (below).` : ".")
    : h("p", {}, h("strong", {}, `${plural(missing, "photo has", "photos have")} no usable position.`), " A GPX track recorded during the trip can place them by their time: add one here, or drag it onto the window.");
  return h(
    "section",
    { class: `rescue${missing === 0 ? " rescue-ok" : ""}`, id: "gpx-rescue", "aria-label": "Place photos with a GPX track" },
    head,
    h(
      "div",
      { class: "rescue-row" },
      h("button", { class: p.gpx ? "secondary" : "primary", id: "add-gpx", type: "button", onclick: () => void addGpx() }, p.gpx ? "Use another GPX track…" : "Add a GPX track…"),
      p.gpx ? h("button", { class: "link", id: "remove-gpx", type: "button", onclick: () => { opts.gpx = null; replan(); } }, "Remove the track") : null,
    ),
    h(
      "div",
      { class: "rescue-row" },
      h("label", { for: "rescue-tz", title: "For cameras that do not record their zone. Empty: this computer's zone." }, "Camera time zone"),
      zone,
      h("label", { for: "rescue-offset" }, "Camera clock ahead by (s)"),
      offset,
      apply,
    ),
    zoneErr,
    h("p", { class: "muted small", id: "replan-status", role: "status" }),
  );
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

function showPlan(p: PreparedImport): void {
  dropMap();
  clear(root);
  const s = p.summary;
  const leftOutCount = p.left_out_groups.reduce((n, g) => n + g.files.length, 0);
  const header = h(
    "div",
    { class: "plan-head" },
    h("div", {}, h("h1", {}, "Import"), h("p", { class: "muted path" }, p.folder)),
    h("button", { class: "secondary", onclick: () => { prepared = null; current = null; showStart(); } }, "Choose another folder"),
  );
  const stats = h(
    "p",
    { class: "plan-stats", id: "plan-stats" },
    [
      plural(p.sequences.length, "sequence", "sequences"),
      `${s.kept} photo${s.kept === 1 ? "" : "s"} kept`,
      `${leftOutCount} left out`,
      p.not_photos.length ? `${p.not_photos.length} not photos, ignored` : null,
      `${(s.distance_m / 1000).toFixed(2)} km`,
      formatBytes(s.total_bytes),
    ].filter(Boolean).join(" · "),
  );
  const warnings = p.warnings.length
    ? h("div", { class: "warn-box", id: "plan-warnings", role: "alert" }, ...p.warnings.map((w) => h("p", {}, w)))
    : null;
  const already = p.already_imported
    ? h("div", { class: "notice", id: "already-imported" }, `This folder was imported before (${p.already_imported.names.join(", ")}). Saving again will not create duplicates.`)
    : null;
  const alreadySaved = p.already_saved.length
    ? h(
        "div",
        { class: "warn-box", id: "already-saved", role: "alert" },
        h("p", {}, h("strong", {}, "Some of these photos are already saved"), " (same files, imported from another folder). Saving them again would upload them twice:"),
        h("ul", {}, ...p.already_saved.map((a) => h("li", {}, `${plural(a.photos, "photo", "photos")} in “${a.name}”${a.folder ? ` (from ${a.folder})` : ""}`))),
      )
    : null;
  const mapEl = h("div", { class: "map", id: "track-map" });
  const choices = p.sequences.map((seq) => ({ index: seq.index, include: seq.include_by_default, name: "" }));
  const nameOf = (i: number) => {
    const base = (document.getElementById("seq-name") as HTMLInputElement | null)?.value.trim() || p.suggested_name;
    return p.sequences.length > 1 ? `${base} Part ${i + 1}` : base;
  };
  const seqList = h(
    "div",
    { class: "plan-sequences", id: "plan-sequences" },
    ...p.sequences.map((seq, i) => {
      const box = h("input", { type: "checkbox", class: "seq-include", id: `seq-include-${i}`, checked: choices[i].include });
      const nameInput = h("input", { type: "text", class: "seq-part-name", id: `seq-part-name-${i}`, placeholder: nameOf(i), "aria-label": `Name of sequence ${i + 1}`, maxlength: 200 });
      box.addEventListener("change", () => {
        choices[i].include = box.checked;
        card.classList.toggle("excluded", !box.checked);
        document.dispatchEvent(new CustomEvent("plan-choices"));
      });
      nameInput.addEventListener("input", () => (choices[i].name = nameInput.value));
      const where = [seq.camera ?? "unknown camera", seq.sub_folder ? `${seq.sub_folder}/` : "top folder"].join(" · ");
      const card = h(
        "div",
        { class: `plan-seq${choices[i].include ? "" : " excluded"}`, "data-index": seq.index },
        h("div", { class: "plan-seq-head" },
          box,
          h("span", { class: "swatch", style: `background:${colourOf(i)}`, "aria-hidden": "true" }),
          h("label", { for: `seq-include-${i}`, class: "seq-title" }, `Sequence ${i + 1}`),
          h("span", { class: "seq-where", title: where }, where),
        ),
        nameInput,
        h("div", { class: "muted small" },
          `${plural(seq.photo_count, "photo", "photos")} · ${(seq.distance_m / 1000).toFixed(2)} km${seq.is_360 ? " · 360°" : ""} · ${fmtTime(seq.started_at)} → ${fmtTime(seq.ended_at)} UTC`),
        h("div", { class: "muted small" }, seq.split_message, seq.from_gpx > 0 ? ` · ${plural(seq.from_gpx, "position", "positions")} from the GPX track` : ""),
        ...seq.warnings.map((w) => h("div", { class: "seq-warning" }, `⚠ ${w}. Left out unless you tick it.`)),
      );
      return card;
    }),
  );
  const groups = p.left_out_groups.map((g) =>
    h(
      "details",
      { class: "left-out-group", "data-code": g.code, open: p.left_out_groups.length === 1 && g.files.length <= 10 },
      h("summary", {}, h("strong", {}, g.title), h("span", { class: "count" }, String(g.files.length))),
      g.action ? h("p", { class: "action" }, g.action) : null,
      h(
        "table",
        { class: "table" },
        h("tbody", {}, ...g.files.map((f) => h("tr", {}, h("td", { class: "file", title: f.rel_path }, f.rel_path), h("td", {}, f.detail)))),
      ),
    ),
  );
  const leftOut = h(
    "section",
    { class: "left-out", id: "left-out" },
    h("h2", {}, `Left out (${leftOutCount})`),
    leftOutCount === 0 && p.sequences.length > 0 ? h("p", { class: "muted" }, "Nothing: every photo is in a sequence.") : null,
    leftOutCount === 0 && p.sequences.length === 0 ? h("p", { class: "muted" }, "No photo to leave out.") : null,
    ...groups,
    p.not_photos.length
      ? h(
          "details",
          { class: "left-out-group not-photos", id: "not-photos" },
          h("summary", {}, h("strong", {}, "Not photos, ignored"), h("span", { class: "count" }, String(p.not_photos.length))),
          h("p", { class: "action" }, "Documents, videos and sidecar files in the folder. Nothing to do."),
          h("ul", { class: "plain" }, ...p.not_photos.map((f) => h("li", { class: "file" }, f))),
        )
      : null,
  );
  const rescue = gpxRescue(p);
  const form = p.sequences.length > 0 ? saveForm(p, choices) : h("div", { class: "fatal", id: "nothing-to-upload" }, p.nothing_to_upload ?? "No photo of this folder can be uploaded yet: see why under Left out.");
  root.append(
    header,
    stats,
    ...[warnings, already, alreadySaved].filter((x): x is HTMLDivElement => x !== null),
    p.sequences.length > 0
      ? h("div", { class: "plan-body" }, h("div", { class: "plan-left" }, ...(rescue ? [rescue] : []), mapEl, existingBar(() => ({ track: map, cards })), seqList, leftOut), form)
      : // Nothing to describe or send: why first, then what the folder held, full width.
        h("div", { class: "plan-body plan-nothing" }, form, ...(rescue ? [rescue] : []), leftOut),
  );
  map = p.sequences.length > 0 ? drawTrack(mapEl, p.sequences, p.left_out) : null;
}

function saveForm(p: PreparedImport, choices: SequenceChoice[]): HTMLElement {
  const name = h("input", { id: "seq-name", type: "text", value: p.suggested_name, required: true, maxlength: 200 });
  name.addEventListener("input", () => {
    const base = name.value.trim() || p.suggested_name;
    document.querySelectorAll<HTMLInputElement>(".seq-part-name").forEach((el, i) => {
      el.placeholder = p.sequences.length > 1 ? `${base} Part ${i + 1}` : base;
    });
  });
  const description = h("textarea", { id: "seq-description", rows: 3 });
  const transport = h("select", { id: "seq-transport" }, h("option", { value: "" }, "Choose a transport type…"));
  const groups = new Map<string, HTMLOptGroupElement>();
  for (const t of transports) {
    let g = groups.get(t.group);
    if (!g) {
      g = h("optgroup", { label: t.group[0].toUpperCase() + t.group.slice(1) });
      groups.set(t.group, g);
      transport.append(g);
    }
    g.append(h("option", { value: t.name }, t.name));
  }
  const tags = h("input", { id: "seq-tags", type: "text", placeholder: "comma, separated" });
  const boxes = DESTINATIONS.map((d) => {
    const problems = p.sequences.flatMap((s) => s.checks.filter((c) => c.destination === d.id).flatMap((c) => c.problems.filter((x) => x.severity === "error" && x.code !== "transport_missing")));
    const card = cards.find((c) => c.service === d.id);
    const connected = !card || (card.connected_as !== null && !card.needs_reauth);
    const box = h("input", { type: "checkbox", id: `dest-${d.id}`, value: d.id, checked: problems.length === 0 && d.id !== "mtpw" && connected, disabled: problems.length > 0 });
    const why = problems.length > 0
      ? h("div", { class: "why" }, problems[0].message)
      : !connected
        ? h("div", { class: "why-muted", "data-why": "not-connected" }, card?.needs_reauth ? "sign-in expired — " : "not connected — ",
            h("button", { class: "link", type: "button", onclick: () => document.getElementById("nav-integrations")?.click() }, "Integrate"))
        : null;
    return { d, box, el: h("label", { class: "dest" }, box, ` ${d.label}`, why) };
  });
  const air = () => transports.find((t) => t.name === transport.value)?.group === "air";
  const note = h("p", { class: "muted", id: "dest-note" });
  const refresh = () => {
    const mly = boxes.find((b) => b.d.id === "mapillary");
    if (mly && air()) {
      mly.box.checked = false;
      mly.box.disabled = true;
      note.textContent = "Mapillary does not take air transport types.";
    } else if (mly) {
      mly.box.disabled = mly.el.querySelector(".why") !== null;
      note.textContent = "";
    }
    const mtpw = boxes.find((b) => b.d.id === "mtpw");
    if (mtpw && !transport.value) {
      mtpw.box.checked = false;
      note.textContent = (note.textContent ? note.textContent + " " : "") + "Map the Paths needs a transport type.";
    }
  };
  transport.addEventListener("change", refresh);
  for (const b of boxes) b.box.addEventListener("change", refresh);
  const save = h("button", { class: "primary", id: "save-import", type: "submit" }, "Save and upload");
  const saveLabel = () => {
    const n = choices.filter((c) => c.include).length;
    save.textContent = p.sequences.length > 1 ? `Save ${plural(n, "sequence", "sequences")} and upload` : "Save and upload";
    save.disabled = n === 0;
  };
  if (choicesListener) document.removeEventListener("plan-choices", choicesListener);
  choicesListener = saveLabel;
  document.addEventListener("plan-choices", saveLabel);
  const currentMeta = () => ({
    name: name.value.trim(),
    description: description.value.trim(),
    transport_type: transport.value || null,
    tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
  });
  const check = h("button", { class: "secondary", id: "check-import", type: "button" }, "Check");
  check.addEventListener("click", () => {
    void (async () => {
      const chosen = boxes.filter((b) => b.box.checked && !b.box.disabled).map((b) => b.d.id);
      if (chosen.length === 0) {
        toast("Tick at least one destination to check.", "error");
        return;
      }
      check.disabled = true;
      try {
        showCheck(await api.dryRun(p.token, currentMeta(), chosen));
      } catch (e) {
        toast((e as { message: string }).message, "error");
      } finally {
        check.disabled = false;
      }
    })();
  });
  const form = h(
    "form",
    { class: "save-form", id: "save-form" },
    h("h2", {}, "Describe it"),
    h("label", { for: "seq-name" }, "Name"),
    name,
    h("label", { for: "seq-description" }, "Description"),
    description,
    h("label", { for: "seq-transport" }, "Transport type"),
    transport,
    h("label", { for: "seq-tags" }, "Tags"),
    tags,
    h("h2", {}, "Send to"),
    ...boxes.map((b) => b.el),
    note,
    h("div", { class: "save-actions" }, check, save),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      if (!name.value.trim()) {
        toast("Give the sequence a name.", "error");
        name.focus();
        return;
      }
      const chosen = boxes.filter((b) => b.box.checked && !b.box.disabled).map((b) => b.d.id);
      if (chosen.includes("mtpw") && !transport.value) {
        toast("Map the Paths needs a transport type: choose one or untick it.", "error");
        return;
      }
      save.disabled = true;
      try {
        const saved = await api.saveImport(
          p.token,
          { name: name.value.trim(), description: description.value.trim(), transport_type: transport.value || null, tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) },
          chosen,
          choices,
        );
        for (const s of saved.skipped) toast(s, "error");
        toast(saved.created ? `Saved ${plural(saved.sequence_ids.length, "sequence", "sequences")}.` : "This folder was already saved: nothing duplicated.", "ok");
        prepared = null;
        current = null;
        document.removeEventListener("plan-choices", saveLabel);
        document.getElementById("nav-sequences")?.click();
        focusSaved(saved.sequence_ids[0]);
      } catch (e) {
        toast((e as { message: string }).message, "error");
        save.disabled = false;
      }
    })();
  });
  refresh();
  saveLabel();
  return form;
}

/** The dry run's result: per sequence and destination, what would be sent and refused. */
function showCheck(run: DryRun): void {
  document.getElementById("check-dialog")?.remove();
  const body = h("div", { class: "check-body" });
  for (const s of run.sequences) {
    body.append(h("h3", {}, `${s.name} — ${plural(s.photos, "photo", "photos")}, ${formatBytes(s.bytes)}`));
    for (const d of s.destinations) {
      const section = h("section", { class: "check-dest", "data-destination": d.destination });
      section.append(
        h("h4", {}, d.label),
        h(
          "p",
          { class: d.account.can_upload ? "check-ok" : "check-problem" },
          `${d.account.can_upload ? "Account ok" : "Account problem"}${d.account.username ? ` (${d.account.username})` : ""}: ${d.account.says}`,
        ),
        h(
          "p",
          {},
          d.destination === "mtpw"
            ? "Sends the sequence's details only (no photo)."
            : `${plural(d.photos, "photo", "photos")} · ${formatBytes(d.bytes)} · ${plural(d.chunks.length, "chunk", "chunks")}`,
        ),
      );
      if (!d.accepted) section.append(h("p", { class: "check-problem" }, `Saving leaves ${d.label} out for this sequence:`));
      if (d.refused.length > 0) {
        section.append(h("ul", { class: "check-refused" }, ...d.refused.map((r) => h("li", {}, r.file ? `${r.file}: ${r.reason}` : r.reason))));
      }
      if (d.fields.length > 0) {
        section.append(
          h("table", { class: "check-fields" },
            h("caption", {}, d.destination === "mtpw" ? "Fields sent" : "Fields sent with the first photo"),
            ...d.fields.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))),
          ),
        );
      }
      if (d.first_description) {
        let pretty = d.first_description;
        try {
          pretty = JSON.stringify(JSON.parse(d.first_description), null, 2);
        } catch {
          // Shown as it is.
        }
        section.append(h("details", {}, h("summary", {}, "MAP* description of the first photo"), h("pre", { class: "check-pre" }, pretty)));
      }
      if (d.notes.length > 0) section.append(h("ul", { class: "check-notes" }, ...d.notes.map((n) => h("li", {}, n))));
      body.append(section);
    }
  }
  const dialog = h(
    "dialog",
    { id: "check-dialog", class: "dialog check-dialog", "aria-labelledby": "check-title" },
    h("h2", { id: "check-title" }, "Check: nothing was sent"),
    body,
    h("div", { class: "dialog-actions" }, h("button", { class: "primary", id: "check-close", onclick: () => dialog.close() }, "Close")),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  (dialog.querySelector("#check-close") as HTMLButtonElement | null)?.focus();
}

/** After saving, keyboard focus goes to the first saved sequence, not the page body. */
function focusSaved(id: number | undefined): void {
  if (id === undefined) return;
  const deadline = Date.now() + 5000;
  const tick = () => {
    const head = document.querySelector<HTMLElement>(`.seq-card[data-sequence="${id}"] h2`);
    if (head) {
      head.tabIndex = -1;
      head.focus();
      head.scrollIntoView({ block: "nearest" });
    } else if (Date.now() < deadline) {
      setTimeout(tick, 100);
    }
  };
  tick();
}

function fmtTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
