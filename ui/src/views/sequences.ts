import { type AppEvent } from "../ipc";
import { clear, h } from "../dom";

export async function renderSequences(root: HTMLElement): Promise<void> {
  clear(root);
  root.append(
    h("h1", {}, "Sequences"),
    h(
      "div",
      { class: "empty", id: "sequences-empty" },
      h("p", { class: "empty-title" }, "No sequences yet"),
      h("p", {}, "Import a folder of geotagged photos to build your first sequence. Its uploads will show here, one row per destination."),
      h("button", { class: "primary", onclick: () => document.getElementById("nav-import")?.click() }, "Import a folder"),
    ),
  );
}

export function onSequencesEvent(_e: AppEvent): void {}
