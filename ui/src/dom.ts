// Tiny DOM helpers: build elements without innerHTML, so no user text is ever parsed as HTML.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === "class") {
      el.className = String(v);
    } else if (k === "style") {
      // Through the CSSOM: the CSP allows no inline style attributes.
      el.style.cssText = String(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function toast(message: string, kind: "info" | "error" | "ok" = "info"): void {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.append(t);
  // A few at a time: the newest matter.
  while (box.children.length > 3) box.firstElementChild?.remove();
  setTimeout(() => t.remove(), kind === "error" ? 10000 : 4000);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A modal question with two answers; resolves true when the first (the action) is chosen. */
export function confirmDialog(title: string, body: string, action: string, cancel = "Cancel"): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog", id: "confirm-dialog", "aria-labelledby": "confirm-title" });
    const finish = (answer: boolean) => {
      dialog.close();
      resolve(answer);
    };
    dialog.append(
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, body),
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { class: "primary danger-fill", id: "confirm-yes", onclick: () => finish(true) }, action),
        h("button", { class: "secondary", id: "confirm-no", onclick: () => finish(false) }, cancel),
      ),
    );
    dialog.addEventListener("cancel", () => resolve(false));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    (dialog.querySelector("#confirm-no") as HTMLButtonElement | null)?.focus();
  });
}
