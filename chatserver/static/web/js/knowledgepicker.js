// The files a chat's answers search, whether attached or not (the chat's
// `knowledge`, docs/knowledge.md), picked in the chat's settings dialog from
// the user's files (GET /api/files).

import { h, clear, $ } from "./dom.js";

export function fillKnowledge(chat, files) {
  const box = $("settings-knowledge");
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
  $("settings-knowledge-none").hidden = items.length > 0;
}

export function readKnowledge() {
  return [...$("settings-knowledge").querySelectorAll("input.knowledge-choice:checked")].map((input) => input.value);
}
