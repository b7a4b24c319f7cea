// Explore: what is already on Mapillary, KartaView and Panoramax in an area, by time and
// by who took it, on a map; exported as GeoJSON. The place keeps its map and results while
// the person looks elsewhere in the app (a search goes on meanwhile).
import L from "leaflet";
import { api, pickSavePath, type Destination, type ExploreQuery, type IntegrationCard } from "../ipc";
import { h, toast } from "../dom";
import { baseMap } from "../map";
import { FoundLayer, serviceColour } from "../layers";
import { SEARCH_SERVICES, StatusChips, list, startSearch, verdict, verdictBlock, type RunningSearch } from "../search";

/** Images kept from one search at most: beyond that the map is no longer readable anyway. */
const LIMIT = 100_000;
/** Areas larger than this (km²) would take hundreds of requests: zoom in first. */
const MAX_AREA_KM2 = 2500;
const VIEW_KEY = "mtp.explore.view";

let root: HTMLElement | null = null;
let map: L.Map | null = null;
let layer: FoundLayer | null = null;
let chips: StatusChips;
let drawn: L.Rectangle | null = null;
let drawing = false;
let running: RunningSearch | null = null;
let lastSearch: { id: number; images: number } | null = null;
let cards: IntegrationCard[] = [];

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export async function renderExplore(place: HTMLElement): Promise<void> {
  if (root === place && map) {
    // Back from another place: the container was hidden, Leaflet must measure it again.
    map.invalidateSize();
    await refreshServices();
    return;
  }
  root = place;
  chips = new StatusChips("explore-chips");
  const services = h(
    "div",
    { class: "explore-services" },
    ...SEARCH_SERVICES.map((s) =>
      h(
        "label",
        { class: "explore-service", "data-service": s.id },
        h("input", { type: "checkbox", id: `explore-svc-${s.id}`, value: s.id, checked: true }),
        h("span", { class: "service-dot", "aria-hidden": "true" }),
        s.label,
      ),
    ),
    h("p", { class: "why-muted", id: "explore-services-note" }),
  );
  const user = h(
    "select",
    { id: "explore-user" },
    h("option", { value: "me" }, "Me (my accounts)"),
    h("option", { value: "anyone" }, "Anyone"),
    h("option", { value: "named" }, "Username…"),
  );
  const username = h("input", { type: "text", id: "explore-username", placeholder: "their username on the services", hidden: true, "aria-label": "Username" });
  user.addEventListener("change", () => {
    username.hidden = user.value !== "named";
    if (!username.hidden) username.focus();
    paintServiceHints();
  });
  const gotoInput = h("input", { type: "text", id: "explore-goto", placeholder: "48.8566, 2.3522", "aria-label": "Go to latitude, longitude" });
  const gotoForm = h(
    "form",
    { class: "explore-goto" },
    gotoInput,
    h("button", { class: "secondary", id: "explore-goto-btn", type: "submit" }, "Go"),
  );
  gotoForm.addEventListener("submit", (e) => {
    e.preventDefault();
    goTo(gotoInput.value);
  });
  const dateInput = (id: string, label: string) =>
    h("input", { type: "text", id, placeholder: "YYYY-MM-DD (any time)", "aria-label": label, title: "A day (UTC), like 2024-05-01. Empty: any time.", maxlength: 10 });
  const panel = h(
    "div",
    { class: "explore-panel" },
    h("h1", {}, "Explore"),
    h("p", { class: "lead" }, "Images already on Mapillary, KartaView and Panoramax. Move the map to a place or draw a box, then search."),
    h(
      "div",
      { class: "explore-form" },
      h("label", { for: "explore-goto" }, "Go to"),
      gotoForm,
      h("span", { class: "explore-k" }, "Area"),
      h(
        "div",
        { class: "explore-area" },
        h("span", { id: "explore-area-text", class: "small" }),
        h(
          "span",
          { class: "explore-area-actions" },
          h("button", { class: "secondary small-btn", id: "explore-draw", type: "button", "aria-pressed": "false", onclick: () => setDrawing(!drawing) }, "Draw area"),
          h("button", { class: "link small", id: "explore-clear-area", type: "button", hidden: true, onclick: () => clearBox() }, "Clear the box"),
        ),
      ),
      h("span", { class: "explore-k" }, "Services"),
      services,
      h("label", { for: "explore-from" }, "From"),
      dateInput("explore-from", "Taken from"),
      h("label", { for: "explore-to" }, "Until"),
      dateInput("explore-to", "Taken until"),
      h("label", { for: "explore-user" }, "By"),
      h("div", { class: "explore-who" }, user, username),
      h("span", {}),
      h("label", { class: "explore-check" }, h("input", { type: "checkbox", id: "explore-pano" }), " 360° images only"),
    ),
    h("button", { class: "primary", id: "explore-search", type: "button", onclick: () => void search() }, "Search this area"),
    chips.el,
    h("div", { id: "explore-result" }, h("p", { class: "muted" }, "Move the map to a place (or type its coordinates in Go to), then Search this area.")),
    h(
      "div",
      { class: "explore-export" },
      h("button", { class: "secondary", id: "explore-export", type: "button", disabled: true, onclick: () => void exportGeojson() }, "Export GeoJSON…"),
      h("p", { class: "small", id: "explore-export-status", role: "status" }),
    ),
  );
  const mapEl = h("div", { class: "map explore-map", id: "explore-map" });
  place.replaceChildren(h("div", { class: "explore" }, panel, mapEl));
  for (const s of SEARCH_SERVICES) {
    (panel.querySelector(`[data-service=${s.id}] .service-dot`) as HTMLElement).style.background = serviceColour(s.id);
  }
  paintArea();

  map = baseMap(mapEl, "Results are drawn");
  const saved = savedView();
  map.setView(saved ? [saved.lat, saved.lon] : [30, 10], saved ? saved.zoom : 3);
  layer = new FoundLayer(map, { name: "explore" });
  map.on("moveend", () => {
    paintArea();
    if (map) localStorage.setItem(VIEW_KEY, JSON.stringify({ ...map.getCenter(), zoom: map.getZoom() }));
  });
  listenForDrawing(map);
  fitMapHeight(mapEl);
  setTimeout(() => map?.invalidateSize(), 50);
  paintArea();
  await refreshServices();
}

