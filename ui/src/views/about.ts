// The About box, the first-run screen and the setup guide (the README's own sections, shown
// in the app: an installed app has no README beside it).

import readme from "../../../README.md?raw";
import licence from "../../../LICENSE?raw";
import iconUrl from "../../../src-tauri/icons/icon.svg";
import { api, asAppError, type IntegrationCard, type Overview } from "../ipc";
import { h, toast } from "../dom";
import { render, sections, type Section } from "../markdown";

/** The guide's pages: the README sections a person setting up needs, in this order. */
const GUIDE_PAGES: { slug: string; label: string }[] = [
  { slug: "mapillary-setup", label: "Mapillary" },
  { slug: "kartaview-setup", label: "KartaView" },
  { slug: "panoramax-setup", label: "Panoramax" },
  { slug: "map-the-paths-web-setup", label: "Map the Paths Web" },
  { slug: "configuration", label: "Settings file" },
  { slug: "signing-in", label: "Signing in" },
  { slug: "sandbox-mode", label: "Sandbox mode" },
];

/** The guide page (README section) that sets up `service`. */
export function guideFor(service: string): string {
  return SERVICE_GUIDE[service] ?? GUIDE_PAGES[0].slug;
}

const SERVICE_GUIDE: Record<string, string> = {
  mapillary: "mapillary-setup",
  kartaview: "kartaview-setup",
  panoramax: "panoramax-setup",
  mtpw: "map-the-paths-web-setup",
};

let readmeSections: Section[] | null = null;
function readmeSection(slug: string): Section | undefined {
  readmeSections ??= sections(readme);
  return readmeSections.find((s) => s.slug === slug);
}

function openDialog(dialog: HTMLDialogElement): HTMLDialogElement {
  document.getElementById(dialog.id)?.remove();
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function appIcon(size: number, cls = "app-icon"): HTMLImageElement {
  return h("img", { src: iconUrl, width: size, height: size, alt: "", class: cls });
}

function openLink(href: string): void {
  api.openExternal(href).catch((e) => toast(asAppError(e).message, "error"));
}

/** The setup guide, open at `slug` (a README heading's anchor). */
export function showGuide(slug: string = GUIDE_PAGES[0].slug): void {
  const body = h("div", { class: "guide-body", id: "guide-body", tabindex: "-1" });
  const tabs = h("div", { class: "guide-tabs", role: "tablist" });
  const go = (target: string) => {
    const section = readmeSection(target);
    if (!section) {
      body.replaceChildren(h("p", { class: "muted" }, `This guide has no section "${target}".`));
      return;
    }
    body.replaceChildren(render(section.lines, (href) => (href.startsWith("#") ? go(href.slice(1)) : openLink(href))));
    body.dataset.section = target;
    body.scrollTop = 0;
    for (const t of tabs.querySelectorAll<HTMLButtonElement>("button")) {
      t.setAttribute("aria-selected", String(t.dataset.section === target));
    }
  };
  for (const page of GUIDE_PAGES) {
    tabs.append(
      h("button", { class: "guide-tab", role: "tab", "data-section": page.slug, onclick: () => go(page.slug) }, page.label),
    );
  }
  const dialog = openDialog(
    h(
      "dialog",
      { id: "guide", class: "dialog guide-dialog", "aria-labelledby": "guide-title" },
      h("h2", { id: "guide-title" }, "Setup guide"),
      h("p", { class: "muted" }, "From the README of MTP Desktop: how to get each service ready for your own account."),
      tabs,
      body,
      h("div", { class: "dialog-actions" }, h("button", { class: "primary", id: "guide-close", onclick: () => dialog.close() }, "Close")),
    ),
  );
  go(slug);
  body.focus();
}

function settingsFileLine(o: Overview): HTMLElement {
  if (!o.settings_file) {
    return h("p", {}, "This system has no configuration folder: set the settings in the environment (see the guide's Settings file page).");
  }
  const read = o.settings_read.includes(o.settings_file);
  return h(
    "p",
    {},
    "Your settings file: ",
    h("code", { class: "path", id: "welcome-settings-file" }, o.settings_file),
    read ? " (read at this start)." : " (not there yet: create it).",
    read && o.settings_problems.length ? " Part of it could not be read: see above." : "",
  );
}

function problemsBox(o: Overview): HTMLElement | null {
  if (!o.settings_problems.length) return null;
  return h("div", { class: "warn-box", role: "alert", id: "settings-problems" }, ...o.settings_problems.map((p) => h("p", {}, p)));
}

function serviceLine(card: IntegrationCard): HTMLElement {
  const guide = guideFor(card.service);
  const ready = card.missing_settings.length === 0;
  return h(
    "li",
    { class: `welcome-service ${ready ? "ok" : "todo"}`, "data-service": card.service },
    h("strong", {}, card.label),
    ready ? " — ready: Integrate it on its card. " : ` — not set up (needs ${card.missing_settings.join(", ")}). `,
    h("button", { class: "link", "data-guide": guide, onclick: () => showGuide(guide) }, `${card.label} setup`),
  );
}

/** The first-run screen: where the app sends photos, and how to set up each service. */
export async function showWelcome(o: Overview, cards: IntegrationCard[] | null = null): Promise<void> {
  cards ??= await api.integrations().catch(() => []);
  const sandbox = o.mode.mode === "sandbox";
  const modeBox = sandbox
    ? h(
        "div",
        { class: "welcome-mode sandbox", id: "welcome-mode", "data-mode": "sandbox" },
        h("h3", {}, "Sandbox mode: a practice run"),
        h(
          "p",
          {},
          "Every service here is a test service built into this app. You can integrate, import and upload as you would for real; nothing leaves this computer and nothing is published. ",
          h("span", { class: "muted" }, `(${o.mode.reason}.)`),
        ),
        h("p", {}, "To use your real accounts: set up a service as its guide says, write its settings into your settings file, and start MTP Desktop again."),
        settingsFileLine(o),
        h(
          "p",
          { class: "welcome-guides" },
          "Setup guides: ",
          ...Object.entries(SERVICE_GUIDE).flatMap(([service, guide], k) => [
            k ? " · " : "",
            h("button", { class: "link", "data-guide": guide, onclick: () => showGuide(guide) }, cards?.find((c) => c.service === service)?.label ?? service),
          ]),
        ),
      )
    : h(
        "div",
        { class: "welcome-mode live", id: "welcome-mode", "data-mode": "live" },
        ...(cards.some((c) => c.missing_settings.length === 0)
          ? [
              h("h3", {}, "Connected to the real services"),
              h("p", {}, "What you upload is published on the services you choose, under your accounts."),
            ]
          : [
              h("h3", {}, "Real services, none set up yet"),
              h("p", {}, `${o.mode.reason}, but no service has its settings yet: set one up as its guide says, then start MTP Desktop again.`),
            ]),
        h("ul", { class: "welcome-services" }, ...cards.map(serviceLine)),
        settingsFileLine(o),
      );
  const dialog = openDialog(
    h(
      "dialog",
      { id: "welcome", class: "dialog welcome-dialog", "aria-labelledby": "welcome-title" },
      h("div", { class: "welcome-head" }, appIcon(56), h("div", {}, h("h2", { id: "welcome-title" }, "Welcome to MTP Desktop"), h("p", { class: "muted" }, "Street-level photos to Mapillary, KartaView, Panoramax and Map the Paths Web, from one place."))),
      problemsBox(o),
      modeBox,
      h(
        "ol",
        { class: "welcome-steps" },
        h("li", {}, h("strong", {}, "Integrations: "), "connect each service you upload to."),
        h("li", {}, h("strong", {}, "Import: "), "drop a folder of geotagged photos, check the sequences on the map, choose where they go."),
        h("li", {}, h("strong", {}, "Sequences: "), "watch the uploads; they carry on after quitting, a crash or a lost network."),
      ),
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { class: "primary", id: "welcome-start", onclick: () => dialog.close() }, "Get started"),
        h("button", { class: "secondary", id: "welcome-guide", onclick: () => showGuide() }, "Setup guide"),
      ),
    ),
  );
  // However it is closed (Get started, Escape), it has been seen.
  dialog.addEventListener("close", () => {
    if (o.first_run) {
      api.finishFirstRun().catch((e) => toast(asAppError(e).message, "error"));
      o.first_run = false;
    }
    document.body.dataset.welcome = "seen";
  });
  document.body.dataset.welcome = "shown";
  (dialog.querySelector("#welcome-start") as HTMLButtonElement | null)?.focus();
}

