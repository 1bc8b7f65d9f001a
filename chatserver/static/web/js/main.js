// chatserver web client: accounts, chats, the conversation and its live
// answers, attachments. It uses only the public contract (API.md).

import { Api, ApiError } from "./api.js";
import { ChatSocket } from "./socket.js";
import { renderMarkdown } from "./markdown.js";
import { FileStore, renderFileCard, messageAttachment, isSettled } from "./files.js";
import { h, clear, $, safeUrl, formatTime } from "./dom.js";

const TOKEN_KEY = "chatserver.token";
const RUNNING = new Set(["pending", "streaming"]);
const EXPIRED_TEXT = "Your session has expired. Please log in again.";
const DEFAULT_TITLE = "New chat";
const POLL_OFFLINE_MS = 4000;

const api = new Api();
const files = new FileStore(api, notify);

const state = {
  user: null,
  chats: new Map(),      // id -> Chat
  chatCursor: null,
  chatsLoading: false,
  chatsDone: false,
  current: null,         // the open conversation, see openChat()
  openSeq: 0,
  uploads: [],           // composer attachments
  expiryTimer: null,
};

// ---------------------------------------------------------------- notices

function notify(text, kind = "info") {
  const box = $("notices");
  // the same failure seen twice (a retry, a second request) is one notice
  for (const shown of box.children) {
    if (shown.classList.contains(kind) && shown.querySelector("p").textContent === text) return;
  }
  const close = h("button", { type: "button", "aria-label": "Dismiss notice" }, "\u00d7");
  const notice = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : undefined },
    h("p", { text }), close);
  close.addEventListener("click", () => notice.remove());
  box.append(notice);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => notice.remove(), kind === "error" ? 15000 : 6000);
}

function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

function reportError(err, what) {
  if (!err || err.name === "AbortError") return;
  if (err instanceof ApiError && err.status === 401) return; // the login form says it
  notify(what ? `${what}: ${err.message}` : err.message || String(err), "error");
}

window.addEventListener("error", (ev) => notify(`Something went wrong: ${ev.message}`, "error"));
window.addEventListener("unhandledrejection", (ev) => reportError(ev.reason, "Something went wrong"));

// ---------------------------------------------------------------- accounts

function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

function setSession(token) {
  api.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  clearTimeout(state.expiryTimer);
  const expires = tokenExpiry(token);
  if (expires) {
    const wait = expires - Date.now();
    if (wait <= 0) return false;
    if (wait < 2 ** 31 - 1) state.expiryTimer = setTimeout(() => logout(EXPIRED_TEXT), wait);
  }
  return true;
}

function logout(message) {
  clearTimeout(state.expiryTimer);
  closeConversation();
  clearUploads();
  api.token = null;
  state.user = null;
  sessionStorage.removeItem(TOKEN_KEY);
  history.replaceState(null, "", location.pathname + location.search); // the next user starts afresh
  state.chats.clear();
  state.chatCursor = null;
  state.chatsDone = false;
  clear($("chat-list"));
  files.forgetAll();
  showAuth(message);
}

function showAuth(message) {
  $("loading").hidden = true;
  $("app-view").hidden = true;
  $("auth-view").hidden = false;
  const box = $("auth-message");
  box.textContent = message || "";
  box.hidden = !message;
  selectTab("login");
  $("login-email").focus();
}

function selectTab(which) {
  const login = which === "login";
  $("tab-login").setAttribute("aria-selected", String(login));
  $("tab-register").setAttribute("aria-selected", String(!login));
  $("tab-login").tabIndex = login ? 0 : -1;
  $("tab-register").tabIndex = login ? -1 : 0;
  $("login-form").hidden = !login;
  $("register-form").hidden = login;
}

function wireAuth() {
  $("tab-login").addEventListener("click", () => selectTab("login"));
  $("tab-register").addEventListener("click", () => selectTab("register"));
  for (const tab of [$("tab-login"), $("tab-register")]) {
    tab.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
        const next = tab.id === "tab-login" ? "register" : "login";
        selectTab(next);
        $(`tab-${next}`).focus();
      }
    });
  }
  const submit = (form, action) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = form.querySelector(".form-error");
    const button = form.querySelector("button[type=submit]");
    error.hidden = true;
    button.disabled = true;
    try {
      const answer = await action(new FormData(form));
      $("auth-message").hidden = true;
      form.reset();
      await startSession(answer.access_token, answer.user);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  submit($("login-form"), (data) => api.login(String(data.get("email")).trim(), String(data.get("password"))));
  submit($("register-form"), (data) => {
    const password = String(data.get("password"));
    if (password.length < 8) throw new Error("The password needs at least 8 characters.");
    return api.register(String(data.get("email")).trim(), password, String(data.get("display_name") || "").trim());
  });
}

