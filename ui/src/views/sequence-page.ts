// One sequence after its upload: the track with every photo (kept and left out), a photo
// pane (thumbnail, EXIF summary, why it was left out; arrow keys step through), where it is
// on each service, its history, and Edit and Delete (here and on the services).
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { api, type ChangeOutcome, type DeletePlan, type PagePhoto, type RemotePlan, type SequencePage } from "../ipc";
import { clear, formatBytes, h, toast } from "../dom";
import { statusText } from "./status";

interface Open {
  id: number;
  root: HTMLElement;
  back: () => void;
  page: SequencePage | null;
  selected: number;
  map: L.Map | null;
  marker: L.CircleMarker | null;
  thumbs: Map<string, string>;
  /** "Delete everywhere" was asked here: the page going away means it is done. */
  deleteAsked: boolean;
}

let open: Open | null = null;
let refreshTimer: number | null = null;

/** Which sequence the page shows, if one is open. */
export function openPageId(): number | null {
  return open?.id ?? null;
}

/** Shows sequence `id` in `root`; `back` returns to the list. */
export async function renderSequencePage(root: HTMLElement, id: number, back: () => void): Promise<void> {
  closePage();
  open = { id, root, back, page: null, selected: 0, map: null, marker: null, thumbs: new Map(), deleteAsked: false };
  document.addEventListener("keydown", onKey);
  await load(true);
}

/** Leaves the page (its map and key handler go). */
export function closePage(): void {
  if (!open) return;
  open.map?.remove();
  document.removeEventListener("keydown", onKey);
  open = null;
}

/** Something about the sequence changed: read it again (throttled). */
export function refreshPage(): void {
  if (!open || refreshTimer !== null) return;
  refreshTimer = window.setTimeout(() => {
    refreshTimer = null;
    void load(false);
  }, 200);
}

async function load(first: boolean): Promise<void> {
  const o = open;
  if (!o) return;
  let page: SequencePage;
  try {
    page = await api.sequencePage(o.id);
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === "not_found" && (o.deleteAsked || o.page?.deleting_at)) {
      toast(`“${o.page?.summary.name ?? "The sequence"}” is deleted everywhere it could be, and removed from MTP Desktop.`, "ok");
    } else if (err.code !== "not_found") {
      toast(err.message, "error");
    }
    const back = o.back;
    closePage();
    back();
    return;
  }
  if (open !== o) return;
  o.page = page;
  if (first) {
    build(o, page);
  } else {
    fillHeader(o, page);
    fillDestinations(page);
    fillHistory(page);
  }
}

function build(o: Open, page: SequencePage): void {
  clear(o.root);
  const wrap = h(
    "div",
    { class: "seq-page", id: "seq-page", "data-sequence": o.id },
    h(
      "header",
      { class: "page-head" },
      h("button", { class: "link", id: "page-back", onclick: () => { const b = o.back; closePage(); b(); } }, "← All sequences"),
      h("div", { class: "page-title-row" }, h("h1", { id: "page-title" }), h("div", { class: "page-actions" },
        h("button", { class: "secondary", id: "page-edit", onclick: () => void editDialog() }, "Edit"),
        h("button", { class: "secondary danger", id: "page-delete", onclick: () => void deleteDialog() }, "Delete…"),
      )),
      h("p", { class: "muted", id: "page-meta" }),
      h("div", { id: "page-deleting" }),
    ),
    h(
      "div",
      { class: "page-body" },
      h("div", { class: "map page-map", id: "page-map" }),
      h(
        "aside",
        { class: "photo-pane", id: "photo-pane", "aria-live": "polite" },
        h(
          "div",
          { class: "photo-nav" },
          h("button", { class: "secondary small-btn", id: "photo-prev", "aria-label": "Previous photo", onclick: () => step(-1) }, "←"),
          h("span", { id: "photo-pos" }),
          h("button", { class: "secondary small-btn", id: "photo-next", "aria-label": "Next photo", onclick: () => step(1) }, "→"),
        ),
        h("div", { class: "photo-frame" }, h("img", { id: "photo-thumb", alt: "" })),
        h("p", { class: "photo-name", id: "photo-name" }),
        h("p", { class: "bad", id: "photo-reason" }),
        h("dl", { class: "photo-exif", id: "photo-exif" }),
        h("p", { class: "muted small" }, "← and → step through the photos."),
      ),
    ),
    h("section", { class: "page-section" }, h("h2", {}, "Where it is"), h("div", { id: "page-destinations", class: "page-destinations" })),
    h("section", { class: "page-section" }, h("h2", {}, "History"), h("ol", { id: "page-history", class: "page-history" })),
  );
  o.root.append(wrap);
  fillHeader(o, page);
  fillDestinations(page);
  fillHistory(page);
  drawMap(o, page);
  select(0);
}

