// The track map. Leaflet draws on a canvas with no WebGL, so it works in WebKitGTK and
// under Xvfb. Offline it shows the track on a plain background; online it adds OSM tiles.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import type { LeftOut, SequenceView } from "./ipc";

const COLOURS = ["#1f6feb", "#8250df", "#1a7f37", "#bf3989", "#0a7ea4", "#9a6700"];

export interface TrackMap {
  destroy(): void;
}

export function drawTrack(el: HTMLElement, sequences: SequenceView[], leftOut: LeftOut[]): TrackMap {
  const renderer = L.canvas({ padding: 0.5 });
  const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: true });
  if (navigator.onLine) {
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: "© OpenStreetMap contributors",
    }).addTo(map);
  } else {
    map.attributionControl.addAttribution("Offline: track only");
  }
  const bounds = L.latLngBounds([]);
  sequences.forEach((seq, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const line = seq.photos.map((p) => L.latLng(p.lat, p.lon));
    line.forEach((ll) => bounds.extend(ll));
    L.polyline(line, { color: colour, weight: 3, opacity: 0.8, renderer }).addTo(map);
    // Individual photos only while it stays readable.
    if (seq.photos.length <= 3000) {
      for (const p of seq.photos) {
        L.circleMarker([p.lat, p.lon], { radius: 3, color: colour, weight: 1, fillOpacity: 0.9, renderer })
          .bindTooltip(`${p.file_name} · ${new Date(p.captured_at).toISOString().replace("T", " ").slice(0, 19)} UTC`)
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
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  else map.setView([20, 0], 2);
  // The container may have just become visible.
  setTimeout(() => map.invalidateSize(), 50);
  return { destroy: () => map.remove() };
}
