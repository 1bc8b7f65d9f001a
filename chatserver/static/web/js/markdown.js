// A safe Markdown subset: paragraphs, headings, lists (nested by indent),
// fenced and indented code blocks, block quotes, rules, inline code,
// emphasis, strong, links (http, https, mailto only) and bare URLs.
// It builds DOM nodes; text only ever enters through text nodes, so nothing
// in the source can become markup.

import { safeUrl } from "./dom.js";

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const BULLET = /^( {0,3})([-*+])\s+(.*)$/;
const ORDERED = /^( {0,3})(\d{1,9})[.)]\s+(.*)$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const MAX_DEPTH = 8;

export function renderMarkdown(text, depth = 0) {
  const frag = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  const blank = (line) => !line.trim();

  while (i < lines.length) {
    const line = lines[i];
    if (blank(line)) { i++; continue; }

    let m = line.match(FENCE);
    if (m) {
      const fence = m[1];
      const body = [];
      i++;
      const closes = (l) => { const t = l.trim(); return t.length >= fence.length && t === fence[0].repeat(t.length); };
      while (i < lines.length && !closes(lines[i])) {
        body.push(lines[i]);
        i++;
      }
      i++; // the closing fence (or past the end while streaming)
      const code = document.createElement("code");
      if (/^[\w+-]{1,30}$/.test(m[2])) code.className = `language-${m[2]}`;
      code.textContent = body.join("\n");
      const pre = document.createElement("pre");
      pre.append(code);
      frag.append(pre);
      continue;
    }

    if (/^( {4}|\t)/.test(line) && depth === 0) {
      const body = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || (blank(lines[i]) && i + 1 < lines.length && /^( {4}|\t)/.test(lines[i + 1])))) {
        body.push(lines[i].replace(/^( {4}|\t)/, ""));
        i++;
      }
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = body.join("\n");
      pre.append(code);
      frag.append(pre);
      continue;
    }

    m = line.match(HEADING);
    if (m) {
      const el = document.createElement(`h${Math.min(6, m[1].length + 2)}`);
      el.append(renderInline(m[2]));
      frag.append(el);
      i++;
      continue;
    }

    if (RULE.test(line)) {
      frag.append(document.createElement("hr"));
      i++;
      continue;
    }

    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && !blank(lines[i]) && QUOTE.test(lines[i])) {
        body.push(lines[i].match(QUOTE)[1]);
        i++;
      }
      const quote = document.createElement("blockquote");
      quote.append(depth < MAX_DEPTH ? renderMarkdown(body.join("\n"), depth + 1) : document.createTextNode(body.join("\n")));
      frag.append(quote);
      continue;
    }

    if (BULLET.test(line) || ORDERED.test(line)) {
      const ordered = !BULLET.test(line);
      const pattern = ordered ? ORDERED : BULLET;
      const list = document.createElement(ordered ? "ol" : "ul");
      const first = line.match(pattern);
      if (ordered && first[2] !== "1") list.setAttribute("start", String(parseInt(first[2], 10)));
      while (i < lines.length) {
        const item = lines[i].match(pattern);
        if (!item) break;
        const indent = item[1].length;
        const body = [item[3]];
        i++;
        while (i < lines.length) {
          const next = lines[i];
          if (blank(next)) {
            // a blank line ends the list unless an indented continuation follows
            if (i + 1 < lines.length && /^\s{2,}\S/.test(lines[i + 1])) { body.push(""); i++; continue; }
            break;
          }
          const lead = next.match(/^\s*/)[0].length;
          if (lead > indent + 1) { body.push(next.slice(Math.min(lead, indent + 2))); i++; continue; }
          if (pattern.test(next) || BULLET.test(next) || ORDERED.test(next) || FENCE.test(next) || HEADING.test(next) || QUOTE.test(next)) break;
          body.push(next); // a lazy continuation line
          i++;
        }
        const li = document.createElement("li");
        const nested = body.length > 1 && depth < MAX_DEPTH;
        if (nested) {
          const inner = renderMarkdown(body.join("\n"), depth + 1);
          // a single paragraph stays bare text in the item
          if (inner.childNodes.length >= 1 && inner.firstChild.nodeName === "P") {
            const p = inner.firstChild;
            p.remove();
            li.append(...p.childNodes);
          }
          li.append(inner);
        } else {
          li.append(renderInline(body.join("\n")));
        }
        list.append(li);
        while (i < lines.length && blank(lines[i]) && i + 1 < lines.length && pattern.test(lines[i + 1])) i++;
      }
      frag.append(list);
      continue;
    }

    // a paragraph: up to a blank line or the start of another block
    const body = [line];
    i++;
    while (i < lines.length && !blank(lines[i]) && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
           !QUOTE.test(lines[i]) && !BULLET.test(lines[i]) && !ORDERED.test(lines[i]) && !RULE.test(lines[i])) {
      body.push(lines[i]);
      i++;
    }
    const p = document.createElement("p");
    p.append(renderInline(body.join("\n")));
    frag.append(p);
  }
  return frag;
}