function fillHeader(o: Open, page: SequencePage): void {
  const s = page.summary;
  const title = document.getElementById("page-title");
  if (title) title.textContent = s.name;
  const kept = page.photos.filter((p) => p.index !== null).length;
  const left = page.photos.length - kept;
  const meta = [
    kept === 1 ? "1 photo" : `${kept} photos`,
    left ? `${left} left out` : null,
    `${(s.distance_m / 1000).toFixed(2)} km`,
    formatBytes(s.total_bytes),
    s.transport_type ?? "no transport type",
    s.tags.length ? `tags: ${s.tags.join(", ")}` : null,
    s.folder ? `from ${s.folder}` : null,
  ].filter(Boolean);
  const m = document.getElementById("page-meta");
  if (m) m.textContent = [s.description, meta.join(" · ")].filter(Boolean).join(" — ");
  const del = document.getElementById("page-deleting");
  if (del) {
    clear(del);
    if (page.deleting_at) {
      const failed = page.actions.filter((a) => a.action === "delete" && a.status === "failed");
      del.append(
        h(
          "div",
          { class: failed.length ? "warn-box" : "notice", id: "deleting-banner" },
          failed.length
            ? `Deleting everywhere stopped: ${failed.map((a) => `${a.label}: ${a.last_error ?? "refused"}`).join("; ")}. `
            : "Being deleted everywhere: it leaves this list once every service confirmed.",
          failed.length ? h("button", { class: "link", onclick: () => void retryActions() }, "Try again") : null,
        ),
      );
    }
  }
  for (const id of ["page-edit", "page-delete"]) {
    const b = document.getElementById(id) as HTMLButtonElement | null;
    if (b) b.disabled = page.deleting_at !== null && id === "page-edit";
  }
  void o;
}

function fillDestinations(page: SequencePage): void {
  const box = document.getElementById("page-destinations");
  if (!box) return;
  clear(box);
  if (page.summary.jobs.length === 0) {
    box.append(h("p", { class: "muted" }, "Not sent anywhere yet."));
    return;
  }
  for (const j of page.summary.jobs) {
    const action = page.actions.filter((a) => a.destination === j.destination).at(-1);
    // The same words as the job's row in the list.
    const state = statusText(j);
    box.append(
      h(
        "div",
        { class: "page-dest", "data-destination": j.destination },
        h("strong", {}, j.label),
        h("span", { class: `job-status ${state.cls || "muted"}` }, state.text),
        h("span", { class: "muted small" }, j.remote_id ? `id ${j.remote_id}` : ""),
        j.remote_url ? h("button", { class: "link", onclick: () => void api.openExternal(j.remote_url as string) }, `View on ${j.label}`) : h("span", {}),
        action
          ? h(
              "span",
              { class: `small ${action.status === "failed" ? "bad" : "muted"}`, "data-action-status": action.status },
              `${action.action === "delete" ? "Delete" : "Edit"}: ${
                action.status === "done" ? action.outcome ?? "done" :
                action.status === "failed" ? `failed — ${action.last_error ?? ""}` :
                action.last_error ?? (action.status === "running" ? "sending…" : "waiting")
              }`,
              action.status === "failed" ? h("button", { class: "link", onclick: () => void retryActions() }, " Try again") : null,
            )
          : null,
      ),
    );
  }
}

function fillHistory(page: SequencePage): void {
  const list = document.getElementById("page-history");
  if (!list) return;
  clear(list);
  for (const e of page.history.slice(0, 50)) {
    list.append(h("li", {}, h("span", { class: "muted small" }, new Date(e.at).toISOString().slice(0, 19).replace("T", " ")), " ", e.message));
  }
  if (page.history.length === 0) list.append(h("li", { class: "muted" }, "Nothing yet."));
}

function drawMap(o: Open, page: SequencePage): void {
  const el = document.getElementById("page-map");
  if (!el) return;
  const renderer = L.canvas({ padding: 0.5 });
  const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: true });
  if (navigator.onLine) {
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    }).addTo(map);
  }
  const bounds = L.latLngBounds([]);
  const kept = page.photos.filter((p) => p.index !== null && p.lat !== null && p.lon !== null);
  const line = kept.map((p) => L.latLng(p.lat as number, p.lon as number));
  line.forEach((ll) => bounds.extend(ll));
  if (line.length > 1) L.polyline(line, { color: "#1f6feb", weight: 3, opacity: 0.8, renderer }).addTo(map);
  page.photos.forEach((p, i) => {
    if (p.lat === null || p.lon === null || !isFinite(p.lat) || !isFinite(p.lon)) return;
    if (Math.abs(p.lat) < 1e-6 && Math.abs(p.lon) < 1e-6) return;
    const ll = L.latLng(p.lat, p.lon);
    bounds.extend(ll);
    const leftOut = p.index === null;
    L.circleMarker(ll, {
      radius: leftOut ? 5 : 4,
      color: leftOut ? "#cf222e" : "#1f6feb",
      weight: 1,
      fillColor: leftOut ? "#ff8182" : "#1f6feb",
      fillOpacity: 0.9,
      renderer,
    })
      .bindTooltip(leftOut ? `Left out: ${p.file_name}` : p.file_name)
      .on("click", () => select(i))
      .addTo(map);
  });
  o.marker = L.circleMarker([0, 0], { radius: 9, color: "#24292f", weight: 3, fill: false, renderer });
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  else map.setView([20, 0], 2);
  setTimeout(() => {
    map.invalidateSize();
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  }, 50);
  o.map = map;
}

