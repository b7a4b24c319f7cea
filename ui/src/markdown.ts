// A small Markdown reader for the README sections the app shows (the setup guide): headings,
// paragraphs, nested lists, tables, fenced code, `code`, **bold**, *italic*, [links](…) and
// <https://…>. It builds DOM nodes (no innerHTML), so nothing in the text runs as markup.

import { h } from "./dom";

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[`*_]/g, "")
    .replace(/[^\p{L}\p{N} -]/gu, "")
    .trim()
    .replace(/ /g, "-");
}

export interface Section {
  level: number;
  title: string;
  slug: string;
  /** The section's lines, its heading and subsections included. */
  lines: string[];
}

/** Every section of `md` (outside code fences), each with its subsections. */
export function sections(md: string): Section[] {
  const lines = md.split("\n");
  const found: { level: number; title: string; start: number }[] = [];
  let fenced = false;
  lines.forEach((line, i) => {
    if (line.startsWith("```")) fenced = !fenced;
    const m = !fenced && /^(#{1,6}) (.+)$/.exec(line);
    if (m) found.push({ level: m[1].length, title: m[2].trim(), start: i });
  });
  return found.map((s, k) => {
    const next = found.slice(k + 1).find((o) => o.level <= s.level);
    return { level: s.level, title: s.title, slug: slug(s.title), lines: lines.slice(s.start, next ? next.start : lines.length) };
  });
}

/** Inline Markdown as nodes; `onLink` decides what a click on a link does. */
export function inline(text: string, onLink: (href: string) => void): Node[] {
  const out: Node[] = [];
  const re = /`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s][^*]*?)\*|\[([^\]]+)\]\(([^)\s]+)\)|<(https?:\/\/[^>\s]+)>/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) out.push(h("code", {}, m[1]));
    else if (m[2] !== undefined) out.push(h("strong", {}, ...inline(m[2], onLink)));
    else if (m[3] !== undefined) out.push(h("em", {}, ...inline(m[3], onLink)));
    else {
      const href = m[5] ?? m[6];
      const a = h("a", { href }, ...(m[4] !== undefined ? inline(m[4], onLink) : [m[6]]));
      a.addEventListener("click", (e) => {
        e.preventDefault();
        onLink(href);
      });
      out.push(a);
    }
    last = re.lastIndex;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

const indentOf = (line: string) => line.length - line.trimStart().length;
const bullet = /^(\s*)[-*] (.*)$/;

/** Block Markdown as a fragment. */
export function render(lines: string[], onLink: (href: string) => void): DocumentFragment {
  const root = document.createDocumentFragment();
  let i = 0;
  const para: string[] = [];
  const flush = () => {
    if (para.length) root.append(h("p", {}, ...inline(para.join(" "), onLink)));
    para.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i];
    const heading = /^(#{1,6}) (.+)$/.exec(line);
    if (line.startsWith("```")) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
      root.append(h("pre", {}, h("code", {}, code.join("\n"))));
      i++;
    } else if (heading) {
      flush();
      const level = Math.min(6, heading[1].length + 1) as 2 | 3 | 4 | 5 | 6;
      root.append(h(`h${level}`, { id: `guide-${slug(heading[2])}` }, ...inline(heading[2], onLink)));
      i++;
    } else if (line.startsWith("|")) {
      flush();
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].startsWith("|"); i++) {
        const cells = lines[i].trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
        if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
      }
      const [head, ...body] = rows;
      root.append(
        h(
          "table",
          { class: "md-table" },
          h("thead", {}, h("tr", {}, ...(head ?? []).map((c) => h("th", {}, ...inline(c, onLink))))),
          h("tbody", {}, ...body.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, ...inline(c, onLink)))))),
        ),
      );
    } else if (bullet.test(line)) {
      flush();
      const start = i;
      for (i++; i < lines.length && lines[i].trim() !== "" && (bullet.test(lines[i]) || indentOf(lines[i]) > 0); i++);
      root.append(list(lines.slice(start, i), onLink));
    } else if (line.trim() === "") {
      flush();
      i++;
    } else {
      para.push(line.trim());
      i++;
    }
  }
  flush();
  return root;
}

/** A (nested) bullet list: deeper indentation opens a sub-list, other lines continue an item. */
function list(lines: string[], onLink: (href: string) => void): HTMLUListElement {
  const ul = h("ul", {});
  const base = indentOf(lines[0]);
  let item: string[] = [];
  let sub: string[] = [];
  const close = () => {
    if (!item.length) return;
    const li = h("li", {}, ...inline(item.join(" "), onLink));
    if (sub.length) li.append(list(sub, onLink));
    ul.append(li);
    item = [];
    sub = [];
  };
  for (const line of lines) {
    const m = bullet.exec(line);
    if (m && m[1].length === base) {
      close();
      item.push(m[2].trim());
    } else if (m || sub.length) {
      sub.push(line);
    } else {
      item.push(line.trim());
    }
  }
  close();
  return ul;
}