const PUNCT = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;
const WORD = /[\p{L}\p{N}]/u;
const BARE_URL = /^(?:https?:\/\/|mailto:)[^\s<>"]+/i;

export function renderInline(text, depth = 0) {
  const frag = document.createDocumentFragment();
  let buffer = "";
  const flush = () => {
    if (!buffer) return;
    const parts = buffer.split("\n");
    parts.forEach((part, n) => {
      if (n) frag.append(document.createElement("br"));
      if (part) frag.append(document.createTextNode(part));
    });
    buffer = "";
  };
  const emit = (node) => { flush(); frag.append(node); };
  const nested = (inner) => (depth < MAX_DEPTH ? renderInline(inner, depth + 1) : document.createTextNode(inner));
  let pairs = null; // found on the first "[", see matchBrackets
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const prev = i > 0 ? text[i - 1] : "";

    if (c === "\\" && i + 1 < text.length && PUNCT.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }

    if (c === "`") {
      let run = 1;
      while (text[i + run] === "`") run++;
      const ticks = "`".repeat(run);
      let close = text.indexOf(ticks, i + run);
      while (close !== -1 && text[close + run] === "`") close = text.indexOf(ticks, close + run + 1);
      if (close !== -1) {
        const code = document.createElement("code");
        let inner = text.slice(i + run, close).replace(/\n/g, " ");
        if (/^ .*[^ ].* $/.test(inner)) inner = inner.slice(1, -1);
        code.textContent = inner;
        emit(code);
        i = close + run;
        continue;
      }
      buffer += ticks;
      i += run;
      continue;
    }

    if (c === "[") {
      pairs = pairs || matchBrackets(text);
      const link = parseLink(text, i, pairs);
      if (link) {
        const href = safeUrl(link.url);
        if (href) {
          const a = document.createElement("a");
          a.setAttribute("href", href);
          a.setAttribute("rel", "noopener noreferrer nofollow");
          a.setAttribute("target", "_blank");
          a.append(nested(link.label));
          emit(a);
        } else {
          flush();
          frag.append(nested(link.label)); // an unsafe link keeps only its text
        }
        i = link.end;
        continue;
      }
    }

    if (c === "<") {
      const m = text.slice(i).match(/^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i);
      if (m && safeUrl(m[1])) {
        emit(autoLink(m[1]));
        i += m[0].length;
        continue;
      }
    }

    if ((c === "h" || c === "H" || c === "m" || c === "M") && !WORD.test(prev)) {
      const m = text.slice(i).match(BARE_URL);
      if (m) {
        let url = m[0];
        while (/[.,;:!?'")\]]$/.test(url)) {
          if (url.endsWith(")") && (url.match(/\(/g) || []).length >= (url.match(/\)/g) || []).length) break;
          url = url.slice(0, -1);
        }
        if (safeUrl(url)) {
          emit(autoLink(url));
          i += url.length;
          continue;
        }
      }
    }

    if (c === "*" || c === "_" || c === "~") {
      let run = 1;
      while (text[i + run] === c) run++;
      const size = c === "~" ? (run >= 2 ? 2 : 0) : Math.min(run, 3);
      const after = text[i + size] || "";
      const opens = size > 0 && after && !/\s/.test(after) && !(c === "_" && WORD.test(prev));
      if (opens) {
        const close = findCloser(text, i + size, c, size);
        if (close !== -1) {
          const inner = text.slice(i + size, close);
          let node;
          if (c === "~") node = wrap("del", nested(inner));
          else if (size === 3) node = wrap("strong", wrap("em", nested(inner)));
          else node = wrap(size === 2 ? "strong" : "em", nested(inner));
          emit(node);
          i = close + size;
          continue;
        }
      }
      buffer += c.repeat(run);
      i += run;
      continue;
    }

    buffer += c;
    i++;
  }
  flush();
  return frag;
}

function wrap(tag, child) {
  const el = document.createElement(tag);
  el.append(child);
  return el;
}

function autoLink(url) {
  const a = document.createElement("a");
  a.setAttribute("href", safeUrl(url));
  a.setAttribute("rel", "noopener noreferrer nofollow");
  a.setAttribute("target", "_blank");
  a.textContent = url;
  return a;
}

function findCloser(text, from, c, size) {
  const delim = c.repeat(size);
  let j = from;
  while (j < text.length) {
    if (text[j] === "\\") { j += 2; continue; }
    if (text[j] === "`") { // skip code spans
      const end = text.indexOf("`", j + 1);
      if (end === -1) return -1;
      j = end + 1;
      continue;
    }
    if (text.startsWith(delim, j) && text[j + size] !== c && !/\s/.test(text[j - 1] || " ") &&
        !(c === "_" && WORD.test(text[j + size] || ""))) {
      return j;
    }
    j++;
  }
  return -1;
}

// Where each "[" closes ("]", skipping backslash escapes) and each "(" (")",
// on the same line), or -1; UNSEEN where no "[" was seen (an escaped one).
// Found for the whole text in one pass each: a search from every "[" to the
// end was quadratic, 100,000 unclosed "[" froze the page for seconds.
const UNSEEN = -2;

function matchBrackets(text) {
  const square = new Int32Array(text.length).fill(UNSEEN);
  const round = new Int32Array(text.length).fill(-1);
  const open = [];
  for (let j = 0; j < text.length; j++) {
    if (text[j] === "\\") { j++; continue; }
    if (text[j] === "[") { square[j] = -1; open.push(j); }
    else if (text[j] === "]" && open.length) square[open.pop()] = j;
  }
  open.length = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] === "(") open.push(j);
    else if (text[j] === ")" && open.length) round[open.pop()] = j;
    else if (text[j] === "\n") open.length = 0;
  }
  return { square, round };
}

function closingBracket(text, start) {
  let depth = 0;
  for (let j = start; j < text.length; j++) {
    if (text[j] === "\\") { j++; continue; }
    if (text[j] === "[") depth++;
    else if (text[j] === "]" && --depth === 0) return j;
  }
  return -1;
}

function parseLink(text, start, pairs) {
  const found = pairs.square[start];
  const j = found === UNSEEN ? closingBracket(text, start) : found;
  if (j === -1 || text[j + 1] !== "(") return null;
  const label = text.slice(start + 1, j);
  const k = pairs.round[j + 1];
  if (k === -1) return null;
  let url = text.slice(j + 2, k).trim();
  const titled = url.match(/^(\S+)\s+["'(].*["')]$/);
  if (titled) url = titled[1];
  if (url.startsWith("<") && url.endsWith(">")) url = url.slice(1, -1);
  return { label, url, end: k + 1 };
}