function step(by: number): void {
  if (!open?.page) return;
  const n = open.page.photos.length;
  if (n === 0) return;
  select(Math.min(n - 1, Math.max(0, open.selected + by)));
}

function onKey(e: KeyboardEvent): void {
  if (!open) return;
  const t = e.target as HTMLElement | null;
  if (t && (t.closest("input, textarea, select, dialog") || t.isContentEditable)) return;
  if (e.key === "ArrowRight") {
    step(1);
    e.preventDefault();
  } else if (e.key === "ArrowLeft") {
    step(-1);
    e.preventDefault();
  }
}

function select(i: number): void {
  const o = open;
  if (!o?.page) return;
  const photos = o.page.photos;
  const p = photos[i];
  o.selected = i;
  const pos = document.getElementById("photo-pos");
  const keptCount = photos.filter((x) => x.index !== null).length;
  if (pos) pos.textContent = p ? (p.index !== null ? `Photo ${i + 1} of ${keptCount}` : `Left out ${i - keptCount + 1} of ${photos.length - keptCount}`) : "No photos";
  (document.getElementById("photo-prev") as HTMLButtonElement | null)?.toggleAttribute("disabled", i <= 0);
  (document.getElementById("photo-next") as HTMLButtonElement | null)?.toggleAttribute("disabled", i >= photos.length - 1);
  if (!p) return;
  const name = document.getElementById("photo-name");
  if (name) name.textContent = p.file_name;
  const reason = document.getElementById("photo-reason");
  if (reason) reason.textContent = p.reason ? `Left out: ${p.reason}` : "";
  const exif = document.getElementById("photo-exif");
  if (exif) {
    clear(exif);
    for (const [k, v] of exifRows(p)) exif.append(h("dt", {}, k), h("dd", {}, v));
  }
  if (o.marker && o.map && p.lat !== null && p.lon !== null) {
    o.marker.setLatLng([p.lat, p.lon]);
    if (!o.map.hasLayer(o.marker)) o.marker.addTo(o.map);
  }
  void showThumb(o, p);
}

function exifRows(p: PagePhoto): [string, string][] {
  const rows: [string, string][] = [];
  if (p.captured_at !== null) rows.push(["Taken", `${new Date(p.captured_at).toISOString().slice(0, 19).replace("T", " ")} UTC`]);
  if (p.lat !== null && p.lon !== null) rows.push(["Position", `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}`]);
  if (p.heading !== null) rows.push(["Heading", `${p.heading.toFixed(1)}°`]);
  if (p.altitude !== null) rows.push(["Altitude", `${p.altitude.toFixed(1)} m`]);
  if (p.camera) rows.push(["Camera", p.camera]);
  if (p.width !== null && p.height !== null) rows.push(["Size", `${p.width} × ${p.height}${p.is_360 ? " (360°)" : ""}`]);
  if (p.file_size !== null) rows.push(["File", formatBytes(p.file_size)]);
  return rows;
}

async function showThumb(o: Open, p: PagePhoto): Promise<void> {
  const img = document.getElementById("photo-thumb") as HTMLImageElement | null;
  if (!img) return;
  img.alt = `Photo ${p.file_name}`;
  const cached = o.thumbs.get(p.path);
  if (cached) {
    img.src = cached;
    img.dataset.path = p.path;
    return;
  }
  img.removeAttribute("src");
  img.dataset.path = "";
  try {
    const url = await api.photoThumbnail(o.id, p.path);
    o.thumbs.set(p.path, url);
    const current = o.page?.photos[o.selected];
    if (open === o && current?.path === p.path) {
      img.src = url;
      img.dataset.path = p.path;
    }
  } catch (e) {
    img.alt = `No preview: ${(e as Error).message}`;
  }
}

async function retryActions(): Promise<void> {
  if (!open) return;
  try {
    await api.retryRemoteActions(open.id);
    refreshPage();
  } catch (e) {
    toast((e as Error).message, "error");
  }
}

