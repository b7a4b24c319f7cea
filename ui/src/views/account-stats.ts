// The KartaView and Panoramax cards' account stats: what the service says the account
// holds. When the service cannot tell, a short muted line says so (never a made-up zero).
import { api, type AppError } from "../ipc";
import { h } from "../dom";

const km = (n: number) => `${n.toLocaleString(undefined, { maximumFractionDigits: 1 })} km`;
const count = (n: number, one: string, many: string) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function line(service: string, text: string): HTMLElement {
  return h("p", { class: "muted small account-stats", "data-testid": `${service}-stats` }, text);
}

function unavailable(service: string, label: string, e: unknown): HTMLElement {
  const el = h("p", { class: "muted small account-stats unavailable", "data-testid": `${service}-stats-unavailable` }, `${label} stats unavailable right now.`);
  el.title = (e as AppError).message ?? String(e);
  return el;
}

/** "On KartaView: 1,234 photos · 56.7 km · 8 tracks · rank #42 · #3 this week". */
export async function kartaviewStatsLine(): Promise<HTMLElement | null> {
  let stats;
  try {
    stats = await api.kartaviewStats();
  } catch (e) {
    return unavailable("kartaview", "KartaView", e);
  }
  if (!stats) return null;
  const parts: string[] = [];
  if (stats.photos !== null) parts.push(count(stats.photos, "photo", "photos"));
  if (stats.km !== null) parts.push(km(stats.km));
  if (stats.tracks !== null) parts.push(count(stats.tracks, "track", "tracks"));
  if (stats.overall_rank !== null) parts.push(`rank #${stats.overall_rank.toLocaleString()}`);
  if (stats.weekly_rank !== null) parts.push(`#${stats.weekly_rank.toLocaleString()} this week`);
  if (parts.length === 0) return null;
  return line("kartaview", `On KartaView: ${parts.join(" · ")}`);
}

/** "On this instance: 1,234 photos · 56.7 km · 8 sequences". */
export async function panoramaxStatsLine(): Promise<HTMLElement | null> {
  let stats;
  try {
    stats = await api.panoramaxStats();
  } catch (e) {
    return unavailable("panoramax", "Panoramax", e);
  }
  if (!stats) return null;
  const parts = [count(stats.photos, "photo", "photos"), km(stats.km), count(stats.sequences, "sequence", "sequences")];
  if (stats.incomplete > 0) parts.push(`${count(stats.incomplete, "sequence", "sequences")} still processing, not counted yet`);
  return line("panoramax", `On this instance: ${parts.join(" · ")}`);
}
