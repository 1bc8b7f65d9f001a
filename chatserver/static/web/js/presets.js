// Presets: named sets of chat settings (model, system prompt, temperature,
// max tokens, tools, knowledge files); a new chat can start from one.

import { api } from "./state.js";
import { reportError } from "./notices.js";
import { startChat, closeSidebar } from "./chatlist.js";
import { h, clear, $ } from "./dom.js";
import { fillTools, readTools } from "./toolpicker.js";
import { fillKnowledge, readKnowledge } from "./knowledgepicker.js";

function summary(preset) {
  const parts = [preset.model || "default model"];
  if (preset.temperature !== null) parts.push(`temperature ${preset.temperature}`);
  if (preset.max_tokens !== null) parts.push(`${preset.max_tokens} tokens at most`);
  if (preset.system_prompt) parts.push("own system prompt");
  if (preset.tools.length) parts.push(`tools: ${preset.tools.join(", ")}`);
  if (preset.knowledge.length) parts.push(`${preset.knowledge.length} knowledge file${preset.knowledge.length > 1 ? "s" : ""}`);
  return parts.join(", ");
}

function presetRow(preset) {
  const start = h("button", { type: "button", class: "primary" }, "Start chat");
  start.addEventListener("click", async () => {
    try {
      await startChat(null, { preset_id: preset.id });
      $("presets-dialog").close();
      closeSidebar();
      $("composer-input").focus();
    } catch (err) {
      reportError(err, "Could not start a chat from the preset");
    }
  });
  const remove = h("button", { type: "button", class: "secondary danger" }, "Delete");
  remove.addEventListener("click", async () => {
    try {
      await api.deletePreset(preset.id);
      await renderPresets();
    } catch (err) {
      reportError(err, "Could not delete the preset");
    }
  });
  return h("li", { "data-preset-id": preset.id },
    h("div", {}, h("strong", { text: preset.name }), h("p", { class: "muted", text: summary(preset) })),
    h("div", { class: "preset-actions", role: "group", "aria-label": preset.name }, start, remove));
}

async function renderPresets() {
  const { items } = await api.listPresets();
  const list = clear($("preset-list"));
  for (const preset of items) list.append(presetRow(preset));
  $("preset-empty").hidden = items.length > 0;
}

async function openPresets() {
  $("preset-error").hidden = true;
  try {
    const [models, tools, files] = await Promise.all([api.models(), api.tools(), api.listFiles(), renderPresets()]);
    const select = clear($("preset-model"));
    select.append(h("option", { value: "" }, `Server default (${models.default})`));
    for (const m of models.items) select.append(h("option", { value: m.id, text: m.id }));
    fillTools({}, tools, "preset");
    fillKnowledge({}, files, "preset");
  } catch (err) {
    reportError(err, "Could not load your presets");
    return;
  }
  $("presets-dialog").showModal();
}

async function save(ev) {
  ev.preventDefault();
  const number = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  const prompt = $("preset-prompt").value;
  try {
    await api.createPreset({
      name: $("preset-name").value.trim(), model: $("preset-model").value || null,
      system_prompt: prompt.trim() ? prompt : null,
      temperature: number("preset-temperature"), max_tokens: number("preset-max-tokens"),
      tools: readTools("preset"), knowledge: readKnowledge("preset"),
    });
    $("preset-form").reset();
    $("preset-error").hidden = true;
    await renderPresets();
  } catch (err) {
    $("preset-error").textContent = err.message;
    $("preset-error").hidden = false;
  }
}

export function wirePresets() {
  $("open-presets").addEventListener("click", openPresets);
  $("preset-form").addEventListener("submit", save);
  $("presets-close").addEventListener("click", () => $("presets-dialog").close());
}