async function startSession(token, user) {
  if (!setSession(token)) { logout(EXPIRED_TEXT); return; }
  state.user = user || await api.me();
  $("user-name").textContent = state.user.display_name || state.user.email;
  $("user-name").title = state.user.email;
  $("loading").hidden = true;
  $("auth-view").hidden = true;
  $("app-view").hidden = false;
  state.chats.clear();
  state.chatCursor = null;
  state.chatsDone = false;
  clear($("chat-list"));
  await loadChats();
  await route();
}

// ---------------------------------------------------------------- chat list

async function loadChats() {
  if (state.chatsLoading || state.chatsDone) return;
  state.chatsLoading = true;
  try {
    const page = await api.listChats(state.chatCursor);
    for (const chat of page.items) state.chats.set(chat.id, chat);
    state.chatCursor = page.next_cursor;
    state.chatsDone = !page.next_cursor;
    renderChatList();
  } catch (err) {
    reportError(err, "Could not load your chats");
  } finally {
    state.chatsLoading = false;
  }
}

function renderChatList() {
  const list = $("chat-list");
  const sorted = [...state.chats.values()].sort((a, b) =>
    b.updated_at.localeCompare(a.updated_at) || b.id.localeCompare(a.id));
  clear(list);
  const currentId = state.current && state.current.chatId;
  for (const chat of sorted) {
    const button = h("button", { type: "button", "data-chat-id": chat.id, title: chat.title,
      "aria-current": chat.id === currentId ? "page" : undefined }, chat.title);
    button.addEventListener("click", () => { goToChat(chat.id); closeSidebar(); });
    list.append(h("li", {}, button));
  }
  $("chat-list-empty").hidden = sorted.length > 0;
  $("more-chats").hidden = state.chatsDone;
}

function touchChat(chatId) {
  const chat = state.chats.get(chatId);
  if (chat) {
    chat.updated_at = new Date().toISOString();
    renderChatList();
  }
}

function goToChat(chatId) {
  const hash = chatId ? `#/chat/${chatId}` : "#/";
  if (location.hash !== hash) location.hash = hash; // route() runs on hashchange
  else route();
}

