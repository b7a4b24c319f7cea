import { clear, h } from "../dom";

export async function renderImport(root: HTMLElement): Promise<void> {
  clear(root);
  root.append(
    h("h1", {}, "Import"),
    h(
      "div",
      { class: "dropzone", id: "dropzone" },
      h("p", { class: "empty-title" }, "Drop a folder of photos here"),
      h("p", {}, "Geotagged JPEGs, flat or 360°. Sub-folders are read too; your files are never modified."),
    ),
  );
}
