import { api, type IntegrationCard, type SignInStatus } from "../ipc";
import { clear, confirmDialog, h, toast } from "../dom";
import { mapillaryStatsLine } from "./mapillary";
import { kartaviewStatsLine, panoramaxStatsLine } from "./account-stats";
import { guideFor, showGuide } from "./about";

let sandbox = false;
/** The newest render: an older one whose replies come in later must not draw over it. */
let renderGeneration = 0;
/** What the cards on screen show: an event that changed nothing leaves them alone (a redraw
 *  under the pointer can swallow a click, and loses hover and selection). */
let drawn = "";

/** Coming to the screen draws it afresh (the stats lines are read on each draw). */
export function integrationsShownAgain(): void {
  drawn = "";
}

export async function renderIntegrations(root: HTMLElement): Promise<void> {
  const generation = ++renderGeneration;
  const [cards, overview] = await Promise.all([api.integrations(), api.overview()]);
  // Commands answer in any order: a render started before a sign-in began (opening the
  // place while Integrate was clicked) could otherwise put "Not connected" back.
  if (generation !== renderGeneration) return;
  const state = JSON.stringify([cards, overview.mode]);
  if (state === drawn && root.querySelector(".cards")) return;
  drawn = state;
  sandbox = overview.mode.mode === "sandbox";
  // Cards are redrawn whenever an account changes: keep what the user is typing (a code, a
  // token, an address) and where.
  const typed = new Map<string, string>();
  root.querySelectorAll<HTMLInputElement>("input[id]").forEach((i) => { if (!i.readOnly && i.value) typed.set(i.id, i.value); });
  const focused = document.activeElement instanceof HTMLInputElement && root.contains(document.activeElement) ? document.activeElement.id : "";
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
  for (const [id, value] of typed) {
    const input = document.getElementById(id);
    if (input instanceof HTMLInputElement && !input.readOnly && root.contains(input)) input.value = value;
  }
  if (focused) document.getElementById(focused)?.focus();
}

/** Runs an action, shows its error as a toast, then re-reads the cards. */
function act(root: HTMLElement, f: () => Promise<unknown>, ok?: (v: unknown) => string): (ev: Event) => Promise<void> {
  return async (ev: Event) => {
    const btn = ev.currentTarget as HTMLButtonElement | null;
    if (btn) btn.disabled = true;
    try {
      const v = await f();
      if (ok) toast(ok(v), "ok");
    } catch (e) {
      toast((e as Error).message, "error");
    }
    // Cards that did not change are not drawn again: this button must work again.
    if (btn) btn.disabled = false;
    void renderIntegrations(root);
  };
}

