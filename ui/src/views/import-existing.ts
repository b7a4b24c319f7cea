// "Show what is already here" on the Import screen: an Explore search around the new track
// (anyone's images, every service set up), drawn under the track on its map.
import L from "leaflet";
import type { IntegrationCard } from "../ipc";
import { h } from "../dom";
import type { TrackMap } from "../map";
import { FoundLayer } from "../layers";
import { SEARCH_SERVICES, StatusChips, startSearch, verdict, verdictBlock, type RunningSearch } from "../search";

/** Metres around the track that "already here" covers. */
const AROUND_M = 200;
/** Images drawn at most: a track through a city centre can have a great many around it. */
const LIMIT = 20_000;

interface Context {
  track: TrackMap | null;
  cards: IntegrationCard[];
}

/** The search and its layer on the track map, while shown. */
let overlay: { layer: FoundLayer; search: RunningSearch | null; track: TrackMap } | null = null;

/** The toggle under the track map: what Mapillary, KartaView and Panoramax already have around it. */
export function existingBar(context: () => Context): HTMLElement {
  const chips = new StatusChips("existing-chips");
  const status = h("div", { id: "existing-status" });
  const box = h("input", { type: "checkbox", id: "show-existing" });
  box.addEventListener("change", () => {
    if (box.checked) void showExisting(context(), chips, status);
    else hideExisting();
  });
  return h(
    "div",
    { class: "existing-bar", id: "existing-bar" },
    h(
      "div",
      { class: "existing-head" },
      h("label", { class: "existing-toggle" }, box, " Show what is already here"),
      h("span", { class: "muted small" }, `images on Mapillary, KartaView and Panoramax within ${AROUND_M} m of this track, by anyone`),
    ),
    chips.el,
    status,
  );
}

async function showExisting({ track: map, cards }: Context, chips: StatusChips, status: HTMLElement): Promise<void> {
  if (!map || !map.bounds.isValid()) return;
  stopOverlay();
  const services = SEARCH_SERVICES.map((s) => s.id).filter((id) => {
    const card = cards.find((c) => c.service === id);
    return !card || card.missing_settings.length === 0;
  });
  if (services.length === 0) {
    status.replaceChildren(h("p", { class: "verdict verdict-error" }, "None of Mapillary, KartaView and Panoramax is set up in this app's settings, so there is nothing to search."));
    return;
  }
  const b = map.bounds;
  const dLat = AROUND_M / 111_320;
  const dLon = AROUND_M / (111_320 * Math.max(0.01, Math.cos((b.getCenter().lat * Math.PI) / 180)));
  const around = L.latLngBounds(
    [Math.max(-90, b.getSouth() - dLat), Math.max(-180, b.getWest() - dLon)],
    [Math.min(90, b.getNorth() + dLat), Math.min(180, b.getEast() + dLon)],
  );
  const mine = { layer: new FoundLayer(map.map, { name: "import", renderer: map.renderer }), search: null as RunningSearch | null, track: map };
  overlay = mine;
  mine.layer.reset(services);
  // The whole searched area in view: what is around the track is the point.
  mine.layer.setArea(around);
  map.map.fitBounds(around);
  chips.reset(services);
  status.replaceChildren(h("p", { class: "muted small" }, "Looking…"));
  try {
    const run = await startSearch(
      {
        services,
        bbox: { min_lon: around.getWest(), min_lat: around.getSouth(), max_lon: around.getEast(), max_lat: around.getNorth() },
        near: null,
        from: null,
        to: null,
        user: { kind: "anyone" },
        pano_only: false,
        limit: LIMIT,
      },
      {
        images: (batch) => {
          if (overlay !== mine) return;
          mine.layer.add(batch);
          for (const s of new Set(batch.map((i) => i.service))) chips.count(s, mine.layer.count(s));
        },
        outcome: (o) => {
          if (overlay === mine) chips.outcome(o);
        },
      },
    );
    // Turned off while it was starting.
    if (overlay !== mine) return run.stop();
    mine.search = run;
    const r = await run.done;
    if (overlay !== mine) return;
    for (const o of r.services) chips.outcome(o);
    const v = verdict(r, LIMIT, { where: `within ${AROUND_M} m of this track`, advice: "These photos would be the first there." });
    status.replaceChildren(verdictBlock(v, "existing-verdict"));
  } catch (e) {
    if (overlay === mine) status.replaceChildren(h("p", { class: "verdict verdict-error", role: "alert" }, (e as { message?: string }).message ?? String(e)));
  }
}

export function stopOverlay(): void {
  if (!overlay) return;
  overlay.search?.stop();
  overlay.layer.destroy();
  overlay = null;
}

function hideExisting(): void {
  const track = overlay?.track;
  stopOverlay();
  if (track?.bounds.isValid()) track.map.fitBounds(track.bounds.pad(0.1));
  document.getElementById("existing-chips")?.replaceChildren();
  document.getElementById("existing-status")?.replaceChildren();
}