/** The About box: version, where the data and settings are, the licence. */
export function showAbout(o: Overview): void {
  const row = (label: string, id: string, value: Node | string) => [h("dt", {}, label), h("dd", { id }, value)];
  const settings = o.settings_file
    ? h(
        "span",
        {},
        h("code", { class: "path" }, o.settings_file),
        o.settings_read.includes(o.settings_file) ? " (read)" : " (not there: create it to use real services)",
      )
    : "none on this system: use the environment";
  const others = o.settings_read.filter((f) => f !== o.settings_file);
  const dialog = openDialog(
    h(
      "dialog",
      { id: "about", class: "dialog about-dialog", "aria-labelledby": "about-title" },
      h("div", { class: "welcome-head" }, appIcon(56), h("div", {}, h("h2", { id: "about-title" }, "MTP Desktop"), h("p", { class: "muted", id: "about-version" }, `Version ${o.version}`))),
      h(
        "dl",
        { class: "about-facts" },
        ...row("Mode", "about-mode", o.mode.mode === "sandbox" ? `Sandbox: ${o.mode.reason}` : `Real services: ${o.mode.reason}`),
        ...row("Data folder", "about-data", h("code", { class: "path" }, o.data_dir)),
        ...row("Database", "about-db", h("code", { class: "path" }, o.database)),
        ...row("Settings file", "about-settings", settings),
        ...(others.length ? row("Also read", "about-settings-other", others.join(", ")) : []),
        ...row("Licence", "about-licence", `${o.licence} (free software: use, change and share it)`),
      ),
      problemsBox(o),
      h("details", { class: "licence" }, h("summary", {}, "Licence text"), h("pre", { id: "licence-text" }, licence)),
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { class: "primary", id: "about-close", onclick: () => dialog.close() }, "Close"),
        h("button", { class: "secondary", id: "about-guide", onclick: () => showGuide() }, "Setup guide"),
        h("button", { class: "secondary", id: "about-welcome", onclick: () => { dialog.close(); void showWelcome(o); } }, "Welcome screen"),
      ),
    ),
  );
}
