// Running an Explore search and telling how it goes, shared by the Explore place and the
// Import screen's "Show what is already here".
import { api, explore, type Destination, type ExploreQuery, type ExploreResult, type FoundImage, type ServiceOutcome } from "./ipc";
import { h } from "./dom";

export type SearchService = "mapillary" | "kartaview" | "panoramax";

export const SEARCH_SERVICES: { id: SearchService; label: string }[] = [
  { id: "mapillary", label: "Mapillary" },
  { id: "kartaview", label: "KartaView" },
  { id: "panoramax", label: "Panoramax" },
];

export function labelOf(d: Destination): string {
  return SEARCH_SERVICES.find((s) => s.id === d)?.label ?? (d === "mtpw" ? "Map the Paths Web" : d);
}

export interface RunningSearch {
  id: number;
  /** Settles when the search ends (found, stopped or failed as a whole). */
  done: Promise<ExploreResult>;
  stop(): void;
}

/**
 * Starts a search. Progress for an older search that is still winding down is not passed
 * on: each caller only hears about the search it started.
 */
export async function startSearch(
  query: ExploreQuery,
  on: { images(images: FoundImage[]): void; outcome(o: ServiceOutcome): void },
): Promise<RunningSearch> {
  const id = await api.newSearch();
  const done = explore(id, query, (p) => {
    if (p.search_id !== id) return;
    if (p.images.length > 0) on.images(p.images);
    if (p.outcome) on.outcome(p.outcome);
  });
  return { id, done, stop: () => void api.cancelSearch(id).catch(() => undefined) };
}

/** One chip per service searched: running with a live count, then how it ended. */
export class StatusChips {
  readonly el: HTMLElement;
  private chips = new Map<Destination, HTMLElement>();
  private outcomes = new Map<Destination, ServiceOutcome>();
  private counts = new Map<Destination, number>();

  constructor(id: string) {
    this.el = h("div", { class: "chips", id, role: "status", "aria-live": "polite" });
  }

  reset(services: Destination[]): void {
    this.el.replaceChildren();
    this.chips.clear();
    this.outcomes.clear();
    this.counts.clear();
    for (const s of services) {
      const chip = h("span", { class: "chip", "data-service": s, "data-state": "waiting" });
      this.chips.set(s, chip);
      this.el.append(chip);
      this.paint(s);
    }
  }

  clear(): void {
    this.reset([]);
  }

  outcome(o: ServiceOutcome): void {
    this.outcomes.set(o.service, o);
    if (o.state !== "running") this.counts.set(o.service, o.images);
    this.paint(o.service);
  }

  /** Images that arrived for a service while it runs. */
  count(service: Destination, n: number): void {
    this.counts.set(service, n);
    this.paint(service);
  }

  all(): ServiceOutcome[] {
    return [...this.outcomes.values()];
  }

  private paint(service: Destination): void {
    const chip = this.chips.get(service);
    if (!chip) return;
    const o = this.outcomes.get(service);
    const n = this.counts.get(service) ?? 0;
    const state = o?.state ?? "waiting";
    chip.dataset.state = state;
    chip.dataset.count = String(n);
    const label = labelOf(service);
    const text: Record<string, string> = {
      waiting: `${label}: waiting…`,
      running: `${label}: searching… ${n}`,
      done: `${label}: ${images(n)}`,
      skipped: `${label}: not searched`,
      failed: `${label}: failed`,
      stopped: `${label}: stopped at ${images(n)}`,
    };
    chip.replaceChildren(h("span", { class: "chip-dot", "aria-hidden": "true" }), text[state] ?? label);
    chip.title = o?.message ?? "";
  }
}

/** "A", "A and B", "A, B and C". */
export function list(names: string[]): string {
  return names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

export function images(n: number): string {
  return n === 1 ? "1 image" : `${n.toLocaleString("en")} images`;
}

export interface Verdict {
  kind: "found" | "empty" | "error" | "stopped";
  headline: string;
  /** Why a service was not searched or failed, in the service's words. */
  problems: string[];
  /** What the results miss. */
  partial: string[];
}

/** What a finished search means, in words. */
export function verdict(
  result: ExploreResult,
  limit: number | null,
  words: { where: string; advice: string },
): Verdict {
  const problems = result.services
    .filter((o) => (o.state === "skipped" || o.state === "failed") && o.message)
    .map((o) => o.message as string);
  const partial = result.services.flatMap((o) => o.incomplete);
  for (const o of result.services) {
    if (o.rate_limited > 0) {
      partial.push(`${labelOf(o.service)} asked the app to slow down ${o.rate_limited === 1 ? "once" : `${o.rate_limited} times`}; the search waited and went on.`);
    }
  }
  if (result.limited) {
    partial.unshift(`Showing the first ${images(limit ?? result.images)} of a crowded area: zoom in, draw a smaller box or narrow the time range to see the rest.`);
  }
  const searched = result.services.filter((o) => o.state === "done" || o.state === "stopped");
  if (result.cancelled) {
    return { kind: "stopped", headline: `Stopped: showing the ${images(result.images)} found before you stopped.`, problems, partial };
  }
  if (searched.length === 0) {
    return { kind: "error", headline: "Nothing could be searched.", problems, partial };
  }
  if (result.images === 0) {
    const names = list(searched.map((o) => labelOf(o.service)));
    return {
      kind: "empty",
      headline: `Nothing found ${words.where} on ${names}. ${words.advice}`,
      problems,
      partial,
    };
  }
  const found = searched.filter((o) => o.images > 0);
  const headline =
    found.length === 0
      ? `Found ${images(result.images)}.`
      : found.length === 1
      ? `Found ${images(result.images)} on ${labelOf(found[0].service)}.`
      : `Found ${images(result.images)}: ${found.map((o) => `${o.images.toLocaleString("en")} on ${labelOf(o.service)}`).join(", ")}.`;
  return { kind: "found", headline, problems, partial };
}

/** The verdict as a block: the headline, then the problems and the missing parts. */
export function verdictBlock(v: Verdict, id: string): HTMLElement {
  return h(
    "div",
    { class: `verdict verdict-${v.kind}`, id, "data-kind": v.kind },
    h("p", { class: "verdict-head" }, v.headline),
    v.problems.length ? h("ul", { class: "verdict-problems" }, ...v.problems.map((p) => h("li", {}, p))) : null,
    v.partial.length ? h("div", { class: "verdict-partial" }, h("strong", {}, "Some images may be missing: "), ...v.partial.map((p) => h("p", {}, p))) : null,
  );
}
