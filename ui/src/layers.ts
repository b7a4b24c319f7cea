// What a search found, on a Leaflet map: sequences as lines, images as points coloured by
// service, clustered where dense. Shared by Explore and the Import screen's overlay.
//
// Tens of thousands of images must stay smooth: nothing here makes one DOM node per image.
// Points and lines are drawn on a canvas; only clusters (a few hundred on screen at most)
// are DOM markers, so that they can carry a count. The cluster index is rebuilt while
// results stream in, at most every few hundred milliseconds.
import L from "leaflet";
import Supercluster from "supercluster";
import type { PointFeature } from "supercluster";
import { api, type Destination, type FoundImage } from "./ipc";
import { h, toast } from "./dom";
import { labelOf, SEARCH_SERVICES, type SearchService } from "./search";

export const SERVICE_COLOURS: Record<SearchService, string> = {
  mapillary: "#0b9a52",
  kartaview: "#6f42c1",
  panoramax: "#d9480f",
};

const SERVICE_INDEX: Partial<Record<Destination, number>> = { mapillary: 0, kartaview: 1, panoramax: 2 };

export function serviceColour(d: Destination): string {
  return SERVICE_COLOURS[d as SearchService] ?? "#57606a";
}

/** A point's image (an index into `images`) and its service (0, 1, 2). */
type Props = { i: number; s: number };
/** A cluster's images per service. */
type Agg = { m: number; k: number; p: number };

/** An image point as drawn, in window coordinates (for the end-to-end tests). */
export interface ScreenPoint {
  id: string;
  service: Destination;
  x: number;
  y: number;
}

/** How heavy drawing is (for the end-to-end tests: it must stay light with 50,000 images). */
export interface LayerStats {
  images: number;
  lastBuildMs: number;
  maxRenderMs: number;
  lastRenderMs: number;
  drawnPoints: number;
  drawnClusters: number;
}

const registry: Record<string, () => ScreenPoint[]> = {};
const clusterRegistry: Record<string, () => ScreenPoint[]> = {};
const stats: Record<string, () => LayerStats> = {};
Object.assign(window, { __mtpFound: registry, __mtpFoundClusters: clusterRegistry, __mtpFoundStats: stats });

interface ClusterOptions extends L.CircleMarkerOptions {
  shares: [number, string][];
  label: string;
}

/** What Leaflet's canvas renderer hands a path while it draws (not in its typings). */
interface Drawing {
  _renderer: { _ctx: CanvasRenderingContext2D; _drawing: boolean };
  _point: L.Point;
  _radius: number;
  _empty(): boolean;
  options: ClusterOptions;
}

/**
 * A cluster as a pie of the services' shares with its count, drawn on the canvas like the
 * points: hundreds of DOM markers re-made on every move would be slow (each one is a
 * compositing layer in WebKit). Clicks hit it like any circle marker.
 */
const ClusterMarker = L.CircleMarker.extend({
  _updatePath(this: Drawing) {
    const r = this._renderer;
    if (!r._drawing || this._empty()) return;
    const ctx = r._ctx;
    const { x, y } = this._point;
    const radius = this._radius;
    const { shares, label } = this.options;
    const total = shares.reduce((n, [k]) => n + k, 0) || 1;
    // Leaflet leaves the last path's alpha and dashes on the context.
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
    let from = -Math.PI / 2;
    for (const [n, colour] of shares) {
      const to = from + (2 * Math.PI * n) / total;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.arc(x, y, radius, from, to);
      ctx.closePath();
      ctx.fillStyle = colour;
      ctx.fill();
      from = to;
    }
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    ctx.font = "bold 11px system-ui, sans-serif";
    const w = ctx.measureText(label).width + 8;
    ctx.fillStyle = "rgba(255, 255, 255, 0.92)";
    ctx.beginPath();
    if (typeof ctx.roundRect === "function") ctx.roundRect(x - w / 2, y - 8, w, 16, 8);
    else ctx.rect(x - w / 2, y - 8, w, 16);
    ctx.fill();
    ctx.fillStyle = "#1c2430";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label, x, y + 0.5);
  },
}) as unknown as new (at: L.LatLngExpression, options: ClusterOptions) => L.CircleMarker;

