// Search over all of the user's messages; a hit opens its chat at the
// message, paging in older history until it is there.

import { state, api } from "./state.js";
import { notify, reportError } from "./notices.js";
import { closeSidebar } from "./chatlist.js";
import { goToChat, whenOpen } from "./router.js";
import { loadOlder } from "./conversation.js";
import { highlightedSnippet } from "./snippets.js";
import { h, clear, $ } from "./dom.js";

function renderSearch(q, items) {
  $("search-results").hidden = false;
  $("search-title").textContent = items.length ? `Results for \u201c${q}\u201d` : `No results for \u201c${q}\u201d`;
  const list = clear($("search-list"));
  for (const hit of items) {
    const chat = state.chats.get(hit.chat_id);
    const label = h("span", { class: "hit-chat", text: chat ? chat.title : "Chat" });
    if (!chat) api.getChat(hit.chat_id).then((c) => { label.textContent = c.title; }).catch(() => {});
    const button = h("button", { type: "button", "data-message-id": hit.message_id },
      label, h("span", { class: "hit-snippet" }, highlightedSnippet(hit.snippet, q)));
    button.addEventListener("click", () => { jumpTo(hit.chat_id, hit.message_id); closeSidebar(); });
    list.append(h("li", {}, button));
  }
}

async function jumpTo(chatId, messageId) {
  if (!state.current || state.current.chatId !== chatId) {
    goToChat(chatId);
    try {
      await whenOpen(chatId);
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

export function wireSearch() {
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
}