async function route() {
  if (!state.user) return;
  const m = location.hash.match(/^#\/chat\/([0-9a-fA-F-]{36})$/);
  const chatId = m ? m[1].toLowerCase() : null;
  if (state.current && state.current.chatId === chatId && chatId) return;
  await openChat(chatId);
}

// ---------------------------------------------------------------- conversation

function closeConversation() {
  if (state.current) clearInterval(state.current.pollTimer);
  if (state.current && state.current.socket) state.current.socket.stop();
  state.current = null;
  clear($("messages"));
  $("connection").textContent = "";
}

function setHeader(chat) {
  $("chat-title").textContent = chat ? chat.title : "New conversation";
  $("rename-chat").hidden = !chat;
  $("delete-chat").hidden = !chat;
  document.title = chat ? `${chat.title} \u2013 chatserver` : "chatserver";
}

async function openChat(chatId) {
  const seq = ++state.openSeq;
  closeConversation();
  const conv = {
    chatId, chat: chatId ? state.chats.get(chatId) || null : null,
    messages: new Map(), cursor: null, loadingOlder: false, socket: null, seq,
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

function watch(conv, model) {
  if (!conv.socket || conv.socket.watching.has(model.data.id)) return;
  model.synced = false; // chunks count only after the stream_content this request brings
  conv.socket.watch(model.data.id);
}

function onFrame(conv, frame) {
  if (state.current !== conv || !frame) return;
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
      model.synced = true;
      if (data.status === "pending" && data.content) data.status = "streaming";
      break;
    case "chunk":
      if (!model.synced || !RUNNING.has(data.status)) return;
      data.content += frame.content || "";
      data.status = "streaming";
      break;
    case "complete":
      if (!model.synced) { // cannot happen by the contract; if it does, REST has the final text
        refreshMessage(conv, model, "the answer could not be followed live");
        return;
      }
      data.status = "complete";
      data.sources = Array.isArray(frame.sources) ? frame.sources : [];
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

function addMessage(data, { prepend = false } = {}) {
  const conv = state.current;
  if (conv.messages.has(data.id)) return conv.messages.get(data.id);
  const model = { data, el: h("li", { class: `message ${data.role}`, id: `msg-${data.id}`, "data-message-id": data.id, tabindex: "-1" }),
    synced: false, metaKey: null, scheduled: false };
  conv.messages.set(data.id, model);
  const list = $("messages");
  if (prepend) list.prepend(model.el); else list.append(model.el);
  $("empty-chat").hidden = true;
  renderMessage(model);
  return model;
}

function scheduleRender(model) {
  if (model.scheduled) return;
  model.scheduled = true;
  const run = () => {
    model.scheduled = false;
    const stick = nearBottom();
    renderMessage(model);
    if (stick) scrollToBottom();
  };
  // animation frames pause in hidden tabs; a timer keeps the model and page in step
  if (document.hidden) setTimeout(run, 100); else requestAnimationFrame(run);
}

const STATUS_LABEL = { pending: "waiting", streaming: "writing\u2026", failed: "failed", cancelled: "stopped" };

function lastAssistantId() {
  let last = null;
  for (const el of $("messages").children) if (el.classList.contains("assistant")) last = el.dataset.messageId;
  return last;
}

function renderMessage(model) {
  const { data, el } = model;
  el.dataset.status = data.status;
  el.setAttribute("aria-busy", String(RUNNING.has(data.status)));
  const isLast = data.role === "assistant" && lastAssistantId() === data.id;
  const metaKey = JSON.stringify([data.status, data.error, data.sources.length, isLast, data.file_ids.length]);

  if (model.metaKey === null) {
    el.append(
      h("div", { class: "message-head" },
        h("span", { class: "role" }, data.role === "user" ? "You" : "Assistant"),
        h("span", { class: "status", hidden: true }),
        h("time", { datetime: data.created_at, text: formatTime(data.created_at) })),
      h("div", { class: data.role === "user" ? "content" : "content markdown" }),
      h("p", { class: "message-error", hidden: true }),
      h("ul", { class: "attachments", hidden: true, "aria-label": "Attachments" }),
      h("section", { class: "sources", hidden: true }),
      h("div", { class: "message-actions", hidden: true }));
  }

  const content = el.querySelector(".content");
  clear(content);
  if (data.role === "user") {
    content.append(h("p", { class: "user-text", text: data.content }));
  } else if (data.content) {
    content.append(renderMarkdown(data.content));
  } else if (RUNNING.has(data.status)) {
    content.append(h("span", { class: "typing muted" }, "Thinking"));
  }

  if (model.metaKey === metaKey) return;
  model.metaKey = metaKey;

  const status = el.querySelector(".status");
  status.className = `status ${data.status}`;
  status.textContent = STATUS_LABEL[data.status] || "";
  status.hidden = !STATUS_LABEL[data.status];

  const error = el.querySelector(".message-error");
  const stopped = "Stopped before the answer was finished.";
  const errorText = data.status === "cancelled"
    ? (data.error && !/^cancel+ed\.?$/i.test(data.error.trim()) ? `${stopped} (${data.error})` : stopped)
    : data.status === "failed" ? `The answer failed: ${data.error || "unknown error"}` : "";
  error.textContent = errorText;
  error.hidden = !errorText;

  const attachments = el.querySelector(".attachments");
  if (data.file_ids.length && !attachments.children.length) {
    for (const id of data.file_ids) attachments.append(messageAttachment(id, files));
  }
  attachments.hidden = !data.file_ids.length;

  const sources = el.querySelector(".sources");
  clear(sources);
  if (data.sources.length) {
    const list = h("ol");
    for (const source of data.sources) list.append(renderSource(source));
    sources.append(h("h3", {}, "Sources"), list);
  }
  sources.hidden = !data.sources.length;

  const actions = el.querySelector(".message-actions");
  clear(actions);
  if (data.role === "assistant") {
    if (RUNNING.has(data.status)) {
      actions.append(h("button", { type: "button", class: "secondary stop-one", onclick: () => stopMessage(data.id) }, "Stop"));
    } else if (isLast) {
      actions.append(h("button", { type: "button", class: "secondary regenerate", onclick: () => regenerate(data.id) }, "Regenerate"));
    }
  }
  actions.hidden = !actions.children.length;
}

function renderSource(source) {
  const title = source.title || source.url || "Untitled source";
  const href = safeUrl(source.url);
  const item = h("li", {},
    href ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, title) : h("span", {}, title));
  if (source.content) {
    item.append(h("details", {}, h("summary", {}, "snippet"), h("span", { class: "snippet", text: source.content })));
  }
  return item;
}

function rerenderAll() {
  if (!state.current) return;
  for (const model of state.current.messages.values()) renderMessage(model);
}

function runningIds() {
  if (!state.current) return [];
  return [...state.current.messages.values()]
    .filter((m) => m.data.role === "assistant" && RUNNING.has(m.data.status)).map((m) => m.data.id);
}

function updateRunning() {
  const running = runningIds().length > 0;
  $("stop").hidden = !running;
}

async function stopMessage(id) {
  const conv = state.current;
  const model = conv && conv.messages.get(id);
  if (!model) return;
  try {
    model.data = await api.cancel(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      model.data = await api.getMessage(id).catch(() => model.data);
    } else {
      reportError(err, "Could not stop the answer");
      return;
    }
  }
  if (state.current !== conv) return;
  conv.socket && conv.socket.unwatch(id);
  scheduleRender(model);
  updateRunning();
}

async function regenerate(id) {
  const conv = state.current;
  try {
    const message = await api.regenerate(id);
    if (state.current !== conv) return;
    const model = addMessage(message);
    rerenderAll();
    watch(conv, model);
    updateRunning();
    touchChat(conv.chatId);
    scrollToBottom();
  } catch (err) {
    reportError(err, "Could not regenerate the answer");
  }
}

// older history on scroll-up, keeping the view where it was
async function loadOlder() {
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

function nearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

// ---------------------------------------------------------------- composer

function autosize() {
  const box = $("composer-input");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, 192)}px`;
}

async function send() {
  const box = $("composer-input");
  const content = box.value;
  if (!content.trim()) {
    notify("Type a message first.");
    box.focus();
    return;
  }
  if (state.uploads.some((u) => u.state === "uploading")) {
    notify("Wait until the files have finished uploading.");
    return;
  }
  const fileIds = state.uploads.filter((u) => u.file && u.state !== "failed").map((u) => u.file.id);
  const sendButton = $("send");
  sendButton.disabled = true;
  try {
    let conv = state.current;
    if (!conv || !conv.chatId) {
      const chat = await api.createChat(titleFrom(content));
      state.chats.set(chat.id, chat);
      renderChatList();
      goToChat(chat.id);
      await waitFor(() => state.current && state.current.chatId === chat.id && state.current.socket);
      conv = state.current;
    }
    const posted = await api.postMessage(conv.chatId, content, fileIds);
    box.value = "";
    autosize();
    clearUploads({ keepFiles: true });
    if (state.current !== conv) return;
    addMessage(posted.user_message);
    const answer = addMessage(posted.assistant_message);
    rerenderAll();
    watch(conv, answer);
    updateRunning();
    scrollToBottom();
    const chat = state.chats.get(conv.chatId);
    if (chat && chat.title === DEFAULT_TITLE) {
      api.renameChat(chat.id, titleFrom(content)).then((renamed) => {
        state.chats.set(renamed.id, renamed);
        if (state.current && state.current.chatId === renamed.id) setHeader(renamed);
        renderChatList();
      }).catch(() => {});
    }
    touchChat(conv.chatId);
  } catch (err) {
    reportError(err, "Could not send the message");
  } finally {
    sendButton.disabled = false;
    box.focus();
  }
}

function titleFrom(content) {
  const line = content.trim().split("\n")[0].trim();
  return line.length > 60 ? `${line.slice(0, 57)}\u2026` : line || DEFAULT_TITLE;
}

async function waitFor(test, timeoutMs = 10000) {
  const started = Date.now();
  while (!test()) {
    if (Date.now() - started > timeoutMs) throw new Error("the chat did not open in time");
    await new Promise((r) => setTimeout(r, 30));
  }
}

// attachments in the composer

// Files belong to a chat (deleting the chat removes them): with no chat open,
// attaching starts one.
async function addFiles(list) {
  if (!list.length) return;
  if (!state.current || !state.current.chatId) {
    try {
      const chat = await api.createChat();
      state.chats.set(chat.id, chat);
      renderChatList();
      goToChat(chat.id);
      await waitFor(() => state.current && state.current.chatId === chat.id && state.current.socket);
    } catch (err) {
      reportError(err, "Could not start a chat for the files");
      return;
    }
  }
  for (const file of list) {
    const upload = { local: file, file: null, state: "uploading", progress: 0, error: null, abort: null,
      el: h("li", { class: "attachment uploading" }) };
    state.uploads.push(upload);
    $("attachments").append(upload.el);
    renderUpload(upload);
    const chatId = state.current && state.current.chatId;
    const task = api.upload(file, chatId, (fraction) => {
      upload.progress = fraction;
      renderUpload(upload);
    });
    upload.abort = task.abort;
    task.promise.then((created) => {
      upload.file = files.remember(created);
      upload.state = "processing";
      renderUpload(upload);
      return files.untilSettled(created.id, (f) => {
        upload.file = f;
        if (isSettled(f)) upload.state = f.status === "failed" ? "failed" : "ready";
        if (state.uploads.includes(upload)) renderUpload(upload);
      });
    }).catch((err) => {
      upload.state = "failed";
      upload.error = err.message;
      if (state.uploads.includes(upload)) renderUpload(upload);
    });
  }
}

function renderUpload(upload) {
  const el = upload.el;
  const name = upload.local.name;
  el.dataset.state = upload.state;
  const remove = h("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${name}` }, "Remove");
  remove.addEventListener("click", () => removeUpload(upload));
  if (upload.file && upload.state !== "uploading") {
    clear(el);
    renderFileCard(el, upload.file, files);
    if (upload.state === "failed" && !upload.file.error) el.querySelector(".att-status").textContent = "Failed";
    el.querySelector(".att-actions").append(remove);
    return;
  }
  clear(el);
  el.classList.toggle("failed", upload.state === "failed");
  const pct = Math.round(upload.progress * 100);
  el.append(h("div", { class: "att-body" },
    h("span", { class: "att-name", title: name, text: name }),
    upload.state === "uploading"
      ? h("progress", { max: "100", value: String(pct), "aria-label": `Uploading ${name}` })
      : null,
    h("span", { class: "att-status", role: upload.state === "failed" ? "alert" : undefined,
      text: upload.state === "failed" ? upload.error : `Uploading ${pct}%` }),
    h("div", { class: "att-actions" }, remove)));
}

