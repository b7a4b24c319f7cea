import "./style.css";
import { api, onAppEvent, type AppEvent } from "./ipc";
import { h, toast } from "./dom";
import { renderIntegrations } from "./views/integrations";
import { renderImport, onImportProgress, listenForDrops } from "./views/import";
import { renderSequences, onSequencesEvent } from "./views/sequences";

type Place = "integrations" | "import" | "sequences";

const renderers: Record<Place, (root: HTMLElement) => Promise<void>> = {
  integrations: renderIntegrations,
  import: renderImport,
  sequences: renderSequences,
};

let current: Place = "integrations";

export async function show(place: Place): Promise<void> {
  current = place;
  for (const btn of document.querySelectorAll<HTMLButtonElement>(".nav-item")) {
    btn.classList.toggle("active", btn.dataset.place === place);
    btn.setAttribute("aria-current", btn.dataset.place === place ? "page" : "false");
  }
  for (const sec of document.querySelectorAll<HTMLElement>(".place")) {
    sec.hidden = sec.dataset.place !== place;
  }
  const root = document.getElementById(`place-${place}`);
  if (!root) return;
  try {
    await renderers[place](root);
  } catch (e) {
    showFatal((e as { message?: string }).message ?? String(e));
  }
}

function showFatal(message: string): void {
  const box = document.getElementById("fatal");
  if (!box) return;
  box.hidden = false;
  box.replaceChildren(h("strong", {}, "MTP Desktop cannot open its data. "), message);
}

function handleEvent(e: AppEvent): void {
  switch (e.type) {
    case "deep_link":
      toast(e.message, e.accepted ? "ok" : "error");
      if (current === "integrations") void show("integrations");
      break;
    case "accounts_changed":
      if (current === "integrations") void show("integrations");
      break;
    case "import_progress":
      onImportProgress(e.files_done, e.files_total);
      break;
    default:
      onSequencesEvent(e);
  }
}

async function boot(): Promise<void> {
  for (const btn of document.querySelectorAll<HTMLButtonElement>(".nav-item")) {
    btn.addEventListener("click", () => void show(btn.dataset.place as Place));
  }
  await onAppEvent(handleEvent);
  const importRoot = document.getElementById("place-import");
  if (importRoot) await listenForDrops(importRoot);
  document.body.dataset.ready = "true";
  try {
    const o = await api.overview();
    const banner = document.getElementById("mode-banner");
    if (banner && o.mode.mode === "sandbox") {
      banner.hidden = false;
      banner.title = o.mode.reason;
      banner.replaceChildren(h("strong", {}, "Sandbox mode"), " — nothing leaves this computer. ", o.mode.reason);
    }
    const loc = document.getElementById("data-location");
    if (loc) loc.textContent = `v${o.version} · data in ${o.data_dir}`;
    for (const n of await api.notices()) toast(n.message, n.accepted ? "ok" : "error");
  } catch (e) {
    showFatal((e as { message?: string }).message ?? String(e));
    return;
  }
  await show("integrations");
}

void boot();
