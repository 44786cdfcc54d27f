// A small, safe Markdown renderer for topic guides: headings (#, ##, ###), lists
// (-, *, 1.), paragraphs, **bold**, *emphasis*, `code` and [links](https://...).
// It builds DOM nodes (never innerHTML), so a guide cannot inject markup or script.
"use strict";

const Markdown = (() => {
  const INLINE = /\*\*(.+?)\*\*|\*(.+?)\*|_(.+?)_|`(.+?)`|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/;

  function inline(text) {
    const out = [];
    let rest = text;
    while (rest) {
      const m = rest.match(INLINE);
      if (!m) { out.push(document.createTextNode(rest)); break; }
      if (m.index > 0) out.push(document.createTextNode(rest.slice(0, m.index)));
      let node;
      if (m[1] !== undefined) node = wrap("strong", m[1]);
      else if (m[2] !== undefined) node = wrap("em", m[2]);
      else if (m[3] !== undefined) node = wrap("em", m[3]);
      else if (m[4] !== undefined) { node = document.createElement("code"); node.textContent = m[4]; }
      else {
        node = wrap("a", m[5]);
        node.href = m[6];
        node.target = "_blank";
        node.rel = "noopener noreferrer";
      }
      out.push(node);
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }

  function wrap(tag, text) {
    const node = document.createElement(tag);
    node.append(...inline(text));
    return node;
  }

  // Markdown text -> a DocumentFragment.
  function render(text) {
    const frag = document.createDocumentFragment();
    let para = null;
    let list = null;
    const close = () => { para = null; list = null; };
    for (const raw of String(text || "").split(/\r?\n/)) {
      const line = raw.trimEnd();
      const heading = line.match(/^(#{1,3})\s+(.*)$/);
      const bullet = line.match(/^\s*[-*]\s+(.*)$/);
      const numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
      if (!line.trim()) { close(); continue; }
      if (heading) {
        close();
        frag.append(wrap(`h${heading[1].length}`, heading[2]));
      } else if (bullet || numbered) {
        const tag = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          para = null;
          list = document.createElement(tag);
          frag.append(list);
        }
        list.append(wrap("li", (bullet || numbered)[1]));
      } else if (list && /^\s{2,}/.test(raw)) {
        list.lastElementChild.append(" ", ...inline(line.trim()));  // a list item goes on
      } else {
        list = null;
        if (!para) { para = document.createElement("p"); frag.append(para); }
        else para.append(" ");
        para.append(...inline(line.trim()));
      }
    }
    return frag;
  }

  return { render };
})();
