// The sidebar: the user's chats, pinned first, then by folder, newest
// first within each, paged in as it scrolls; archived chats in a view of
// their own. On phones it slides over the conversation.

import { state, api } from "./state.js";
import { reportError } from "./notices.js";
import { goToChat } from "./router.js";
import { folderList, loadFolders, knowsFolder } from "./folderstore.js";
import { h, clear, $ } from "./dom.js";

let archivedView = false;

export async function loadChats() {
  if (state.chatsLoading || state.chatsDone) return;
  state.chatsLoading = true;
  try {
    const first = !state.chatCursor;
    const [page] = await Promise.all([
      api.listChats(state.chatCursor, archivedView ? { archived: "true" } : {}),
      first ? loadFolders() : null,
    ]);
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

function chatItem(chat, currentId) {
  const button = h("button", { type: "button", "data-chat-id": chat.id, title: chat.title,
    class: chat.pinned ? "pinned" : undefined,
    "aria-current": chat.id === currentId ? "page" : undefined }, chat.title);
  button.addEventListener("click", () => { goToChat(chat.id); closeSidebar(); });
  return h("li", {}, button);
}

// [[heading or null, chats]]: pinned chats, then each folder's, then the rest
function groups(chats) {
  const pinned = chats.filter((c) => c.pinned);
  const rest = chats.filter((c) => !c.pinned);
  const byFolder = folderList().map((f) => [f.name, rest.filter((c) => c.folder_id === f.id)]);
  const loose = rest.filter((c) => !c.folder_id || !knowsFolder(c.folder_id));
  if (rest.some((c) => c.folder_id && !knowsFolder(c.folder_id))) loadFolders().then(renderChatList, () => {});
  if (!pinned.length && !byFolder.some(([, list]) => list.length)) return [[null, loose]];
  return [["Pinned", pinned], ...byFolder, ["Chats", loose]].filter(([, list]) => list.length);
}

export function renderChatList() {
  const list = $("chat-list");
  const shown = [...state.chats.values()].filter((c) => Boolean(c.archived) === archivedView).sort((a, b) =>
    Number(Boolean(b.pinned)) - Number(Boolean(a.pinned)) || b.updated_at.localeCompare(a.updated_at) || b.id.localeCompare(a.id));
  clear(list);
  const currentId = state.current && state.current.chatId;
  for (const [heading, chats] of groups(shown)) {
    const items = chats.map((chat) => chatItem(chat, currentId));
    if (heading === null) { list.append(...items); continue; }
    list.append(h("li", { class: "chat-group" }, h("h2", { class: "group-title" }, heading), h("ul", {}, items)));
  }
  $("chat-list-empty").textContent = archivedView ? "No archived chats." : "No chats yet.";
  $("chat-list-empty").hidden = shown.length > 0;
  $("more-chats").hidden = state.chatsDone;
  $("show-archived").textContent = archivedView ? "\u2190 Back to chats" : "Archived chats";
  $("show-archived").setAttribute("aria-pressed", String(archivedView));
}

export function showArchived(on) {
  archivedView = on;
  resetChats();
  return loadChats();
}

export function touchChat(chatId) {
  const chat = state.chats.get(chatId);
  if (chat) {
    chat.updated_at = new Date().toISOString();
    renderChatList();
  }
}

export async function startChat(title, extra = {}) {
  if (archivedView) await showArchived(false);
  const chat = await api.createChat(title, extra);
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
  $("show-archived").addEventListener("click", () => showArchived(!archivedView));

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
