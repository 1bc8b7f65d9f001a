// The chat list's socket (/ws/chats): what other tabs and devices do to any
// of the user's chats and folders (pin, archive, move, rename, delete;
// folders made, renamed, deleted), applied to this tab's list whichever
// chat it shows, or none.

import { state, api } from "./state.js";
import { ApiError } from "./api.js";
import { ChatSocket } from "./socket.js";
import { renderChatList, resetChats, loadChats } from "./chatlist.js";
import { loadFolders } from "./folderstore.js";

let socket = null;
let subscribedBefore = false;

export function startListSocket() {
  stopListSocket();
  socket = new ChatSocket({
    path: "/ws/chats",
    token: () => api.token,
    onFrame,
    onConnectFailed: stillSignedIn,
  });
  socket.start();
}

export function stopListSocket() {
  if (socket) socket.stop();
  socket = null;
  subscribedBefore = false;
}

async function stillSignedIn() {
  try {
    await api.me();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
  }
  return Boolean(api.token);
}

function onFrame(frame) {
  if (frame.type === "subscribed") resubscribed();
  else if (frame.type === "chat_updated" && frame.chat) {
    // a chat this tab has not loaded (archived, on a later page) takes its place too
    state.chats.set(frame.chat.id, { ...state.chats.get(frame.chat.id), ...frame.chat });
    renderChatList();
  } else if (frame.type === "chat_deleted") {
    state.chats.delete(frame.chat_id);
    renderChatList();
  } else if (frame.type && frame.type.startsWith("folder_")) {
    loadFolders().then(renderChatList, () => {});
  }
}

// Events sent while the socket was down are not replayed: read the list again.
function resubscribed() {
  if (!subscribedBefore) { subscribedBefore = true; return; }
  resetChats();
  loadChats();
}