export interface FoundLayerOptions {
  /** How the tests find it: `window.__mtpFound[name]()`. */
  name: string;
  /** Draw on this canvas (the Import track's) and keep under what it already holds. */
  renderer?: L.Canvas;
}

export class FoundLayer {
  private images: FoundImage[] = [];
  private features: PointFeature<Props>[] = [];
  private perService = [0, 0, 0];
  private services: Destination[] = [];
  private index: Supercluster<Props, Agg> | null = null;
  private readonly renderer: L.Canvas;
  private readonly under: boolean;
  private readonly points = L.layerGroup();
  private readonly lines = L.layerGroup();
  private readonly legend: L.Control;
  private area: L.Rectangle | null = null;
  private readonly tip = L.tooltip({ direction: "top", offset: [0, -14] });
  private legendBox: HTMLElement | null = null;
  private drawn: { image: FoundImage; marker: L.CircleMarker }[] = [];
  private timer: number | null = null;
  private lastBuildMs = 0;
  private maxRenderMs = 0;
  private lastRenderMs = 0;
  private clusters: L.CircleMarker[] = [];
  private readonly onMove = () => this.render();

  constructor(private readonly map: L.Map, private readonly opts: FoundLayerOptions) {
    this.under = opts.renderer !== undefined;
    this.renderer = opts.renderer ?? L.canvas({ padding: 0.3 });
    this.lines.addTo(map);
    this.points.addTo(map);
    this.legend = new L.Control({ position: "bottomleft" });
    this.legend.onAdd = () => {
      this.legendBox = h("div", { class: "map-legend found-legend", id: `${opts.name}-legend` });
      L.DomEvent.disableClickPropagation(this.legendBox);
      this.paintLegend();
      return this.legendBox;
    };
    this.legend.addTo(map);
    map.on("moveend", this.onMove);
    registry[opts.name] = () => this.onScreen("points");
    clusterRegistry[opts.name] = () => this.onScreen("clusters");
    stats[opts.name] = () => ({ images: this.images.length, lastBuildMs: this.lastBuildMs, maxRenderMs: this.maxRenderMs, lastRenderMs: this.lastRenderMs, drawnPoints: this.drawn.length, drawnClusters: this.clusters.length });
  }

  /** Forgets what was drawn; the legend lists `services`. */
  reset(services: Destination[]): void {
    this.images = [];
    this.features = [];
    this.perService = [0, 0, 0];
    this.maxRenderMs = 0;
    this.services = services;
    this.index = null;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    this.lines.clearLayers();
    this.points.clearLayers();
    this.drawn = [];
    this.map.closePopup();
    this.paintLegend();
  }

  add(batch: FoundImage[]): void {
    for (const image of batch) {
      const s = SERVICE_INDEX[image.service];
      if (s === undefined || !isFinite(image.lat) || !isFinite(image.lon)) continue;
      this.features.push({ type: "Feature", geometry: { type: "Point", coordinates: [image.lon, image.lat] }, properties: { i: this.images.length, s } });
      this.images.push(image);
      this.perService[s]++;
    }
    this.schedule();
  }

  get total(): number {
    return this.images.length;
  }

  count(service: Destination): number {
    const s = SERVICE_INDEX[service];
    return s === undefined ? 0 : this.perService[s];
  }

  /** Outlines the searched area (dashed), so that where results can be is clear. */
  setArea(bounds: L.LatLngBounds | null): void {
    this.area?.remove();
    this.area = bounds
      ? L.rectangle(bounds, { renderer: this.renderer, color: "#57606a", weight: 1.5, dashArray: "5 5", fill: false, interactive: false }).addTo(this.map)
      : null;
  }

