// Model output -> safe DOM. The model's text is untrusted: it is rendered as Markdown by marked, and the HTML
// that comes out goes through DOMPurify before it reaches the page (the Content-Security-Policy would stop an
// inline script anyway; the sanitizer makes sure nothing executable or styled is even inserted).
//
// Annotations are applied first: a file_citation marker (【3:0†notes.md】) becomes a footnote reference whose
// note quotes the cited text; a file_path (`sandbox:/mnt/data/x.csv`) becomes a link the page resolves to the
// File the code wrote, downloaded with the key.

import { marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";

const FILE_HREF = "#file-"; // placeholder href / src for a File; the page wires it up after sanitising

DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  // Images load as soon as a src is set, even before insertion: keep the src aside (the page decides what
  // an image may show: only Files of this project, fetched with the key).
  if (node.nodeName === "IMG" && data.attrName === "src") {
    node.setAttribute("data-src", data.attrValue);
    data.keepAttr = false;
  }
});
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName === "A" && /^https?:/i.test(node.getAttribute("href") || "")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = {
  USE_PROFILE: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "dialog", "template"],
  FORBID_ATTR: ["style", "class", "tabindex", "autofocus"],
  SANITIZE_NAMED_PROPS: true, // ids from the model are prefixed: no clobbering of the page's own names
  RETURN_DOM_FRAGMENT: true,
};

// "【3:0†notes.md】" -> "notes.md"
export function citedName(markerText) {
  const m = /†([^】]*)】?$/.exec(markerText || "");
  return m ? m[1] : "";
}

/**
 * Applies a text part's annotations. Returns the Markdown source to render, the footnotes
 * [{n, fileId, quote, name}] in order of appearance, and the File ids that links may point to.
 */
export function annotate(text, key) {
  const value = text?.value || "";
  const notes = [...(text?.annotations || [])]
    .filter((a) => Number.isInteger(a.start_index) && Number.isInteger(a.end_index) && a.end_index >= a.start_index)
    .sort((a, b) => a.start_index - b.start_index);
  const footnotes = [];
  const files = new Set();
  let out = "";
  let at = 0;
  for (const a of notes) {
    if (a.start_index < at) continue; // overlapping annotations: keep the first
    out += value.slice(at, a.start_index);
    if (a.type === "file_citation") {
      const n = footnotes.length + 1;
      footnotes.push({ n, fileId: a.file_citation?.file_id, quote: a.file_citation?.quote || "", name: citedName(a.text) });
      out += `<sup><a href="#note-${key}-${n}" aria-label="Source ${n}">[${n}]</a></sup>`;
    } else if (a.type === "file_path" && a.file_path?.file_id) {
      files.add(a.file_path.file_id);
      out += FILE_HREF + encodeURIComponent(a.file_path.file_id);
    } else {
      out += value.slice(a.start_index, a.end_index);
    }
    at = a.end_index;
  }
  out += value.slice(at);
  return { source: out, footnotes, files };
}

/**
 * Renders a text part into a sanitised DocumentFragment. `key` must be an id-safe string (a message id).
 * Links to Files named by the annotations get `data-file-id`; images get `data-src` (see above).
 */
export function renderText(text, key) {
  const safeKey = String(key).replace(/[^A-Za-z0-9_-]/g, "");
  const { source, footnotes, files } = annotate(text, safeKey);
  const html = marked.parse(source, { gfm: true, async: false });
  const fragment = DOMPurify.sanitize(html, PURIFY);
  for (const a of fragment.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (href.startsWith(FILE_HREF)) {
      const id = decodeURIComponent(href.slice(FILE_HREF.length));
      if (files.has(id)) a.setAttribute("data-file-id", id);
      else a.removeAttribute("href"); // not a file this message produced
    }
  }
  for (const a of fragment.querySelectorAll(`a[href^="#note-${safeKey}-"]`)) {
    a.id = `ref-${safeKey}-${a.getAttribute("href").split("-").pop()}`; // the footnote's way back
  }
  for (const img of fragment.querySelectorAll("img")) {
    const src = img.getAttribute("data-src") || "";
    const id = src.startsWith(FILE_HREF) ? decodeURIComponent(src.slice(FILE_HREF.length)) : null;
    img.removeAttribute("data-src");
    if (id && files.has(id)) img.setAttribute("data-file-id", id);
    else img.replaceWith(document.createTextNode(`[image: ${img.getAttribute("alt") || "not shown"}]`));
  }
  return { fragment, footnotes };
}
