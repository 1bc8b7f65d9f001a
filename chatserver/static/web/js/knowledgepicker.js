// The files a chat's answers search, whether attached or not (the chat's
// `knowledge`, docs/knowledge.md), picked from the user's files
// (GET /api/files) in the chat's settings dialog (elements
// "settings-knowledge...") and in the new-preset form ("preset-knowledge...").

import { h, clear, $ } from "./dom.js";

export function fillKnowledge(chat, files, form = "settings") {
  const box = $(`${form}-knowledge`);
  clear(box);
  const chosen = new Set(chat.knowledge || []);
  // an image has no passages to search; one already chosen stays listed so it can be removed
  const items = files.items.filter((f) => chosen.has(f.id) || !String(f.content_type).startsWith("image/"));
  for (const file of items) {
    const input = h("input", { type: "checkbox", value: file.id, class: "knowledge-choice" });
    input.checked = chosen.has(file.id);
    const note = file.status === "failed" ? " (its text could not be read)" : "";
    box.append(h("label", { class: "knowledge-option" }, input, ` ${file.name}${note}`));
  }
  $(`${form}-knowledge-none`).hidden = items.length > 0;
}

export function readKnowledge(form = "settings") {
  return [...$(`${form}-knowledge`).querySelectorAll("input.knowledge-choice:checked")].map((input) => input.value);
}
