// Code blocks of a rendered answer: highlighted (highlight.js), with the
// language named and a button copying the code exactly as written.

import { highlight } from "./highlight.js";
import { copyButton } from "./clipboard.js";

// Enhance every <pre><code> in `root` (a fragment or element); returns `root`.
export function enhanceCodeBlocks(root) {
  for (const code of root.querySelectorAll("pre > code")) {
    const pre = code.parentElement;
    const name = (code.className.match(/(?:^|\s)language-([\w+-]+)/) || [])[1] || "";
    const source = code.textContent;
    highlight(code, name);
    const head = document.createElement("div");
    head.className = "code-head";
    const label = document.createElement("span");
    label.className = "code-lang";
    label.textContent = name || "code";
    head.append(label, copyButton("Copy code", () => source, "copy-code"));
    const block = document.createElement("div");
    block.className = "code-block";
    pre.replaceWith(block);
    block.append(head, pre);
  }
  return root;
}