function planList(plans: RemotePlan[]): HTMLElement {
  return h(
    "ul",
    { class: "plan-list" },
    ...plans.map((p) => h("li", { "data-destination": p.destination }, h("strong", {}, `${p.label}: `), `${p.what} — ${p.says}`)),
  );
}

/** Says what an edit or a delete did on each service, and opens the pages it needs. */
function reportOutcome(outcome: ChangeOutcome, done: string): void {
  toast(done, "ok");
  for (const p of outcome.remote) {
    if (p.how.kind === "open_page") void api.openExternal(p.how.url);
    else if (p.how.kind === "no_api") toast(p.says, "info");
  }
}

async function editDialog(): Promise<void> {
  const o = open;
  if (!o?.page) return;
  const s = o.page.summary;
  const types = await api.transportTypes().catch(() => []);
  const name = h("input", { type: "text", id: "edit-name", value: s.name, required: true });
  const description = h("textarea", { id: "edit-description", rows: 2 }, s.description);
  const transport = h(
    "select",
    { id: "edit-transport" },
    h("option", { value: "" }, "None"),
    ...types.map((t) => h("option", { value: t.name, selected: t.name === s.transport_type }, `${t.group}: ${t.name}`)),
  );
  const tags = h("input", { type: "text", id: "edit-tags", value: s.tags.join(", ") });
  const error = h("p", { class: "field-error", id: "edit-error" });
  const dialog = h(
    "dialog",
    { class: "dialog", id: "edit-dialog", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title" }, `Edit “${s.name}”`),
    h(
      "div",
      { class: "form-stack" },
      h("label", { for: "edit-name" }, "Name"), name,
      h("label", { for: "edit-description" }, "Description"), description,
      h("label", { for: "edit-transport" }, "Transport type"), transport,
      h("label", { for: "edit-tags" }, "Tags (comma-separated)"), tags,
    ),
    o.page.edit_plan.length ? h("div", {}, h("p", { class: "muted small" }, "On the services:"), planList(o.page.edit_plan)) : null,
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { class: "primary", id: "edit-save", onclick: () => void save() }, "Save"),
      h("button", { class: "link", id: "edit-cancel", onclick: () => dialog.close() }, "Cancel"),
    ),
  );
  async function save(): Promise<void> {
    try {
      const outcome = await api.editSequence(o!.id, {
        name: name.value,
        description: description.value,
        transport_type: transport.value || null,
        tags: tags.value.split(","),
      });
      dialog.close();
      reportOutcome(outcome, outcome.actions.length ? "Saved. Sending the new name to Panoramax…" : "Saved.");
      refreshPage();
    } catch (e) {
      error.textContent = (e as Error).message;
    }
  }
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  name.focus();
}

async function deleteDialog(): Promise<void> {
  const o = open;
  if (!o) return;
  let plan: DeletePlan;
  try {
    plan = await api.deletePlan(o.id);
  } catch (e) {
    toast((e as Error).message, "error");
    return;
  }
  const dialog = h(
    "dialog",
    { class: "dialog", id: "delete-dialog", "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, `Delete “${plan.name}”?`),
    plan.running_uploads
      ? h("p", { class: "warn-box" }, `${plan.running_uploads === 1 ? "An upload" : `${plan.running_uploads} uploads`} of it still running will be cancelled first.`)
      : null,
    h("h3", {}, "Remove from MTP Desktop"),
    h("p", { id: "delete-local" }, plan.local),
    h("h3", {}, "Delete everywhere"),
    plan.remote.length
      ? h("div", { id: "delete-remote" }, h("p", {}, "Also deletes it on the services:"), planList(plan.remote))
      : h("p", { class: "muted", id: "delete-remote" }, "Nothing of it is on any service yet."),
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { class: "primary danger-fill", id: "delete-everywhere", onclick: () => void go(true) }, "Delete everywhere"),
      h("button", { class: "secondary", id: "delete-local-only", onclick: () => void go(false) }, "Remove from MTP Desktop only"),
      h("button", { class: "link", id: "delete-cancel", onclick: () => dialog.close() }, "Cancel"),
    ),
  );
  async function go(everywhere: boolean): Promise<void> {
    try {
      const outcome = await api.deleteSequence(o!.id, everywhere);
      if (everywhere) o!.deleteAsked = true;
      dialog.close();
      reportOutcome(
        outcome,
        outcome.removed_locally ? `“${plan.name}” is removed from MTP Desktop.` : `Deleting “${plan.name}” on the services…`,
      );
      if (outcome.removed_locally) {
        const back = o!.back;
        closePage();
        back();
      } else {
        refreshPage();
      }
    } catch (e) {
      toast((e as Error).message, "error");
    }
  }
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  (dialog.querySelector("#delete-cancel") as HTMLButtonElement | null)?.focus();
}
