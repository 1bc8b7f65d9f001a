// Chat events from the socket: what other tabs and devices did to the open
// chat (new messages with their answers, ended answers, renames, branch
// switches, deletion), applied to the page without a reload.

import { state, RUNNING } from "./state.js";
import { notify } from "./notices.js";
import { renderChatList } from "./chatlist.js";
import { goToChat } from "./router.js";
import { addMessage, scheduleRender, rerenderAll, updateRunning, watch, scrollToBottom } from "./messages.js";
import { reloadBranch } from "./branches.js";
import { $ } from "./dom.js";

const EVENTS = new Set(["subscribed", "message_created", "message_updated", "chat_updated", "chat_deleted"]);

// True when the frame was a chat event (handled here).
export function handleChatEvent(conv, frame, setHeader) {
  if (!EVENTS.has(frame.type)) return false;
  if (frame.type === "message_created") created(conv, frame.message);
  else if (frame.type === "message_updated") updated(conv, frame.message);
  else if (frame.type === "chat_updated") chatUpdated(conv, frame.chat, setHeader);
  else if (frame.type === "chat_deleted") deleted(conv);
  return true;
}

function lastShownId() {
  const items = $("messages").children;
  return items.length ? items[items.length - 1].dataset.messageId : null;
}

function created(conv, message) {
  if (!message || conv.messages.has(message.id)) return;
  // a message that continues what is shown is appended; any other (an
  // edit, a regeneration) means the shown branch changed
  if (message.parent_id !== lastShownId()) { reloadBranch(conv); return; }
  const model = addMessage(message);
  if (message.role === "assistant" && RUNNING.has(message.status)) watch(conv, model);
  rerenderAll();
  updateRunning();
  scrollToBottom();
}

function updated(conv, message) {
  const model = message && conv.messages.get(message.id);
  if (!model) return;
  model.data = message;
  if (!RUNNING.has(message.status) && conv.socket) conv.socket.unwatch(message.id);
  scheduleRender(model);
  updateRunning();
}

function chatUpdated(conv, chat, setHeader) {
  if (!chat) return;
  conv.chat = { ...conv.chat, ...chat };
  state.chats.set(chat.id, { ...state.chats.get(chat.id), ...chat });
  renderChatList();
  setHeader(conv.chat);
  if (chat.shown_leaf && !conv.messages.has(chat.shown_leaf)) reloadBranch(conv);
}

function deleted(conv) {
  notify("This chat was deleted in another window.", "error");
  state.chats.delete(conv.chatId);
  renderChatList();
  goToChat(null);
}
