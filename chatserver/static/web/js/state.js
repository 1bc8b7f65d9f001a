// The page's one store, and the API client and file cache that every part
// of the page shares.

import { Api } from "./api.js";
import { FileStore } from "./files.js";
import { notify } from "./notices.js";

export const RUNNING = new Set(["pending", "streaming"]);
export const DEFAULT_TITLE = "New chat";

export const api = new Api();
export const files = new FileStore(api, notify);

export const state = {
  user: null,
  chats: new Map(),      // id -> Chat
  chatCursor: null,
  chatsLoading: false,
  chatsDone: false,
  current: null,         // the open conversation, see openChat()
  uploads: [],           // composer attachments
  expiryTimer: null,
};
