// The organise dialog of the open chat: pin it, archive it, move it to a
// folder; and the folders themselves (add, rename, delete).

import { state, api } from "./state.js";
import { notify, reportError } from "./notices.js";
import { renderChatList } from "./chatlist.js";
import { folderList, loadFolders } from "./folderstore.js";
import { h, clear, $ } from "./dom.js";

function fillFolders(selected) {
  const select = $("organise-folder");
  clear(select);
  select.append(h("option", { value: "" }, "No folder"));
  for (const f of folderList()) select.append(h("option", { value: f.id, text: f.name }));
  select.value = selected || "";
  const admin = clear($("organise-folders"));
  for (const folder of folderList()) admin.append(folderRow(folder));
}

function folderRow(folder) {
  const name = h("span", { class: "folder-name", text: folder.name });
  const rename = h("button", { type: "button", class: "link-button" }, "Rename");
  const remove = h("button", { type: "button", class: "link-button danger-text" }, "Delete");
  rename.addEventListener("click", () => {
    const input = h("input", { type: "text", value: folder.name, maxlength: "100", "aria-label": `New name for ${folder.name}` });
    const save = h("button", { type: "button", class: "secondary" }, "Save");
    save.addEventListener("click", () => change(() => api.renameFolder(folder.id, input.value.trim())));
    name.replaceWith(input);
    rename.replaceWith(save);
    input.focus();
  });
  remove.addEventListener("click", () => change(() => api.deleteFolder(folder.id),
    `Folder \u201c${folder.name}\u201d deleted; its chats are kept.`));
  return h("li", {}, name, rename, remove);
}

// run a folder change, then show the folders (and the list) as they are now
async function change(call, done) {
  const error = $("organise-error");
  error.hidden = true;
  try {
    await call();
    const keep = $("organise-folder").value;
    await loadFolders();
    // chats moved out of a deleted folder arrive as chat_updated for the open one; the list reloads the rest
    for (const chat of state.chats.values()) {
      if (chat.folder_id && !folderList().some((f) => f.id === chat.folder_id)) chat.folder_id = null;
    }
    fillFolders(folderList().some((f) => f.id === keep) ? keep : "");
    renderChatList();
    if (done) notify(done);
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
}

async function openOrganise() {
  const conv = state.current;
  if (!conv || !conv.chat) return;
  try {
    await loadFolders();
  } catch (err) {
    reportError(err, "Could not load your folders");
    return;
  }
  const chat = state.chats.get(conv.chatId) || conv.chat;
  $("organise-pinned").checked = Boolean(chat.pinned);
  $("organise-archived").checked = Boolean(chat.archived);
  $("organise-new-folder").value = "";
  $("organise-error").hidden = true;
  fillFolders(chat.folder_id);
  $("organise-dialog").showModal();
}

async function save(ev) {
  ev.preventDefault();
  const conv = state.current;
  if (!conv || !conv.chat) return;
  const changes = { pinned: $("organise-pinned").checked, archived: $("organise-archived").checked,
    folder_id: $("organise-folder").value || null };
  try {
    const chat = await api.updateChat(conv.chatId, changes);
    const before = state.chats.get(chat.id) || conv.chat;
    conv.chat = { ...conv.chat, ...chat };
    state.chats.set(chat.id, { ...before, ...chat });
    renderChatList();
    $("organise-dialog").close();
    if (chat.archived && !before.archived) notify("Chat archived. It is listed under \u201cArchived chats\u201d.");
  } catch (err) {
    $("organise-error").textContent = err.message;
    $("organise-error").hidden = false;
  }
}

export function showOrganiseButton(chat) {
  $("organise-chat").hidden = !chat;
}

export function wireOrganise() {
  $("organise-chat").addEventListener("click", openOrganise);
  $("organise-form").addEventListener("submit", save);
  $("organise-cancel").addEventListener("click", () => $("organise-dialog").close());
  $("organise-add-folder").addEventListener("click", () => {
    const name = $("organise-new-folder").value.trim();
    if (!name) return;
    change(() => api.createFolder(name)).then(() => {
      const created = folderList().find((f) => f.name === name);
      if (!created) return;
      $("organise-new-folder").value = "";
      $("organise-folder").value = created.id;
    });
  });
}
