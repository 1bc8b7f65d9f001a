// Export (the open chat as Markdown, every chat as conversations.json) and
// import (a conversations.json or a ChatGPT export ZIP) from the page.

import { state, api } from "./state.js";
import { notify, reportError } from "./notices.js";
import { resetChats, loadChats } from "./chatlist.js";
import { h, $ } from "./dom.js";

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function exportChat() {
  const conv = state.current;
  if (!conv || !conv.chatId) return;
  try {
    const title = (conv.chat && conv.chat.title) || "chat";
    download(await api.exportChat(conv.chatId, "markdown"), `${title.replace(/[^\w\- ]+/g, "").trim() || "chat"}.md`);
  } catch (err) {
    reportError(err, "Could not export the chat");
  }
}

async function exportAll() {
  try {
    download(await api.exportAll(), "conversations.json");
  } catch (err) {
    reportError(err, "Could not export your chats");
  }
}

// files larger than this import in the background, with progress shown
const BACKGROUND_BYTES = 1024 * 1024;
const POLL_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// follow a background import until it ends; its counts, or an Error with the server's reason
async function followImport(started, result) {
  let status = started;
  while (status.status === "queued" || status.status === "running") {
    result.textContent = status.total == null ? "Importing\u2026" : `Importing\u2026 ${status.done} / ${status.total}`;
    await sleep(POLL_MS);
    status = await api.importStatus(status.id);
  }
  if (status.status === "failed") throw new Error(status.error || "the import failed");
  return status;
}

async function importChosen() {
  const input = $("import-input");
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  const result = $("import-result");
  result.textContent = `Importing ${file.name}\u2026`;
  try {
    const { accepted, body } = await api.importFile(file, { background: file.size > BACKGROUND_BYTES });
    const counts = accepted ? await followImport(body, result) : body;
    result.textContent = `Imported ${counts.imported} chat${counts.imported === 1 ? "" : "s"}, skipped ${counts.skipped}.`;
    notify(result.textContent);
    resetChats();
    await loadChats();
  } catch (err) {
    result.textContent = `Import failed: ${err.message}`;
    reportError(err, "Could not import the file");
  }
}

export function wirePortable() {
  $("export-chat").addEventListener("click", exportChat);
  $("export-all").addEventListener("click", exportAll);
  $("import-chats").addEventListener("click", () => $("import-input").click());
  $("import-input").addEventListener("change", importChosen);
}
