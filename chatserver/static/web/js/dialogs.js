// The modal dialog, and the chat actions that ask through it: rename and
// delete.

import { state, api } from "./state.js";
import { notify } from "./notices.js";
import { renderChatList } from "./chatlist.js";
import { goToChat } from "./router.js";
import { setHeader } from "./conversation.js";
import { $ } from "./dom.js";

// ask({title, text, value?, label?, ok, danger?, action(value)}) -> result of action or null
function ask({ title, text = "", label = null, value = "", ok = "OK", danger = false, action }) {
  const dialog = $("dialog");
  const form = $("dialog-form");
  const input = $("dialog-input");
  const error = $("dialog-error");
  $("dialog-title").textContent = title;
  $("dialog-text").textContent = text;
  $("dialog-text").hidden = !text;
  $("dialog-label").textContent = label || "";
  $("dialog-label").hidden = !label;
  input.hidden = !label;
  input.value = value;
  error.hidden = true;
  const okButton = $("dialog-ok");
  okButton.textContent = ok;
  okButton.classList.toggle("danger", danger);
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const finish = (result) => {
      form.removeEventListener("submit", onSubmit);
      $("dialog-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      if (opener && opener.focus && document.contains(opener)) opener.focus();
      resolve(result);
    };
    const onCancel = (ev) => { if (ev) ev.preventDefault(); finish(null); };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      okButton.disabled = true;
      try {
        finish(await action(label ? input.value : true));
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        okButton.disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    $("dialog-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    if (label) { input.focus(); input.select(); } else $("dialog-cancel").focus();
  });
}

export function wireChatDialogs() {
  $("rename-chat").addEventListener("click", () => {
    const conv = state.current;
    if (!conv || !conv.chat) return;
    ask({
      title: "Rename chat", label: "Title", value: (state.chats.get(conv.chatId) || conv.chat).title, ok: "Rename",
      action: async (title) => {
        if (!title.trim()) throw new Error("The title cannot be empty.");
        const chat = await api.renameChat(conv.chatId, title.trim());
        state.chats.set(chat.id, chat);
        if (state.current === conv) { conv.chat = chat; setHeader(chat); }
        renderChatList();
        return chat;
      },
    });
  });
  $("delete-chat").addEventListener("click", () => {
    const conv = state.current;
    if (!conv || !conv.chat) return;
    ask({
      title: "Delete chat?", text: `\u201c${conv.chat.title}\u201d and all its messages and files will be deleted. This cannot be undone.`,
      ok: "Delete", danger: true,
      action: async () => {
        await api.deleteChat(conv.chatId);
        state.chats.delete(conv.chatId);
        renderChatList();
        notify("Chat deleted.");
        const next = [...state.chats.values()].sort((a, b) => b.updated_at.localeCompare(a.updated_at))[0];
        goToChat(next ? next.id : null);
        return true;
      },
    });
  });
}