function card(c: IntegrationCard, root: HTMLElement): HTMLElement {
  const el = h("article", { class: `card service-${c.service}`, "data-service": c.service }, h("h2", {}, c.label), h("p", { class: "blurb" }, c.blurb));
  const actions = h("div", { class: "actions" });
  const connected = c.connected_as !== null;
  const s = c.sign_in;
  if (connected && c.needs_reauth) {
    const why = c.reauth_reason ?? `Sign-in expired for ${c.connected_as || "this account"}: integrate again.`;
    el.append(h("p", { class: "status warn" }, `${why} Your queued uploads wait and are kept.`));
  } else if (connected) {
    const who = c.connected_as
      ? `Connected as ${c.connected_as}`
      : c.service === "kartaview"
        ? "Connected with a pasted token (no username given with it, so no stats)"
        : "Connected as (unnamed account)";
    el.append(h("p", { class: "status ok" }, who));
    if (c.instance_url) el.append(h("p", { class: "muted small" }, c.instance_url));
    if (c.service === "mapillary") {
      // Account stats when Mapillary gives them; nothing otherwise.
      const slot = h("div", { class: "mly-stats-slot" });
      el.append(slot);
      void mapillaryStatsLine().then((line) => { if (line) slot.append(line); });
    } else if (c.service === "kartaview" || c.service === "panoramax") {
      // Filled in when the service answers, so a slow service does not hold the screen.
      const slot = h("div", { class: "stats-slot", "data-stats": c.service });
      el.append(slot);
      void (c.service === "kartaview" ? kartaviewStatsLine() : panoramaxStatsLine()).then((line) => { if (line) slot.append(line); });
    }
  } else if (c.missing_settings.length > 0) {
    el.append(
      h(
        "p",
        { class: "status muted" },
        `Cannot integrate yet: set ${c.missing_settings.join(", ")} in your settings file (About MTP Desktop shows where it is), then restart the app. `,
        h("button", { class: "link", "data-guide": guideFor(c.service), onclick: () => showGuide(guideFor(c.service)) }, `How to set up ${c.label}`),
      ),
    );
  } else if (!s) {
    el.append(h("p", { class: "status muted" }, "Not connected"));
  }

  if (s) el.append(signInBox(c, s, root));

  if (connected && !c.needs_reauth) {
    actions.append(
      h("button", { class: "secondary danger", onclick: async () => {
        if (!(await confirmDisconnect(c))) return;
        try { await api.disconnect(c.service); toast(`${c.label} disconnected.`); } catch (e) { toast((e as Error).message, "error"); }
        void renderIntegrations(root);
      } }, "Disconnect"),
    );
  } else if (c.uses_browser) {
    const waiting = s?.phase === "waiting";
    // Waiting for a code from KartaView's app: opening again starts that sign-in again.
    const start = s?.wants_code ? () => api.startKartaviewAppSignIn() : () => api.startIntegration(c.service);
    actions.append(
      // While a code is asked for, Connect is the step: opening again is the way back.
      h("button", { class: s?.wants_code ? "secondary" : "primary", "data-action": "integrate", disabled: c.missing_settings.length > 0, onclick: act(root, start) },
        waiting ? "Open sign-in again" : connected ? "Integrate again" : "Integrate"),
    );
  } else {
    // Panoramax: claim a token in the browser (Integrate), or paste one.
    const url = h("input", { type: "text", id: "panoramax-url", placeholder: "https://panoramax.openstreetmap.fr", value: c.instance_url ?? "" });
    const token = h("input", { type: "password", id: "panoramax-token", placeholder: sandbox ? "not needed in sandbox mode" : "or paste an API token from your instance" });
    if (sandbox) url.readOnly = true;
    el.append(h("label", { class: "small" }, "Instance"), url, h("label", { class: "small" }, "API token (optional: Integrate gets one for you)"), token);
    actions.append(
      h("button", { class: "primary", "data-action": "integrate", onclick: act(root, () => api.startPanoramaxClaim(url.value.trim() || null)) },
        s?.phase === "waiting" ? "Open again" : connected ? "Integrate again" : "Integrate"),
      h("button", { class: "secondary", "data-action": "connect", onclick: act(root, () => api.connectPanoramax(url.value.trim() || null, token.value.trim() || null), (name) => `Panoramax connected as ${name}.`) },
        "Connect with token"),
    );
  }
  if (s) actions.append(h("button", { class: "link", "data-action": "cancel", onclick: act(root, () => api.cancelSignIn(c.service)) }, s.phase === "waiting" ? "Cancel" : "Dismiss"));
  if (c.service === "mtpw" && connected) el.append(mapillaryConsent(c, () => void renderIntegrations(root)));
  el.append(actions);
  if (c.uses_browser && c.redirect_uri && c.suggested_loopback && !s?.wants_code && !(connected && !c.needs_reauth)) el.append(redirectBox(c, s, root));
  return el;
}