/** The map fills the height the page shows, whatever the window and the banner take. */
function fitMapHeight(mapEl: HTMLElement): void {
  const main = document.getElementById("main");
  if (!main) return;
  new ResizeObserver(() => {
    if (!main.clientHeight) return; // hidden: another place is shown
    const pad = parseFloat(getComputedStyle(main).paddingTop) + parseFloat(getComputedStyle(main).paddingBottom);
    mapEl.style.height = `${Math.max(360, main.clientHeight - pad)}px`;
    map?.invalidateSize();
  }).observe(main);
}

function savedView(): { lat: number; lon: number; zoom: number } | null {
  try {
    const v = JSON.parse(localStorage.getItem(VIEW_KEY) ?? "null") as { lat: number; lng: number; zoom: number } | null;
    if (v && isFinite(v.lat) && isFinite(v.lng) && isFinite(v.zoom)) return { lat: v.lat, lon: v.lng, zoom: v.zoom };
  } catch {
    // A view that does not parse is forgotten.
  }
  return null;
}

/** Services that cannot be searched here are ticked off, with the reason under them. */
async function refreshServices(): Promise<void> {
  cards = await api.integrations().catch(() => cards);
  for (const s of SEARCH_SERVICES) {
    const box = el<HTMLInputElement>(`explore-svc-${s.id}`);
    const card = cards.find((c) => c.service === s.id);
    const unusable = card !== undefined && card.missing_settings.length > 0;
    if (unusable && !box.disabled) box.checked = false;
    box.disabled = unusable;
    box.parentElement!.title = unusable ? `${s.label} is not set up in this app's settings.` : "";
  }
  paintServiceHints();
}

function paintServiceHints(): void {
  const note = el<HTMLElement>("explore-services-note");
  if (!note) return;
  const me = el<HTMLSelectElement>("explore-user").value === "me";
  const names = (pick: (c: IntegrationCard) => boolean) =>
    SEARCH_SERVICES.filter((s) => cards.some((c) => c.service === s.id && pick(c))).map((s) => s.label);
  const unset = names((c) => c.missing_settings.length > 0);
  const away = me ? names((c) => c.missing_settings.length === 0 && (c.connected_as === null || c.needs_reauth)) : [];
  note.replaceChildren(
    unset.length ? `${list(unset)} ${unset.length === 1 ? "is" : "are"} not set up in this app's settings. ` : "",
    away.length ? `Not connected to ${list(away)}, so your images there cannot be found — ` : "",
    away.length ? h("button", { class: "link", type: "button", onclick: () => document.getElementById("nav-integrations")?.click() }, "Integrate") : "",
  );
}