  /** The found images' bounds (invalid when there are none). */
  bounds(): L.LatLngBounds {
    const b = L.latLngBounds([]);
    for (const i of this.images) b.extend([i.lat, i.lon]);
    return b;
  }

  destroy(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    this.map.off("moveend", this.onMove);
    this.map.closePopup();
    this.points.remove();
    this.lines.remove();
    this.legend.remove();
    this.area?.remove();
    delete registry[this.opts.name];
    delete clusterRegistry[this.opts.name];
    delete stats[this.opts.name];
  }

  private schedule(): void {
    if (this.timer !== null) return;
    // The first results show at once; later rebuilds wait longer the longer one takes, so
    // that the map stays responsive while a crowded area streams in.
    const wait = this.index === null ? 0 : Math.max(300, this.lastBuildMs * 4);
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.rebuild();
    }, wait);
  }

  private rebuild(): void {
    const started = performance.now();
    this.index = new Supercluster<Props, Agg>({
      // Leaflet's tiles are 256 px: with that extent the radius is in screen pixels, wide
      // enough that the drawn clusters (up to 40 px across) do not overlap.
      extent: 256,
      radius: 56,
      maxZoom: 17,
      minPoints: 3,
      map: (p) => ({ m: p.s === 0 ? 1 : 0, k: p.s === 1 ? 1 : 0, p: p.s === 2 ? 1 : 0 }),
      reduce: (a, b) => {
        a.m += b.m;
        a.k += b.k;
        a.p += b.p;
      },
    }).load(this.features);
    this.drawLines();
    this.lastBuildMs = performance.now() - started;
    this.render();
  }

  /** Each sequence (two images or more) as a line through its images in capture order. */
  private drawLines(): void {
    const bySequence = new Map<string, FoundImage[]>();
    for (const image of this.images) {
      if (!image.sequence_id) continue;
      const key = `${image.service}\u0000${image.sequence_id}`;
      const members = bySequence.get(key);
      if (members) members.push(image);
      else bySequence.set(key, [image]);
    }
    const perService = new Map<Destination, L.LatLngExpression[][]>();
    for (const members of bySequence.values()) {
      if (members.length < 2) continue;
      members.sort((a, b) => (a.captured_at_ms ?? 0) - (b.captured_at_ms ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const service = members[0].service;
      const lines = perService.get(service) ?? [];
      lines.push(members.map((m) => [m.lat, m.lon] as L.LatLngTuple));
      perService.set(service, lines);
    }
    this.lines.clearLayers();
    for (const [service, lines] of perService) {
      L.polyline(lines, { renderer: this.renderer, color: serviceColour(service), weight: 2, opacity: 0.5, interactive: false, smoothFactor: 1.5 }).addTo(this.lines);
    }
  }

  private render(): void {
    const started = performance.now();
    this.draw();
    this.lastRenderMs = performance.now() - started;
    this.maxRenderMs = Math.max(this.maxRenderMs, this.lastRenderMs);
  }

  private draw(): void {
    this.points.clearLayers();
    this.map.closeTooltip(this.tip);
    this.drawn = [];
    this.clusters = [];
    this.paintLegend();
    if (!this.index) return;
    const b = this.map.getBounds().pad(0.25);
    const box: [number, number, number, number] = [
      Math.max(-180, b.getWest()),
      Math.max(-85, b.getSouth()),
      Math.min(180, b.getEast()),
      Math.min(85, b.getNorth()),
    ];
    const index = this.index;
    for (const f of index.getClusters(box, Math.round(this.map.getZoom()))) {
      const [lon, lat] = f.geometry.coordinates;
      const p = f.properties;
      if ("cluster" in p && p.cluster) {
        this.clusterMarker(lat, lon, p.point_count, p, () => {
          this.map.setView([lat, lon], Math.min(index.getClusterExpansionZoom(p.cluster_id), 19));
        });
      } else {
        const image = this.images[(p as Props).i];
        const marker = L.circleMarker([lat, lon], {
          renderer: this.renderer,
          radius: image.is_pano ? 6 : 5,
          color: image.is_pano ? "#1c2430" : "#ffffff",
          weight: image.is_pano ? 2 : 1.5,
          fillColor: serviceColour(image.service),
          fillOpacity: 1,
        });
        marker.on("click", () => this.popup(this.imagesAt(lat, lon, image), L.latLng(lat, lon)));
        marker.addTo(this.points);
        this.drawn.push({ image, marker });
      }
    }
    if (this.under) {
      // Under the new track: what is already there is the background to it.
      for (const c of this.clusters) c.bringToBack();
      for (const d of this.drawn) d.marker.bringToBack();
      this.lines.eachLayer((l) => (l as L.Polyline).bringToBack());
    }
  }

  /** A count in a pie of the services' shares, drawn on the canvas. */
  private clusterMarker(lat: number, lon: number, count: number, agg: Agg, zoomIn: () => void): void {
    const parts: [number, string][] = [
      [agg.m, SERVICE_COLOURS.mapillary],
      [agg.k, SERVICE_COLOURS.kartaview],
      [agg.p, SERVICE_COLOURS.panoramax],
    ];
    const marker = new ClusterMarker([lat, lon], {
      renderer: this.renderer,
      radius: count < 10 ? 12 : count < 100 ? 15 : count < 1000 ? 18 : 20,
      shares: parts.filter(([n]) => n > 0),
      label: abbreviate(count),
    });
    // The words are made when pointed at: hundreds of clusters are drawn on every move.
    marker.on("mouseover", () => {
      const shares = parts
        .map(([n], i) => (n > 0 ? `${n.toLocaleString("en")} on ${SEARCH_SERVICES[i].label}` : null))
        .filter(Boolean)
        .join(", ");
      this.tip.setLatLng([lat, lon]).setContent(`${count.toLocaleString("en")} images close together (${shares}): click to zoom in`);
      this.map.openTooltip(this.tip);
    });
    marker.on("mouseout", () => this.map.closeTooltip(this.tip));
    marker.on("click", zoomIn);
    marker.addTo(this.points);
    this.clusters.push(marker);
  }

  /**
   * The images drawn at the same spot as `image` (it first): a sequence uploaded to several
   * services has its images at the same places on each, and only the top one can be clicked.
   */
  private imagesAt(lat: number, lon: number, image: FoundImage): FoundImage[] {
    const here = this.drawn
      .map((d) => d.image)
      .filter((i) => i !== image && Math.abs(i.lat - lat) < 1e-7 && Math.abs(i.lon - lon) < 1e-7);
    return [image, ...here];
  }

  private popup(here: FoundImage[], at: L.LatLng): void {
    // Clear of the note across the top of the map (no background, offline) and the controls.
    const popup = L.popup({ maxWidth: 300, minWidth: 240, autoPanPaddingTopLeft: [56, 72], autoPanPaddingBottomRight: [24, 24] });
    const show = (n: number) => popup.setContent(this.popupBody(here, n, show));
    show(0);
    popup.setLatLng(at).openOn(this.map);
  }

  private popupBody(here: FoundImage[], n: number, show: (n: number) => void): HTMLElement {
    const image = here[n];
    const label = labelOf(image.service);
    const noThumb = (why: string) => h("div", { class: "found-nothumb" }, why);
    // A frame of fixed size: the popup is laid out (and the map panned to show it whole)
    // before the thumbnail arrives.
    const thumb = h("div", { class: "found-frame" });
    if (image.thumb_url) {
      const img = h("img", { class: "found-thumb", src: image.thumb_url, alt: `The ${label} image` });
      img.addEventListener("error", () => img.replaceWith(noThumb("The thumbnail could not be loaded.")));
      thumb.append(img);
    } else {
      thumb.append(noThumb(`${label} gives no thumbnail for this image.`));
    }
    const rows: [string, string][] = [
      ["Taken", image.captured_at_ms === null ? "not said" : `${new Date(image.captured_at_ms).toISOString().replace("T", " ").slice(0, 16)} UTC`],
      ["By", image.user ?? "not said"],
      ["Heading", image.heading === null ? "not said" : `${Math.round(image.heading)}°`],
      ["360°", image.is_pano === null ? "not said" : image.is_pano ? "yes" : "no"],
    ];
    const page = image.page_url;
    const dot = (d: Destination) => {
      const el = h("span", { class: "service-dot", "aria-hidden": "true" });
      el.style.background = serviceColour(d);
      return el;
    };
    return h(
      "div",
      { class: "found-popup", "data-service": image.service, "data-id": image.id },
      thumb,
      h("p", { class: "found-title" }, dot(image.service), `${label} image`),
      h("dl", { class: "found-facts" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      page
        ? h("button", { class: "link found-link", type: "button", title: page, onclick: () => void api.openExternal(page).catch((e: { message: string }) => toast(e.message, "error")) }, `View on ${label}`)
        : h("p", { class: "muted small" }, `${label} gives no page for it.`),
      here.length > 1
        ? h(
            "div",
            { class: "found-also" },
            h("span", { class: "muted small" }, "Also at this spot:"),
            ...here.map((other, i) =>
              i === n ? null : h("button", { class: "link small found-other", type: "button", "data-id": other.id, onclick: (e: Event) => {
                // The content is replaced under the click: a click whose target has left the
                // popup would reach the map as a click on the map, which closes the popup.
                e.stopPropagation();
                show(i);
              } }, dot(other.service), `${labelOf(other.service)}${other.user && other.user !== image.user ? ` (${other.user})` : ""}`),
            ),
          )
        : null,
    );
  }

  private paintLegend(): void {
    const box = this.legendBox;
    if (!box) return;
    box.hidden = this.services.length === 0;
    const dot = (colour: string, cls = "service-dot") => {
      const d = h("span", { class: cls, "aria-hidden": "true" });
      d.style.background = colour;
      return d;
    };
    box.replaceChildren(
      ...this.services.map((s) =>
        h("div", { class: "legend-row", "data-service": s }, dot(serviceColour(s)), `${labelOf(s)} `, h("span", { class: "legend-count" }, `(${this.count(s).toLocaleString("en")})`)),
      ),
      h("div", { class: "legend-row muted" }, h("span", { class: "legend-line", "aria-hidden": "true" }), "a sequence (in its service's colour)"),
      h("div", { class: "legend-row muted" }, h("span", { class: "legend-pano", "aria-hidden": "true" }), "a 360° image"),
      h("div", { class: "legend-row muted" }, h("span", { class: "legend-cluster", "aria-hidden": "true" }, "12"), "images close together"),
    );
  }

  /** Where the drawn points (or clusters) are in the window, where a click reaches them. */
  private onScreen(what: "points" | "clusters"): ScreenPoint[] {
    const rect = this.map.getContainer().getBoundingClientRect();
    const out: ScreenPoint[] = [];
    const markers = what === "points" ? this.drawn : this.clusters.map((marker) => ({ marker, image: null }));
    for (const { image, marker } of markers) {
      const p = this.map.latLngToContainerPoint(marker.getLatLng());
      const x = rect.left + p.x;
      const y = rect.top + p.y;
      // Not under the legend, a control or a popup.
      const top = document.elementFromPoint(x, y);
      if (!(top instanceof HTMLCanvasElement) || !this.map.getContainer().contains(top)) continue;
      out.push({ id: image?.id ?? "", service: image?.service ?? "mapillary", x, y });
    }
    return out;
  }
}

function abbreviate(n: number): string {
  if (n < 1000) return String(n);
  if (n < 10000) return `${(n / 1000).toFixed(1)}k`;
  return `${Math.round(n / 1000)}k`;
}
