import {
  api,
  onDragDrop,
  pickFolder,
  pickGpx,
  type Destination,
  type PrepareOptions,
  type PreparedImport,
  type TransportType,
} from "../ipc";
import { clear, formatBytes, h, toast } from "../dom";
import { drawTrack, type TrackMap } from "../map";

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
let options: PrepareOptions = {};
let transports: TransportType[] = [];

/** Folders can be dropped on the window from any screen: they open in Import. */
export async function listenForDrops(el: HTMLElement): Promise<void> {
  root = el;
  if (!dropListening) {
    dropListening = true;
    await onDragDrop({
      hover: (on) => document.getElementById("dropzone")?.classList.toggle("hover", on),
      drop: (paths) => {
        if (paths.length > 0) {
          document.getElementById("nav-import")?.click();
          void read(paths[0]);
        }
      },
    });
  }
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

function showStart(): void {
  map?.destroy();
  map = null;
  clear(root);
  const gpxLabel = h("span", { class: "muted", id: "gpx-path" }, options.gpx ?? "none");
  root.append(
    h("h1", {}, "Import"),
    h("p", { class: "lead" }, "Turn a folder of geotagged photos into clean sequences. You will see the track and everything that was left out before anything is saved."),
    h(
      "div",
      { class: "dropzone", id: "dropzone" },
      h("p", { class: "empty-title" }, "Drop a folder of photos here"),
      h("p", {}, "Geotagged JPEGs, flat or 360°. Sub-folders are read too; your files are never modified."),
      h("button", { class: "primary", id: "pick-folder", onclick: () => void choose() }, "Choose folder…"),
    ),
    h(
      "details",
      { class: "options" },
      h("summary", {}, "Options: GPX track, time offset, spacing"),
      h(
        "div",
        { class: "form-grid" },
        h("label", {}, "GPX track (for photos without GPS)"),
        h("div", {}, gpxLabel, " ", h("button", { class: "secondary", onclick: () => void chooseGpx(gpxLabel) }, "Choose…"), " ",
          h("button", { class: "link", onclick: () => { options.gpx = null; gpxLabel.textContent = "none"; } }, "clear")),
        h("label", { for: "opt-offset" }, "Camera clock offset to the GPX (seconds, + if the camera is late)"),
        numberInput("opt-offset", options.gpx_offset_s ?? 0, (v) => (options.gpx_offset_s = v ?? 0)),
        h("label", { for: "opt-tz" }, "Camera time zone for photos without one (minutes from UTC; empty = this computer's)"),
        numberInput("opt-tz", options.camera_utc_offset_minutes ?? null, (v) => (options.camera_utc_offset_minutes = v)),
        h("label", { for: "opt-min-dist" }, "Keep at most one photo every … metres (1–20, empty = all)"),
        numberInput("opt-min-dist", options.plan?.min_distance_m ?? null, (v) => (options.plan = { ...options.plan, min_distance_m: v })),
        h("label", { for: "opt-min-int" }, "Keep at most one photo every … seconds (1–20, empty = all)"),
        numberInput("opt-min-int", options.plan?.min_interval_s ?? null, (v) => (options.plan = { ...options.plan, min_interval_s: v })),
        h("label", { for: "opt-heading" }, "Heading offset (degrees, e.g. 90 for a camera facing right)"),
        numberInput("opt-heading", options.plan?.heading_offset_deg ?? 0, (v) => (options.plan = { ...options.plan, heading_offset_deg: v ?? 0 })),
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
    options.gpx = path;
    label.textContent = path;
  }
}

async function read(path: string): Promise<void> {
  if (reading) return;
  reading = true;
  map?.destroy();
  map = null;
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
  try {
    prepared = await api.prepareFolder(path, options);
    showPlan(prepared);
  } catch (e) {
    const err = e as { message: string };
    prepared = null;
    showStart();
    root.insertBefore(h("div", { class: "fatal", role: "alert" }, err.message), root.children[1] ?? null);
  } finally {
    reading = false;
  }
}

function showPlan(p: PreparedImport): void {
  map?.destroy();
  clear(root);
  const s = p.summary;
  const header = h(
    "div",
    { class: "plan-head" },
    h("div", {}, h("h1", {}, "Import"), h("p", { class: "muted path" }, p.folder)),
    h("button", { class: "secondary", onclick: () => { prepared = null; showStart(); } }, "Choose another folder"),
  );
  const stats = h(
    "p",
    { class: "plan-stats", id: "plan-stats" },
    `${p.sequences.length} sequence${p.sequences.length === 1 ? "" : "s"} · ${s.kept} photos kept · ${p.left_out.length} left out · ${(s.distance_m / 1000).toFixed(2)} km · ${formatBytes(s.total_bytes)}`,
  );
  const mapEl = h("div", { class: "map", id: "track-map" });
  const seqList = h(
    "div",
    { class: "plan-sequences" },
    ...p.sequences.map((seq, i) =>
      h(
        "div",
        { class: "plan-seq" },
        h("strong", {}, `Sequence ${i + 1}`),
        ` · ${seq.photo_count} photos · ${(seq.distance_m / 1000).toFixed(2)} km${seq.is_360 ? " · 360°" : ""}`,
        h("div", { class: "muted" }, `${fmtTime(seq.started_at)} → ${fmtTime(seq.ended_at)} UTC · ${seq.split_message}`),
      ),
    ),
  );
  const leftOut = h(
    "details",
    { class: "left-out", open: p.left_out.length > 0 && p.left_out.length <= 20 },
    h("summary", {}, `Left out (${p.left_out.length})`),
    p.left_out.length === 0
      ? h("p", { class: "muted" }, "Nothing: every file is in a sequence.")
      : h(
          "table",
          { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Why"))),
          h("tbody", {}, ...p.left_out.map((d) => h("tr", {}, h("td", { class: "file" }, d.file_name), h("td", {}, d.message)))),
        ),
  );
  const form = p.sequences.length > 0 ? saveForm(p) : h("div", { class: "fatal" }, "No photo of this folder can be uploaded: the reasons are listed under Left out.");
  const already = p.already_imported
    ? h("div", { class: "notice", id: "already-imported" }, `This folder was imported before (${p.already_imported.names.join(", ")}). Saving again will not create duplicates.`)
    : null;
  root.append(header, stats, ...(already ? [already] : []), h("div", { class: "plan-body" }, h("div", { class: "plan-left" }, mapEl, seqList, leftOut), form));
  map = drawTrack(mapEl, p.sequences, p.left_out);
}

function saveForm(p: PreparedImport): HTMLElement {
  const name = h("input", { id: "seq-name", type: "text", value: p.suggested_name, required: true, maxlength: 200 });
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
    const box = h("input", { type: "checkbox", id: `dest-${d.id}`, value: d.id, checked: problems.length === 0 && d.id !== "mtpw", disabled: problems.length > 0 });
    const why = problems.length > 0 ? h("div", { class: "why" }, problems[0].message) : null;
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
    save,
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
        );
        for (const s of saved.skipped) toast(s, "error");
        toast(saved.created ? `Saved ${saved.sequence_ids.length} sequence(s).` : "This folder was already saved: nothing duplicated.", "ok");
        prepared = null;
        document.getElementById("nav-sequences")?.click();
      } catch (e) {
        toast((e as { message: string }).message, "error");
        save.disabled = false;
      }
    })();
  });
  refresh();
  return form;
}

function fmtTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
