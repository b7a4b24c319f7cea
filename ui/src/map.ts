// The track map. Leaflet draws on a canvas with no WebGL, so it works in WebKitGTK and
// under Xvfb. Offline it shows the track on a plain background; online it adds OSM tiles.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import type { LeftOut, SequenceView } from "./ipc";

const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#0a7ea4", "#bf3989", "#57606a"];

/** The colour of sequence `i` on the map, its legend and its card on the plan. */
export function colourOf(i: number): string {
  return COLOURS[i % COLOURS.length];
}

export interface TrackMap {
  map: L.Map;
  /** The canvas the track is drawn on (an overlay drawn on it can stay under the track). */
  renderer: L.Canvas;
  /** The track's bounds (invalid when nothing has a position). */
  bounds: L.LatLngBounds;
  destroy(): void;
}

/**
 * A Leaflet map with the OSM background when online, and a note on the map when the tiles
 * cannot be had (the track or the results are still drawn, on a plain background).
 */
export function baseMap(el: HTMLElement, what = "The track is drawn"): L.Map {
  const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: true });
  const note = (text: string) => {
    if (el.querySelector(".map-note")) return;
    el.append(Object.assign(document.createElement("div"), { className: "map-note", textContent: text }));
  };
  if (navigator.onLine) {
    let loaded = 0;
    let failed = 0;
    const tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    });
    tiles.on("tileload", () => loaded++);
    tiles.on("tileerror", () => {
      failed++;
      if (loaded === 0 && failed >= 2) note(`No map background: the map tiles cannot be loaded (offline?). ${what} without it.`);
    });
    tiles.addTo(map);
  } else {
    note(`Offline: no map background. ${what} without it.`);
  }
  return map;
}

export function drawTrack(el: HTMLElement, sequences: SequenceView[], leftOut: LeftOut[]): TrackMap {
  const renderer = L.canvas({ padding: 0.5 });
  const map = baseMap(el);
  const bounds = L.latLngBounds([]);
  sequences.forEach((seq, i) => {
    const colour = colourOf(i);
    const line = seq.photos.map((p) => L.latLng(p.lat, p.lon));
    line.forEach((ll) => bounds.extend(ll));
    L.polyline(line, { color: colour, weight: 3, opacity: 0.8, renderer }).addTo(map);
    // Individual photos only while it stays readable.
    if (seq.photos.length <= 3000) {
      for (const p of seq.photos) {
        L.circleMarker([p.lat, p.lon], { radius: 3, color: colour, weight: 1, fillOpacity: 0.9, renderer })
          .bindTooltip(`${p.file_name} · ${new Date(p.captured_at).toISOString().replace("T", " ").slice(0, 19)} UTC${p.from_gpx ? " · position from the GPX track" : ""}`)
          .addTo(map);
      }
    }
    const first = seq.photos[0];
    if (first) {
      L.circleMarker([first.lat, first.lon], { radius: 7, color: "#24292f", weight: 2, fillColor: colour, fillOpacity: 1, renderer })
        .bindTooltip(`Sequence ${i + 1} starts: ${seq.split_message}`)
        .addTo(map);
    }
  });
  for (const d of leftOut) {
    if (d.lat === null || d.lon === null || !isFinite(d.lat) || !isFinite(d.lon)) continue;
    if (Math.abs(d.lat) < 1e-6 && Math.abs(d.lon) < 1e-6) continue; // (0,0) would zoom out to the world
    const ll = L.latLng(d.lat, d.lon);
    bounds.extend(ll);
    L.circleMarker(ll, { radius: 5, color: "#cf222e", weight: 2, fillColor: "#ff8182", fillOpacity: 0.9, renderer })
      .bindTooltip(`Dropped ${d.file_name}: ${d.message}`)
      .addTo(map);
  }
  if (sequences.length > 1) {
    const legend = new L.Control({ position: "bottomleft" });
    legend.onAdd = () => {
      const box = L.DomUtil.create("div", "map-legend");
      box.id = "map-legend";
      sequences.forEach((seq, i) => {
        const row = L.DomUtil.create("div", "legend-row", box);
        const sw = L.DomUtil.create("span", "swatch", row);
        sw.style.background = colourOf(i);
        const where = [seq.camera, seq.sub_folder].filter(Boolean).join(" · ");
        row.append(`Sequence ${i + 1}${where ? ` — ${where}` : ""}`);
      });
      return box;
    };
    legend.addTo(map);
  }
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  else map.setView([20, 0], 2);
  // The container may have just become visible.
  // The container may have just become visible; and when the window is resized the whole
  // track stays in view, unless the person has moved the map themselves.
  let moved = false;
  map.on("dragstart", () => (moved = true));
  map.on("resize", () => {
    if (!moved && bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  });
  setTimeout(() => {
    map.invalidateSize();
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  }, 50);
  return { map, renderer, bounds, destroy: () => map.remove() };
}
