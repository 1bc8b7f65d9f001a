// chatserver web client: accounts, chats, the conversation and its live
// answers, attachments. It uses only the public contract (docs/). This
// module starts the page; each part of it is a module of its own.

import { api } from "./state.js";
import { ApiError } from "./api.js";
import { reportUncaughtErrors } from "./notices.js";
import { wireSession, showAuth, startSession, savedToken, takeSignInToken } from "./session.js";
import { wireAdmin } from "./admin.js";
import { wireChatList } from "./chatlist.js";
import { openChat, wireConversation } from "./conversation.js";
import { wireBranches } from "./branches.js";
import { wireComposer } from "./composer.js";
import { wireChatDialogs } from "./dialogs.js";
import { wireSearch } from "./search.js";
import { wirePortable } from "./portable.js";
import { wireChatSettings } from "./chatsettings.js";
import { wireUsage } from "./usage.js";
import { wireKeys } from "./keys.js";
import { wireSharing } from "./sharing.js";
import { wireOrganise } from "./organise.js";
import { wirePresets } from "./presets.js";
import { wireShortcuts } from "./shortcuts.js";
import { startRouting } from "./router.js";
import { $ } from "./dom.js";

const FIRST_RETRY_MS = 3000;
const RETRY_MS = 5000;

// Picks up the browser's session; while the server cannot be reached,
// it keeps trying rather than asking the user to log in again.
async function resume(retryMs) {
  const token = savedToken();
  if (!token) { showAuth(); return; }
  try {
    await startSession(token, null);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // logout() showed the form
    if (!api.token) return;
    $("loading").textContent = `The server cannot be reached (${err.message}). Retrying\u2026`;
    setTimeout(() => resume(RETRY_MS), retryMs);
  }
}

reportUncaughtErrors();
wireSession();
wireComposer();
wireChatList();
wireChatDialogs();
wireConversation();
wireBranches();
wireSearch();
wirePortable();
wireChatSettings();
wireUsage();
wireKeys();
wireSharing();
wireOrganise();
wirePresets();
wireShortcuts();
wireAdmin();
takeSignInToken(); // before routing reads the address
startRouting(openChat);
resume(FIRST_RETRY_MS);