function removeUpload(upload) {
  if (upload.state === "uploading" && upload.abort) upload.abort();
  if (upload.file) api.deleteFile(upload.file.id).catch(() => {});
  state.uploads = state.uploads.filter((u) => u !== upload);
  upload.el.remove();
}

function clearUploads({ keepFiles = false } = {}) {
  for (const upload of state.uploads) {
    if (!keepFiles && upload.state === "uploading" && upload.abort) upload.abort();
  }
  state.uploads = [];
  clear($("attachments"));
}

function wireComposer() {
  const box = $("composer-input");
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      send();
    }
  });
  box.addEventListener("input", autosize);
  $("stop").addEventListener("click", () => { for (const id of runningIds()) stopMessage(id); });
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (ev) => {
    addFiles([...ev.target.files]);
    ev.target.value = "";
  });

  const view = $("chat-view");
  let depth = 0;
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  view.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth++;
    $("drop-overlay").hidden = false;
  });
  view.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
  });
  view.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) $("drop-overlay").hidden = true;
  });
  view.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth = 0;
    $("drop-overlay").hidden = true;
    addFiles([...ev.dataTransfer.files]);
  });
}

// ---------------------------------------------------------------- dialogs

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

function wireChatActions() {
  $("new-chat").addEventListener("click", async () => {
    try {
      const chat = await api.createChat();
      state.chats.set(chat.id, chat);
      renderChatList();
      goToChat(chat.id);
      closeSidebar();
      $("composer-input").focus();
    } catch (err) {
      reportError(err, "Could not create a chat");
    }
  });
  $("rename-chat").addEventListener("click", () => {
    const conv = state.current;
    if (!conv || !conv.chat) return;
    ask({
      title: "Rename chat", label: "Title", value: conv.chat.title, ok: "Rename",
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
  $("more-chats").addEventListener("click", loadChats);
  $("load-older").addEventListener("click", loadOlder);
  $("logout").addEventListener("click", () => logout("You have logged out."));

  // search
  $("search-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("search-input").value.trim();
    if (!q) return;
    try {
      const result = await api.search(q);
      renderSearch(q, result.items);
    } catch (err) {
      reportError(err, "Search failed");
    }
  });
  $("clear-search").addEventListener("click", () => {
    $("search-results").hidden = true;
    $("search-input").value = "";
    $("search-input").focus();
  });

  // sidebar on phones
  $("open-sidebar").addEventListener("click", openSidebar);
  $("close-sidebar").addEventListener("click", closeSidebar);
  $("backdrop").addEventListener("click", closeSidebar);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && $("sidebar").classList.contains("open")) closeSidebar();
  });

  // infinite scroll: more chats at the bottom, older messages at the top
  const chatObserver = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.user) loadChats();
  }, { root: document.querySelector(".chat-nav") });
  chatObserver.observe($("chat-list-sentinel"));
  const historyObserver = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.current && state.current.cursor) loadOlder();
  }, { root: $("scroller"), rootMargin: "200px 0px 0px 0px" });
  historyObserver.observe($("history-sentinel"));
}

