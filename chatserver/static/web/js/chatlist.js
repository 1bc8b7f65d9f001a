// The sidebar: the user's chats, newest first, paged in as it scrolls; on
// phones it slides over the conversation.

import { state, api } from "./state.js";
import { reportError } from "./notices.js";
import { goToChat } from "./router.js";
import { h, clear, $ } from "./dom.js";

export async function loadChats() {
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

export function resetChats() {
  state.chats.clear();
  state.chatCursor = null;
  state.chatsDone = false;
  clear($("chat-list"));
}

export function renderChatList() {
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

export function touchChat(chatId) {
  const chat = state.chats.get(chatId);
  if (chat) {
    chat.updated_at = new Date().toISOString();
    renderChatList();
  }
}

export async function startChat(title) {
  const chat = await api.createChat(title);
  state.chats.set(chat.id, chat);
  renderChatList();
  goToChat(chat.id);
  return chat;
}

function openSidebar() {
  $("sidebar").classList.add("open");
  $("backdrop").hidden = false;
  $("open-sidebar").setAttribute("aria-expanded", "true");
  $("new-chat").focus();
}

export function closeSidebar() {
  if (!$("sidebar").classList.contains("open")) return;
  $("sidebar").classList.remove("open");
  $("backdrop").hidden = true;
  $("open-sidebar").setAttribute("aria-expanded", "false");
}

export function wireChatList() {
  $("new-chat").addEventListener("click", async () => {
    try {
      await startChat();
      closeSidebar();
      $("composer-input").focus();
    } catch (err) {
      reportError(err, "Could not create a chat");
    }
  });
  $("more-chats").addEventListener("click", loadChats);

  $("open-sidebar").addEventListener("click", openSidebar);
  $("close-sidebar").addEventListener("click", closeSidebar);
  $("backdrop").addEventListener("click", closeSidebar);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && $("sidebar").classList.contains("open")) closeSidebar();
  });

  // infinite scroll: the next page as the end of the list comes into view
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.user) loadChats();
  }, { root: document.querySelector(".chat-nav") });
  observer.observe($("chat-list-sentinel"));
}