function signInBox(c: IntegrationCard, s: SignInStatus, root: HTMLElement): HTMLElement {
  const box = h("div", { class: `sign-in sign-in-${s.phase}`, "data-phase": s.phase });
  if (s.phase === "waiting" && s.wants_code) {
    // KartaView's own OSM app does not come back to the app: OpenStreetMap shows a code.
    const code = h("input", { class: "wide", type: "text", id: `${c.service}-code`, placeholder: "Code from OpenStreetMap", autocomplete: "off", spellcheck: "false" });
    const connect = act(root, () => api.finishSignInWithCode(code.value), (name) => `${c.label} connected as ${name}.`);
    code.addEventListener("keydown", (ev) => { if ((ev as KeyboardEvent).key === "Enter") void connect(ev); });
    box.append(h("p", { class: "status", role: "status" }, "Approve in your browser. OpenStreetMap then shows a code: paste it here."));
    if (s.message) box.append(h("p", { class: "status bad sign-in-error", role: "alert" }, s.message));
    box.append(
      code,
      h("div", { class: "actions" }, h("button", { class: "primary", "data-action": "paste-code", onclick: connect }, "Connect")),
      h("p", { class: "muted small" }, s.browser_opened ? "No browser? Open this address:" : `${s.browser_error ?? "The browser did not open."} Open this address:`),
      h("input", { class: "url", type: "text", readonly: true, value: s.page_url ?? "" }),
    );
    return box;
  }
  if (s.phase === "waiting") {
    box.append(
      h("p", { class: "status", role: "status" }, c.uses_browser ? "Waiting for you to approve in your browser…" : "Waiting for you to claim the token in your browser…"),
    );
    if (s.listening && s.redirect_uri) box.append(h("p", { class: "muted small listening" }, `Listening on ${s.redirect_uri} for this sign-in only.`));
    box.append(
      h("p", { class: "muted small" }, s.browser_opened ? "No browser? Open this address:" : `${s.browser_error ?? "The browser did not open."} Open this address:`),
      h("input", { class: "url", type: "text", readonly: true, value: s.page_url ?? "" }),
    );
    return box;
  }
  box.append(h("p", { class: "status bad sign-in-error", role: "alert" }, s.message ?? "The sign-in failed."));
  if (s.offer_kartaview_app) {
    box.append(
      h("p", { class: "small" }, "KartaView accepts sign-ins through the OpenStreetMap app of its own uploader: approve on OpenStreetMap, then paste the code it shows."),
      h("div", { class: "actions" },
        h("button", { class: "primary", "data-action": "kartaview-app", onclick: act(root, () => api.startKartaviewAppSignIn()) }, "Sign in through KartaView's app")),
    );
  }
  if (s.offer_token) {
    const token = h("input", { class: "wide", type: "password", id: `${c.service}-token`, placeholder: "KartaView token" });
    const username = h("input", { class: "wide", type: "text", id: `${c.service}-username`, placeholder: "Your KartaView username", autocomplete: "username" });
    const pasted = (name: unknown) => (name ? `${c.label} connected as ${name}.` : `${c.label} connected with the pasted token.`);
    box.append(
      h("p", { class: "small" },
        "Have a KartaView token? KartaView's upload-scripts keep one as ", h("code", {}, "osc.token"), " in their ", h("code", {}, "credentials.json"),
        ". Paste it here (it stays on this computer)."),
      token,
      h("p", { class: "small muted" }, "KartaView cannot tell whose a token is: give your username too to see your stats on this card."),
      username,
      h("div", { class: "actions" },
        h("button", { class: "primary", "data-action": "paste-token", onclick: act(root, () => api.connectWithToken(c.service, token.value, username.value.trim() || null), pasted) }, "Connect with this token"),
        s.can_retry ? h("button", { class: "secondary", "data-action": "retry", onclick: act(root, () => api.retryKartaview(), (name) => `${c.label} connected as ${name}.`) }, "Ask KartaView again") : null,
      ),
    );
  }
  return box;
}

/** Where the sign-in comes back: the app link, or a loopback address when the link does not work. */
function redirectBox(c: IntegrationCard, s: SignInStatus | null, root: HTMLElement): HTMLElement {
  const loopback = c.redirect_uri?.startsWith("http://") ?? false;
  const input = h("input", { class: "url wide", type: "text", id: `redirect-${c.service}`, value: loopback ? c.redirect_uri ?? "" : c.suggested_loopback ?? "" });
  // Waiting on the app link: perhaps it never comes back, so offer the loopback address.
  const stuck = s?.phase === "waiting" && !loopback;
  const details = h("details", { class: "redirect small", open: stuck },
    h("summary", {}, `Sign-in comes back to ${c.redirect_uri}`),
    h("p", { class: "muted" }, stuck
      ? "Nothing came back to the app? Your browser may not hand app.mtp.desktop:// links over. Use a loopback address instead (register it with the service's app first), then integrate again:"
      : "If the app link does not work on this computer, use a loopback address (register it with the service's app first):"),
    input,
    h("div", { class: "actions" },
      h("button", { class: "secondary small-btn", "data-action": "use-loopback", onclick: act(root, () => api.setRedirectUri(c.service, input.value), (v) => `${c.label} sign-in now comes back to ${v}.`) }, "Use this address"),
      loopback ? h("button", { class: "link small-btn", "data-action": "use-deep-link", onclick: act(root, () => api.setRedirectUri(c.service, null), (v) => `${c.label} sign-in now comes back to ${v}.`) }, "Use the app link") : null,
    ),
  );
  return details;
}

/** Disconnecting stops this service's uploads until it is integrated again: ask first, and say so. */
async function confirmDisconnect(c: IntegrationCard): Promise<boolean> {
  const waiting = (await api.sequences().catch(() => []))
    .flatMap((s) => s.jobs)
    .filter((j) => j.destination === c.service && ["pending", "running", "paused"].includes(j.status)).length;
  const body = waiting > 0
    ? `${waiting === 1 ? "An upload" : `${waiting} uploads`} to ${c.label} ${waiting === 1 ? "is" : "are"} not finished: ${waiting === 1 ? "it waits" : "they wait"} until you integrate ${c.label} again. Nothing already sent is removed.`
    : `MTP Desktop forgets this ${c.label} sign-in. Nothing already sent is removed.`;
  return confirmDialog(`Disconnect ${c.label}?`, body, "Disconnect");
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
