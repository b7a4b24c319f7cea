import { api, type IntegrationCard } from "../ipc";
import { clear, h } from "../dom";

export async function renderIntegrations(root: HTMLElement): Promise<void> {
  const cards = await api.integrations();
  clear(root);
  root.append(
    h("h1", {}, "Integrations"),
    h(
      "p",
      { class: "lead" },
      "Connect the services you want to publish to. Integrate opens the service's sign-in page in your browser; when you approve, it sends you back here.",
    ),
    h("div", { class: "cards" }, ...cards.map(card)),
  );
}

function card(c: IntegrationCard): HTMLElement {
  let status: HTMLElement;
  if (c.connected_as !== null && c.needs_reauth) {
    status = h("p", { class: "status warn" }, `Sign-in expired for ${c.connected_as || "this account"}: integrate again. Your queued uploads are kept.`);
  } else if (c.connected_as !== null) {
    status = h("p", { class: "status ok" }, `Connected as ${c.connected_as || "(unnamed account)"}`);
  } else if (c.missing_settings.length > 0) {
    status = h(
      "p",
      { class: "status muted" },
      `Cannot integrate yet: set ${c.missing_settings.join(", ")} in your .env file (see .env.example), then restart.`,
    );
  } else {
    status = h("p", { class: "status muted" }, "Not connected");
  }
  return h(
    "article",
    { class: `card service-${c.service}`, "data-service": c.service },
    h("h2", {}, c.label),
    h("p", { class: "blurb" }, c.blurb),
    status,
  );
}
