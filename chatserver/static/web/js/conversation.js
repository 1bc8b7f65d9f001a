// The open conversation: its history, paged in as it scrolls up, and the
// socket that carries its running answers live.

import { showSettingsButton } from "./chatsettings.js";
import { showShareButton } from "./sharing.js";
import { showOrganiseButton } from "./organise.js";
import { state, api, RUNNING } from "./state.js";
import { ApiError } from "./api.js";
import { ChatSocket } from "./socket.js";
import { notify, announce, reportError } from "./notices.js";
import { renderChatList } from "./chatlist.js";
import { goToChat } from "./router.js";
import { addMessage, scheduleRender, rerenderAll, updateRunning, watch, scrollToBottom } from "./messages.js";
import { handleChatEvent } from "./events.js";
import { withStep } from "./steps.js";
import { clear, $ } from "./dom.js";

const POLL_OFFLINE_MS = 4000;

export function closeConversation() {
  if (state.current) clearInterval(state.current.pollTimer);
  if (state.current && state.current.socket) state.current.socket.stop();
  state.current = null;
  clear($("messages"));
  $("connection").textContent = "";
}

export function setHeader(chat) {
  $("chat-title").textContent = chat ? chat.title : "New conversation";
  showSettingsButton(chat);
  showShareButton(chat);
  showOrganiseButton(chat);
  $("rename-chat").hidden = !chat;
  $("delete-chat").hidden = !chat;
  $("export-chat").hidden = !chat;
  document.title = chat ? `${chat.title} \u2013 chatserver` : "chatserver";
}

export async function openChat(chatId) {
  closeConversation();
  const conv = {
    chatId, chat: chatId ? state.chats.get(chatId) || null : null,
    messages: new Map(), cursor: null, loadingOlder: false, socket: null,
  };
  state.current = conv;
  renderChatList();
  setHeader(conv.chat);
  $("empty-chat").hidden = false;
  $("load-older").hidden = true;
  updateRunning();
  if (!chatId) return;
  try {
    const [chat, page] = await Promise.all([api.getChat(chatId), api.listMessages(chatId)]);
    if (state.current !== conv) return;
    conv.chat = chat;
    state.chats.set(chat.id, { ...state.chats.get(chat.id), ...chat });
    renderChatList();
    setHeader(chat);
    conv.cursor = page.next_cursor;
    for (const message of page.items) addMessage(message);
    // each message was drawn as it came, when every answer was the last one so far
    rerenderAll();
    $("load-older").hidden = !conv.cursor;
    scrollToBottom();
  } catch (err) {
    if (state.current !== conv) return;
    if (err instanceof ApiError && err.status === 404) {
      notify("That chat does not exist any more.", "error");
      state.chats.delete(chatId);
      goToChat(null);
      return;
    }
    reportError(err, "Could not open the chat");
    return;
  }
  conv.socket = new ChatSocket({
    chatId,
    token: () => api.token,
    onFrame: (frame) => onFrame(conv, frame),
    onState: (s) => onSocketState(conv, s),
    onConnectFailed: () => checkChatReachable(conv),
  });
  for (const model of conv.messages.values()) {
    if (model.data.role === "assistant" && RUNNING.has(model.data.status)) watch(conv, model);
  }
  conv.socket.start();
  conv.pollTimer = setInterval(() => pollWhileOffline(conv), POLL_OFFLINE_MS);
}

// While the socket cannot be opened for a while (a proxy that blocks
// WebSockets, a long outage), running answers are read over REST instead.
// The REST content replaces what is shown, like stream_content does, so
// nothing is doubled when the socket comes back.
async function pollWhileOffline(conv) {
  if (state.current !== conv || !conv.socket || conv.socket.isOpen() || conv.polling) return;
  if (!conv.offlineSince || Date.now() - conv.offlineSince < POLL_OFFLINE_MS) return;
  conv.polling = true;
  try {
    for (const id of [...conv.socket.watching]) {
      const fresh = await api.getMessage(id);
      const model = conv.messages.get(id);
      if (state.current !== conv || !model || conv.socket.isOpen()) return;
      model.data = fresh;
      if (!RUNNING.has(fresh.status)) conv.socket.unwatch(id);
      scheduleRender(model);
    }
    updateRunning();
  } catch {
    // unreachable as well: the socket's reconnect loop goes on
  } finally {
    conv.polling = false;
  }
}

async function checkChatReachable(conv) {
  try {
    await api.getChat(conv.chatId);
    return state.current === conv;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false; // logged out already
    if (err instanceof ApiError && err.status === 404) {
      if (state.current === conv) {
        notify("This chat was deleted.", "error");
        state.chats.delete(conv.chatId);
        goToChat(null);
      }
      return false;
    }
    return true; // the server is unreachable: keep trying
  }
}