function openSidebar() {
  $("sidebar").classList.add("open");
  $("backdrop").hidden = false;
  $("open-sidebar").setAttribute("aria-expanded", "true");
  $("new-chat").focus();
}

function closeSidebar() {
  if (!$("sidebar").classList.contains("open")) return;
  $("sidebar").classList.remove("open");
  $("backdrop").hidden = true;
  $("open-sidebar").setAttribute("aria-expanded", "false");
}

function renderSearch(q, items) {
  $("search-results").hidden = false;
  $("search-title").textContent = items.length ? `Results for \u201c${q}\u201d` : `No results for \u201c${q}\u201d`;
  const list = clear($("search-list"));
  for (const hit of items) {
    const chat = state.chats.get(hit.chat_id);
    const label = h("span", { class: "hit-chat", text: chat ? chat.title : "Chat" });
    if (!chat) api.getChat(hit.chat_id).then((c) => { label.textContent = c.title; }).catch(() => {});
    const button = h("button", { type: "button", "data-message-id": hit.message_id },
      label, h("span", { class: "hit-snippet", text: hit.snippet }));
    button.addEventListener("click", () => { jumpTo(hit.chat_id, hit.message_id); closeSidebar(); });
    list.append(h("li", {}, button));
  }
}

async function jumpTo(chatId, messageId) {
  if (!state.current || state.current.chatId !== chatId) {
    goToChat(chatId);
    try {
      await waitFor(() => state.current && state.current.chatId === chatId && state.current.socket);
    } catch {
      return;
    }
  }
  const conv = state.current;
  for (let i = 0; i < 50 && !conv.messages.has(messageId) && conv.cursor; i++) {
    if (!(await loadOlder())) break;
  }
  const model = conv.messages.get(messageId);
  if (!model) { notify("That message is no longer there."); return; }
  model.el.scrollIntoView({ block: "center" });
  model.el.classList.add("highlight");
  model.el.focus({ preventScroll: true });
  setTimeout(() => model.el.classList.remove("highlight"), 4000);
}

// ---------------------------------------------------------------- start

async function boot() {
  api.onUnauthorized = () => { if (state.user || api.token) logout(EXPIRED_TEXT); };
  wireAuth();
  wireComposer();
  wireChatActions();
  window.addEventListener("hashchange", () => { route().catch((err) => reportError(err)); });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { showAuth(); return; }
  try {
    await startSession(token, null);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // logout() showed the form
    if (!api.token) return;
    $("loading").textContent = `The server cannot be reached (${err.message}). Retrying\u2026`;
    setTimeout(boot2, 3000);
  }
}

// retry a start-up that failed because the server was unreachable
async function boot2() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { showAuth(); return; }
  try {
    await startSession(token, null);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    setTimeout(boot2, 5000);
  }
}

boot();
