import { api, type Destination, type IntegrationCard, type StartedIntegration } from "../ipc";
import { clear, h, toast } from "../dom";
import { mapillaryStatsLine } from "./mapillary";

/** Sign-ins started from this window and not finished yet, by service. */
const waiting = new Map<Destination, StartedIntegration>();
let sandbox = false;

export async function renderIntegrations(root: HTMLElement): Promise<void> {
  const [cards, overview] = await Promise.all([api.integrations(), api.overview()]);
  sandbox = overview.mode.mode === "sandbox";
  for (const c of cards) if (c.connected_as !== null && !c.needs_reauth) waiting.delete(c.service);
  clear(root);
  root.append(
    h("h1", {}, "Integrations"),
    h(
      "p",
      { class: "lead" },
      sandbox
        ? "Sandbox mode: these are the built-in emulators. Integrate still opens a sign-in page in your browser, served by the emulator, and comes back here — nothing leaves this computer."
        : "Connect the services you want to publish to. Integrate opens the service's sign-in page in your browser; when you approve, it sends you back here.",
    ),
    h("div", { class: "cards" }, ...cards.map((c) => card(c, root))),
  );
}

function card(c: IntegrationCard, root: HTMLElement): HTMLElement {
  const rerender = () => void renderIntegrations(root);
  const el = h("article", { class: `card service-${c.service}`, "data-service": c.service }, h("h2", {}, c.label), h("p", { class: "blurb" }, c.blurb));
  const actions = h("div", { class: "actions" });
  const connected = c.connected_as !== null;
  if (connected && c.needs_reauth) {
    el.append(h("p", { class: "status warn" }, `Sign-in expired for ${c.connected_as || "this account"}: integrate again. Your queued uploads wait and are kept.`));
  } else if (connected) {
    el.append(h("p", { class: "status ok" }, `Connected as ${c.connected_as || "(unnamed account)"}`));
    if (c.instance_url) el.append(h("p", { class: "muted small" }, c.instance_url));
    if (c.service === "mapillary") {
      // Account stats when Mapillary gives them; nothing otherwise.
      const slot = h("div", { class: "mly-stats-slot" });
      el.append(slot);
      void mapillaryStatsLine().then((line) => { if (line) slot.append(line); });
    }
  } else if (c.missing_settings.length > 0) {
    el.append(h("p", { class: "status muted" }, `Cannot integrate yet: set ${c.missing_settings.join(", ")} in your .env file (see .env.example), then restart the app.`));
  } else {
    el.append(h("p", { class: "status muted" }, "Not connected"));
  }

  if (connected && !c.needs_reauth) {
    actions.append(
      h("button", { class: "secondary danger", onclick: async () => {
        try { await api.disconnect(c.service); toast(`${c.label} disconnected.`); } catch (e) { toast((e as Error).message, "error"); }
        rerender();
      } }, "Disconnect"),
    );
  } else if (c.uses_browser) {
    const pending = waiting.get(c.service);
    if (pending) {
      el.append(
        h("p", { class: "status", role: "status" }, "Waiting for you to approve in your browser…"),
        h("p", { class: "muted small" }, pending.browser_opened ? "No browser? Open this address:" : `${pending.browser_error ?? "The browser did not open."}`),
        h("input", { class: "url", type: "text", readonly: true, value: pending.authorize_url }),
      );
    }
    actions.append(
      h("button", { class: "primary", "data-action": "integrate", disabled: c.missing_settings.length > 0, onclick: async () => {
        try {
          const started = await api.startIntegration(c.service);
          waiting.set(c.service, started);
        } catch (e) {
          toast((e as Error).message, "error");
        }
        rerender();
      } }, pending ? "Open sign-in again" : connected ? "Integrate again" : "Integrate"),
    );
    if (pending) actions.append(h("button", { class: "link", onclick: () => { waiting.delete(c.service); rerender(); } }, "Cancel"));
  } else {
    // Panoramax: an instance address and an API token.
    const url = h("input", { type: "text", id: "panoramax-url", placeholder: "https://panoramax.openstreetmap.fr", value: c.instance_url ?? "" });
    const token = h("input", { type: "password", id: "panoramax-token", placeholder: sandbox ? "not needed in sandbox mode" : "API token from your instance" });
    if (sandbox) url.readOnly = true;
    el.append(h("label", { class: "small" }, "Instance"), url, h("label", { class: "small" }, "API token"), token);
    actions.append(
      h("button", { class: "primary", "data-action": "connect", onclick: async (ev: Event) => {
        const btn = ev.currentTarget as HTMLButtonElement;
        btn.disabled = true;
        try {
          const name = await api.connectPanoramax(url.value.trim() || null, token.value.trim() || null);
          toast(`Panoramax connected as ${name}.`, "ok");
        } catch (e) {
          toast((e as Error).message, "error");
        }
        rerender();
      } }, connected ? "Connect again" : "Connect"),
    );
  }
  if (c.service === "mtpw" && connected) el.append(mapillaryConsent(c, rerender));
  el.append(actions);
  return el;
}

/** Map the Paths Web links a sequence to its Mapillary imagery only with the user's
 *  Mapillary token: asked once, here; the answer can be changed. */
function mapillaryConsent(c: IntegrationCard, rerender: () => void): HTMLElement {
  const set = async (allow: boolean) => {
    try {
      await api.setMtpwMapillaryConsent(allow);
    } catch (e) {
      toast((e as Error).message, "error");
    }
    rerender();
  };
  const box = h("div", { class: "consent", id: "mtpw-consent", "data-consent": String(c.mapillary_consent) });
  if (c.mapillary_consent === null) {
    box.append(
      h("p", { class: "status warn" }, "To link your sequences to their Mapillary photos, Map the Paths Web needs your Mapillary access token. Send it to Map the Paths Web when linking?"),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "primary", "data-action": "consent-allow", onclick: () => void set(true) }, "Allow"),
        h("button", { class: "secondary", "data-action": "consent-deny", onclick: () => void set(false) }, "Don't send it"),
      ),
    );
  } else {
    box.append(
      h(
        "p",
        { class: "muted small" },
        c.mapillary_consent
          ? "Your Mapillary token is sent to Map the Paths Web to link sequences. "
          : "Your Mapillary token is not sent: sequences are created on Map the Paths Web without their Mapillary photos. ",
        h("button", { class: "link", "data-action": c.mapillary_consent ? "consent-deny" : "consent-allow", onclick: () => void set(!c.mapillary_consent) }, c.mapillary_consent ? "Stop sending it" : "Allow it"),
      ),
    );
  }
  return box;
}