function onSocketState(conv, s) {
  if (state.current !== conv) return;
  const el = $("connection");
  el.classList.toggle("offline", s !== "online");
  el.textContent = s === "online" ? "" : s === "connecting" ? "Connecting\u2026" : "Reconnecting\u2026";
  if (s !== "online" && !conv.offlineSince) conv.offlineSince = Date.now();
  if (s === "online") {
    conv.offlineSince = null;
    // the socket re-sends stream_request for every watched message: each
    // answers with a fresh stream_content, and chunks only count after it
    for (const model of conv.messages.values()) model.synced = false;
  }
}

function onFrame(conv, frame) {
  if (state.current !== conv || !frame) return;
  if (handleChatEvent(conv, frame, setHeader)) return;
  if (frame.error && !frame.message_id) {
    notify(`Live updates: ${frame.error}`, "error");
    return;
  }
  const model = conv.messages.get(frame.message_id);
  if (!model) return;
  const data = model.data;
  if (frame.error) {
    refreshMessage(conv, model, frame.error);
    return;
  }
  switch (frame.type) {
    case "stream_content":
      data.content = typeof frame.content === "string" ? frame.content : "";
      data.reasoning = typeof frame.reasoning === "string" ? frame.reasoning : "";
      data.steps = Array.isArray(frame.steps) ? frame.steps : [];
      model.synced = true;
      model.retry = null;
      if (data.status === "pending" && data.content) data.status = "streaming";
      break;
    case "chunk":
      if (!model.synced || !RUNNING.has(data.status)) return;
      data.content += frame.content || "";
      data.status = "streaming";
      model.retry = null;
      break;
    case "reasoning":
      if (!model.synced || !RUNNING.has(data.status)) return;
      data.reasoning = (data.reasoning || "") + (frame.content || "");
      model.retry = null;
      break;
    case "status":
      model.retry = frame.status === "retrying" ? frame.attempt : null;
      break;
    case "tool_call":
      if (!model.synced) return;
      data.steps = withStep(data.steps, frame.step);
      break;
    case "complete":
      if (!model.synced) { // cannot happen by the contract; if it does, REST has the final text
        refreshMessage(conv, model, "the answer could not be followed live");
        return;
      }
      data.status = "complete";
      data.sources = Array.isArray(frame.sources) ? frame.sources : [];
      data.finish_reason = frame.finish_reason || null;
      data.usage = frame.usage || null;
      model.retry = null;
      // the stored message names the model that answered
      api.getMessage(data.id).then((fresh) => { model.data = fresh; scheduleRender(model); }).catch(() => {});
      data.completed_at = data.completed_at || new Date().toISOString();
      conv.socket.unwatch(data.id);
      announce("The answer is complete.");
      break;
    default:
      return;
  }
  scheduleRender(model);
  updateRunning();
}

// The socket said the generation failed or was cancelled: the REST answer
// holds the status, the error and the content that was kept.
async function refreshMessage(conv, model, fallbackError) {
  conv.socket && conv.socket.unwatch(model.data.id);
  try {
    const fresh = await api.getMessage(model.data.id);
    if (RUNNING.has(fresh.status)) {
      // still running (an error about the request itself): keep following it
      notify(`Live updates: ${fallbackError}`, "error");
      if (state.current === conv) setTimeout(() => watch(conv, model), 2000);
      return;
    }
    model.data = fresh;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    model.data.status = "failed";
    model.data.error = fallbackError;
  }
  if (state.current !== conv) return;
  scheduleRender(model);
  updateRunning();
  announce({ cancelled: "The answer was stopped.", complete: "The answer is complete." }[model.data.status]
    || "The answer failed.");
}

// older history on scroll-up, keeping the view where it was
export async function loadOlder() {
  const conv = state.current;
  if (!conv || !conv.cursor || conv.loadingOlder) return false;
  conv.loadingOlder = true;
  try {
    const page = await api.listMessages(conv.chatId, conv.cursor);
    if (state.current !== conv) return false;
    const scroller = $("scroller");
    const before = scroller.scrollHeight - scroller.scrollTop;
    for (const message of [...page.items].reverse()) {
      const model = addMessage(message, { prepend: true });
      if (message.role === "assistant" && RUNNING.has(message.status)) watch(conv, model);
    }
    conv.cursor = page.next_cursor;
    $("load-older").hidden = !conv.cursor;
    scroller.scrollTop = scroller.scrollHeight - before;
    rerenderAll();
    return true;
  } catch (err) {
    reportError(err, "Could not load older messages");
    return false;
  } finally {
    conv.loadingOlder = false;
  }
}

export function wireConversation() {
  $("load-older").addEventListener("click", loadOlder);
  // infinite scroll: older messages load before the top is reached, so reading back rarely waits
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.current && state.current.cursor) loadOlder();
  }, { root: $("scroller"), rootMargin: "200px 0px 0px 0px" });
  observer.observe($("history-sentinel"));
}
