// The address names the open chat (#/chat/<id>), so a reload or the back
// button comes back to the same conversation.

import { state } from "./state.js";
import { reportError } from "./notices.js";

let open = null;

// The conversation both opens chats and leaves deleted ones: it hands its
// opener over at start-up rather than the two modules importing each other.
export function startRouting(openChat) {
  open = openChat;
  window.addEventListener("hashchange", () => { route().catch((err) => reportError(err)); });
}

export function goToChat(chatId) {
  const hash = chatId ? `#/chat/${chatId}` : "#/";
  if (location.hash !== hash) location.hash = hash; // route() runs on hashchange
  else route();
}

export async function route() {
  if (!state.user) return;
  const m = location.hash.match(/^#\/chat\/([0-9a-fA-F-]{36})$/);
  const chatId = m ? m[1].toLowerCase() : null;
  if (state.current && state.current.chatId === chatId && chatId) return;
  await open(chatId);
}

// Resolves once the chat is open and its socket exists, so what is sent
// next is followed live.
export async function whenOpen(chatId, timeoutMs = 10000) {
  const started = Date.now();
  while (!(state.current && state.current.chatId === chatId && state.current.socket)) {
    if (Date.now() - started > timeoutMs) throw new Error("the chat did not open in time");
    await new Promise((r) => setTimeout(r, 30));
  }
}
