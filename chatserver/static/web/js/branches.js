// The message tree as the page shows it: the shown branch, reloaded when it
// changes; what the "< 2 / 3 >" switchers, Edit (a question in place) and
// Regenerate buttons that messages.js draws do when clicked.

import { state, api, RUNNING } from "./state.js";
import { reportError } from "./notices.js";
import { touchChat } from "./chatlist.js";
import { addMessage, rerenderAll, updateRunning, watch, scrollToBottom } from "./messages.js";
import { h, clear, $ } from "./dom.js";

// Draw the chat's shown branch again (after an edit, a switch, a regeneration).
export async function reloadBranch(conv = state.current) {
  if (!conv || !conv.chatId) return;
  const page = await api.listMessages(conv.chatId);
  if (state.current !== conv) return;
  for (const id of [...(conv.socket ? conv.socket.watching : [])]) conv.socket.unwatch(id);
  conv.messages.clear();
  clear($("messages"));
  conv.cursor = page.next_cursor;
  for (const message of page.items) {
    const model = addMessage(message);
    if (message.role === "assistant" && RUNNING.has(message.status)) watch(conv, model);
  }
  $("load-older").hidden = !conv.cursor;
  $("empty-chat").hidden = page.items.length > 0;
  rerenderAll();
  updateRunning();
  scrollToBottom();
}

async function showSibling(messageId) {
  const conv = state.current;
  try {
    await api.showBranch(conv.chatId, messageId);
    await reloadBranch(conv);
  } catch (err) {
    reportError(err, "Could not switch to that version");
  }
}

async function regenerate(id) {
  const conv = state.current;
  try {
    await api.regenerate(id);
    if (state.current !== conv) return;
    touchChat(conv.chatId);
    // the new answer replaces the old one on the shown branch
    await reloadBranch(conv);
  } catch (err) {
    reportError(err, "Could not regenerate the answer");
  }
}

// The question's text becomes editable where it stands; Save sends the edit.
function startEdit(model) {
  const content = model.el.querySelector(".content");
  if (content.querySelector("textarea")) return;
  const input = h("textarea", { class: "edit-input", rows: "3", "aria-label": "Edit your message" });
  input.value = model.data.content;
  const save = h("button", { type: "button", class: "primary edit-save" }, "Save");
  const cancel = h("button", { type: "button", class: "secondary edit-cancel" }, "Cancel");
  clear(content);
  content.append(input, h("div", { class: "edit-actions" }, save, cancel));
  input.focus();
  cancel.addEventListener("click", () => { model.metaKey = null; clear(model.el); rerenderAll(); });
  save.addEventListener("click", async () => {
    const text = input.value;
    if (!text.trim()) return;
    save.disabled = true;
    const conv = state.current;
    try {
      await api.edit(model.data.id, text, model.data.file_ids);
      touchChat(conv.chatId);
      await reloadBranch(conv);
    } catch (err) {
      save.disabled = false;
      reportError(err, "Could not save the edit");
    }
  });
}

// One listener on the list serves every message's branch buttons, whenever
// they were drawn.
export function wireBranches() {
  $("messages").addEventListener("click", (ev) => {
    const button = ev.target.closest("button");
    const item = button && button.closest("li.message");
    const model = item && state.current && state.current.messages.get(item.dataset.messageId);
    if (!model) return;
    if (button.dataset.siblingId) showSibling(button.dataset.siblingId);
    else if (button.classList.contains("edit")) startEdit(model);
    else if (button.classList.contains("regenerate")) regenerate(model.data.id);
  });
}
