// The tools a chat's answers may call, picked from GET /api/tools
// (docs/tools.md) in the chat's settings dialog (elements "settings-tools...")
// and in the new-preset form ("preset-tools...").

import { h, clear, $ } from "./dom.js";

export function fillTools(chat, tools, form = "settings") {
  const box = $(`${form}-tools`);
  clear(box);
  const chosen = new Set(chat.tools || []);
  const items = tools.items.slice();
  // a chosen tool the server cannot list now (its MCP server is down) stays chosen
  for (const id of chosen) {
    if (!items.some((t) => t.id === id)) items.push({ id, name: id, description: "", available: false });
  }
  for (const tool of items) {
    const input = h("input", { type: "checkbox", value: tool.id, class: "tool-choice" });
    input.checked = chosen.has(tool.id);
    const note = tool.available ? "" : " (unavailable now)";
    box.append(h("label", { class: "tool-option", title: tool.description || "" },
      input, ` ${tool.id}${note}`));
  }
  $(`${form}-tools-none`).hidden = items.length > 0;
}

export function readTools(form = "settings") {
  return [...$(`${form}-tools`).querySelectorAll("input.tool-choice:checked")].map((input) => input.value);
}
