// The open chat's model settings: model (from /api/models), system prompt,
// temperature and max tokens, tools and knowledge files, in a dialog of their own.

import { state, api } from "./state.js";
import { ApiError } from "./api.js";
import { reportError } from "./notices.js";
import { h, clear, $ } from "./dom.js";
import { fillTools, readTools } from "./toolpicker.js";
import { fillKnowledge, readKnowledge } from "./knowledgepicker.js";

function fill(chat, models) {
  const select = $("settings-model");
  clear(select);
  select.append(h("option", { value: "" }, `Server default (${models.default})`));
  const ids = models.items.map((m) => m.id);
  if (chat.model && !ids.includes(chat.model)) ids.push(chat.model);
  for (const id of ids) select.append(h("option", { value: id, text: id }));
  select.value = chat.model || "";
  $("settings-prompt").value = chat.system_prompt ?? "";
  $("settings-temperature").value = chat.temperature ?? "";
  $("settings-max-tokens").value = chat.max_tokens ?? "";
  $("settings-error").hidden = true;
}

function read() {
  const number = (id) => {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  };
  const prompt = $("settings-prompt").value;
  return {
    model: $("settings-model").value || null,
    system_prompt: prompt.trim() ? prompt : null,
    temperature: number("settings-temperature"),
    max_tokens: number("settings-max-tokens"),
    tools: readTools(),
    knowledge: readKnowledge(),
  };
}

async function openSettings() {
  const conv = state.current;
  if (!conv || !conv.chat) return;
  let models, tools, files;
  try {
    [models, tools, files] = await Promise.all([api.models(), api.tools(), api.listFiles()]);
  } catch (err) {
    reportError(err, "Could not load the lists of models, tools and files");
    return;
  }
  fill(conv.chat, models);
  fillTools(conv.chat, tools);
  fillKnowledge(conv.chat, files);
  $("settings-dialog").showModal();
}

async function save(ev) {
  ev.preventDefault();
  const conv = state.current;
  if (!conv || !conv.chat) return;
  const error = $("settings-error");
  try {
    const chat = await api.updateChat(conv.chat.id, read());
    conv.chat = chat;
    state.chats.set(chat.id, { ...state.chats.get(chat.id), ...chat });
    $("settings-dialog").close();
  } catch (err) {
    error.textContent = err instanceof ApiError ? err.message : `Could not save: ${err.message}`;
    error.hidden = false;
  }
}

export function showSettingsButton(chat) {
  $("chat-settings").hidden = !chat;
}

export function wireChatSettings() {
  $("chat-settings").addEventListener("click", openSettings);
  $("settings-form").addEventListener("submit", save);
  $("settings-cancel").addEventListener("click", () => $("settings-dialog").close());
}
