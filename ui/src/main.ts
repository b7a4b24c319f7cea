import "./style.css";
import { api, closeChoice, onAppEvent, onCloseRequested, type AppEvent } from "./ipc";
import { h, toast } from "./dom";
import { integrationsShownAgain, renderIntegrations } from "./views/integrations";
import { renderImport, onImportProgress, listenForDrops } from "./views/import";
import { renderSequences, onSequencesEvent } from "./views/sequences";
import { renderExplore } from "./views/explore";
import { appIcon, showAbout, showWelcome } from "./views/about";

// What the Content-Security-Policy blocked (it allows no inline script or style): kept for
// the end-to-end tests, which fail when anything was.
const cspViolations: string[] = [];
(window as unknown as { __cspViolations: string[] }).__cspViolations = cspViolations;
document.addEventListener("securitypolicyviolation", (e) => {
  cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline content"}`);
});

type Place = "integrations" | "import" | "sequences" | "explore";

const renderers: Record<Place, (root: HTMLElement) => Promise<void>> = {
  integrations: renderIntegrations,
  import: renderImport,
  sequences: renderSequences,
  explore: renderExplore,
};

let current: Place = "integrations";
/** The person chose a place before boot finished: boot must not take them back. */
let chosen = false;

export async function show(place: Place): Promise<void> {
  if (place === "integrations" && current !== place) integrationsShownAgain();
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

// For bench/ui-list.sh: hands events to the UI as the IPC bridge does, so a burst of
// progress can be measured without an upload that happens to make one.
(window as unknown as { __mtpDispatch: (e: AppEvent) => void }).__mtpDispatch = (e) => handleEvent(e);

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
    case "uploads_elsewhere":
      showUploadsElsewhere(e.elsewhere);
      break;
    default:
      onSequencesEvent(e);
  }
}

/** Another process runs this data folder's uploads (or no longer does): say so above every
 * place, since the rows move only as that process saves its progress. */
function showUploadsElsewhere(elsewhere: boolean): void {
  const banner = document.getElementById("elsewhere-banner");
  if (banner) banner.hidden = !elsewhere;
}

/** The window is being closed while uploads run: keep them going in the background, or stop. */
function askBeforeClosing(active: number): void {
  document.getElementById("close-dialog")?.remove();
  const dialog = h(
    "dialog",
    { id: "close-dialog", class: "dialog", "aria-labelledby": "close-title" },
    h("h2", { id: "close-title" }, active === 1 ? "An upload is still running" : `${active} uploads are still running`),
    h("p", {}, "Keep uploading in the background: the window closes and MTP Desktop stays in the system tray (open it again from there, or by starting MTP Desktop)."),
    h("p", {}, "Or stop now: unfinished uploads resume where they stopped the next time you start MTP Desktop. Nothing is sent twice."),
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { class: "primary", id: "close-background", onclick: () => { dialog.close(); void closeChoice("background"); } }, "Keep uploading in the background"),
      h("button", { class: "secondary", id: "close-quit", onclick: () => { dialog.close(); void closeChoice("quit"); } }, "Stop and quit"),
      h("button", { class: "link", id: "close-cancel", onclick: () => dialog.close() }, "Cancel"),
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  (dialog.querySelector("#close-background") as HTMLButtonElement | null)?.focus();
}

async function boot(): Promise<void> {
  for (const btn of document.querySelectorAll<HTMLButtonElement>(".nav-item")) {
    btn.addEventListener("click", () => {
      chosen = true;
      void show(btn.dataset.place as Place);
    });
  }
  await onAppEvent(handleEvent);
  await onCloseRequested(askBeforeClosing);
  document.querySelector(".brand .logo")?.replaceWith(appIcon(22, "logo"));
  document.getElementById("about-open")?.addEventListener("click", () => {
    api.overview().then(showAbout, (e) => toast((e as { message?: string }).message ?? String(e), "error"));
  });
  const importRoot = document.getElementById("place-import");
  if (importRoot) await listenForDrops(importRoot);
  document.body.dataset.ready = "true";
  try {
    const o = await api.overview();
    const banner = document.getElementById("mode-banner");
    if (banner && o.mode.mode === "sandbox") {
      banner.hidden = false;
      banner.title = o.mode.reason;
      banner.replaceChildren(h("strong", {}, "Sandbox mode"), " — a practice run: uploads go to test services inside this app and nothing is published.");
    }
    showUploadsElsewhere(o.uploads_elsewhere);
    const loc = document.getElementById("data-location");
    if (loc) loc.textContent = `v${o.version} · data in ${o.data_dir}`;
    for (const n of await api.notices()) toast(n.message, n.accepted ? "ok" : "error");
    // A settings file with a line that could not be read: say so at every start, not only
    // on the first-run screen and in About.
    if (!o.first_run) for (const p of o.settings_problems) toast(p, "error");
    if (!chosen) await show("integrations");
    if (o.first_run) await showWelcome(o);
    else document.body.dataset.welcome = "seen";
  } catch (e) {
    showFatal((e as { message?: string }).message ?? String(e));
    document.body.dataset.welcome = "none";
    return;
  }
  // For bench/cold-start.sh: the first screen with its data is on screen. A timeout queued
  // from an animation frame runs after that frame was painted.
  requestAnimationFrame(() => setTimeout(() => performance.mark("mtp-first-paint")));
}

void boot();