/** "lat, lon" or "lat, lon, zoom" (as copied from most map sites). */
function goTo(text: string): void {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*[,;\s]\s*(-?\d+(?:\.\d+)?)(?:\s*[,;\s]\s*(\d+(?:\.\d+)?))?\s*$/.exec(text);
  const lat = m ? Number(m[1]) : NaN;
  const lon = m ? Number(m[2]) : NaN;
  if (!map || !(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) {
    toast("Type a place as latitude, longitude: for example 48.8566, 2.3522.", "error");
    return;
  }
  const zoom = m?.[3] !== undefined ? Math.min(19, Math.max(2, Number(m[3]))) : Math.max(map.getZoom(), 15);
  map.setView([lat, lon], zoom);
}

// Drawing a box: while "Draw area" is on, a drag on the map draws instead of panning.
function setDrawing(on: boolean): void {
  drawing = on;
  const btn = el<HTMLButtonElement>("explore-draw");
  btn.setAttribute("aria-pressed", String(on));
  btn.textContent = on ? "Drag a box on the map…" : drawn ? "Draw another area" : "Draw area";
  el<HTMLElement>("explore-map").classList.toggle("drawing", on);
  if (on) map?.dragging.disable();
  else map?.dragging.enable();
}

function listenForDrawing(m: L.Map): void {
  // The box goes on a canvas under the results' one: a canvas above would take their clicks.
  m.createPane("explore-box").style.zIndex = "350";
  const boxRenderer = L.canvas({ pane: "explore-box" });
  let start: L.LatLng | null = null;
  let startPx: L.Point | null = null;
  m.on("mousedown", (e: L.LeafletMouseEvent) => {
    if (!drawing) return;
    start = e.latlng;
    startPx = e.containerPoint;
    drawn?.remove();
    drawn = L.rectangle(L.latLngBounds(start, start), { renderer: boxRenderer, color: "#1f6feb", weight: 2, dashArray: "6 4", fillOpacity: 0.06, interactive: false }).addTo(m);
  });
  m.on("mousemove", (e: L.LeafletMouseEvent) => {
    if (drawing && start && drawn) drawn.setBounds(L.latLngBounds(start, e.latlng));
  });
  m.on("mouseup", (e: L.LeafletMouseEvent) => {
    if (!drawing || !start || !startPx) return;
    const small = startPx.distanceTo(e.containerPoint) < 8;
    start = null;
    startPx = null;
    if (small) {
      // A click, not a drag: no box.
      drawn?.remove();
      drawn = null;
    }
    setDrawing(false);
    paintArea();
  });
}

function clearBox(): void {
  drawn?.remove();
  drawn = null;
  setDrawing(false);
  paintArea();
}

/** The area a search would cover, clamped to what Web Mercator shows. */
function area(): L.LatLngBounds | null {
  if (!map) return null;
  const b = drawn ? drawn.getBounds() : map.getBounds();
  return L.latLngBounds(
    [Math.max(-85, b.getSouth()), Math.max(-180, b.getWest())],
    [Math.min(85, b.getNorth()), Math.min(180, b.getEast())],
  );
}

function sizeKm(b: L.LatLngBounds): { w: number; h: number } {
  const h = (b.getNorth() - b.getSouth()) * 111.32;
  const w = (b.getEast() - b.getWest()) * 111.32 * Math.cos((((b.getNorth() + b.getSouth()) / 2) * Math.PI) / 180);
  return { w, h };
}

function km(n: number): string {
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en");
}

function paintArea(): void {
  const b = area();
  const text = el<HTMLElement>("explore-area-text");
  if (!b || !text) return;
  const { w, h: ht } = sizeKm(b);
  const what = drawn ? "Search area: your box" : "Search area: the map as shown";
  const tooBig = w * ht > MAX_AREA_KM2;
  text.replaceChildren(`${what}, ${km(w)} × ${km(ht)} km`, tooBig ? h("span", { class: "bad" }, " — too large: zoom in or draw a smaller box") : "");
  el<HTMLElement>("explore-clear-area").hidden = !drawn;
  if (!drawing) el<HTMLButtonElement>("explore-draw").textContent = drawn ? "Draw another area" : "Draw area";
}

/** The query the form describes, or what is wrong with it in words. */
function readQuery(): ExploreQuery | string {
  const services = SEARCH_SERVICES.map((s) => el<HTMLInputElement>(`explore-svc-${s.id}`)).filter((b) => b.checked && !b.disabled).map((b) => b.value as Destination);
  if (services.length === 0) return "Tick at least one service to search.";
  const b = area();
  if (!b) return "The map is not ready yet.";
  const { w, h: ht } = sizeKm(b);
  if (w * ht > MAX_AREA_KM2) {
    return `This area is about ${km(w)} × ${km(ht)} km: too large to search at once. Zoom in, or draw a box up to about 50 × 50 km.`;
  }
  const day = /^\d{4}-\d{2}-\d{2}$/;
  const from = el<HTMLInputElement>("explore-from").value.trim();
  const to = el<HTMLInputElement>("explore-to").value.trim();
  for (const d of [from, to]) if (d && !day.test(d)) return `“${d}” is not a date: write it as YYYY-MM-DD, like 2024-05-01.`;
  if (from && to && from > to) return "The time range ends before it starts: swap the two dates.";
  const who = el<HTMLSelectElement>("explore-user").value;
  const name = el<HTMLInputElement>("explore-username").value.trim();
  if (who === "named" && !name) return "Type the username to search for.";
  return {
    services,
    bbox: { min_lon: b.getWest(), min_lat: b.getSouth(), max_lon: b.getEast(), max_lat: b.getNorth() },
    near: null,
    from: from || null,
    to: to || null,
    user: who === "named" ? { kind: "named", name } : who === "anyone" ? { kind: "anyone" } : { kind: "me" },
    pano_only: el<HTMLInputElement>("explore-pano").checked,
    limit: LIMIT,
  };
}

function setRunning(on: boolean): void {
  const btn = el<HTMLButtonElement>("explore-search");
  btn.textContent = on ? "Stop" : "Search this area";
  btn.classList.toggle("stop", on);
  el<HTMLButtonElement>("explore-export").disabled = on || !lastSearch || lastSearch.images === 0;
}

async function search(): Promise<void> {
  if (running) {
    running.stop();
    return;
  }
  const result = el<HTMLElement>("explore-result");
  const query = readQuery();
  if (typeof query === "string") {
    result.replaceChildren(h("p", { class: "verdict verdict-error", role: "alert" }, query));
    return;
  }
  if (!map || !layer) return;
  const found = layer;
  found.reset(query.services);
  chips.reset(query.services);
  el<HTMLElement>("explore-export-status").textContent = "";
  // Where the results are from stays visible after the map is moved (a drawn box shows itself).
  const b = query.bbox;
  found.setArea(!drawn && b ? L.latLngBounds([b.min_lat, b.min_lon], [b.max_lat, b.max_lon]) : null);
  result.replaceChildren(h("p", { class: "muted" }, "Searching…"));
  lastSearch = null;
  setRunning(true);
  try {
    running = await startSearch(query, {
      images: (batch) => {
        found.add(batch);
        for (const s of new Set(batch.map((i) => i.service))) chips.count(s, found.count(s));
      },
      outcome: (o) => chips.outcome(o),
    });
    lastSearch = { id: running.id, images: 0 };
    const r = await running.done;
    lastSearch = { id: r.search_id, images: r.images };
    for (const o of r.services) chips.outcome(o);
    result.replaceChildren(verdictBlock(verdict(r, query.limit, { where: "here", advice: advice(query) }), "explore-verdict"));
    result.scrollIntoView({ block: "nearest" });
  } catch (e) {
    result.replaceChildren(h("p", { class: "verdict verdict-error", role: "alert" }, (e as { message?: string }).message ?? String(e)));
  } finally {
    running = null;
    setRunning(false);
  }
}

/** What to loosen when nothing was found. */
function advice(q: ExploreQuery): string {
  const loosen = ["a larger area"];
  if (q.from || q.to) loosen.push("a longer time range");
  if (q.user.kind !== "anyone") loosen.push("anyone's images");
  if (q.pano_only) loosen.push("all images, not only 360° ones");
  return `Try ${list(loosen)}.`;
}

async function exportGeojson(): Promise<void> {
  if (!lastSearch) return;
  const status = el<HTMLElement>("explore-export-status");
  const today = new Date().toISOString().slice(0, 10);
  const path = await pickSavePath(`explore-${today}.geojson`, { name: "GeoJSON", extensions: ["geojson", "json"] });
  if (!path) return;
  status.classList.remove("bad");
  try {
    const n = await api.exportSearch(lastSearch.id, path);
    status.textContent = `Wrote ${n.toLocaleString("en")} features to ${path}`;
    toast(`Wrote ${n.toLocaleString("en")} features to ${path}`, "ok");
  } catch (e) {
    status.textContent = (e as { message?: string }).message ?? String(e);
    status.classList.add("bad");
  }
  status.scrollIntoView({ block: "nearest" });
}
