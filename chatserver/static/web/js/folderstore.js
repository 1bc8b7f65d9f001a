// The user's folders, as the chat list and the organise dialog show them.

import { api } from "./state.js";

let folders = [];

export const folderList = () => folders;

export async function loadFolders() {
  folders = (await api.listFolders()).items;
  return folders;
}

export function knowsFolder(id) {
  return folders.some((f) => f.id === id);
}
