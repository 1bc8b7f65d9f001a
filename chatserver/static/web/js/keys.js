// The API keys page: create a key with a name (its value is shown once, to
// copy), list the keys with when they were made and last used, delete one.

import { api } from "./state.js";
import { reportError } from "./notices.js";
import { h, clear, $, formatTime } from "./dom.js";

function showError(message) {
  $("key-error").textContent = message || "";
  $("key-error").hidden = !message;
}

function renderKeys(items) {
  const list = clear($("key-list"));
  $("key-list-empty").hidden = items.length > 0;
  for (const key of items) {
    const used = key.last_used_at ? `last used ${formatTime(key.last_used_at)}` : "never used";
    const remove = h("button", { type: "button", class: "secondary danger", "aria-label": `Delete key ${key.name}` }, "Delete");
    remove.addEventListener("click", () => deleteKey(key, remove));
    list.append(h("li", { "data-key-id": key.id },
      h("span", { class: "key-name", text: key.name }),
      h("code", { class: "key-prefix", text: `${key.prefix}\u2026` }),
      h("span", { class: "muted key-dates", text: `created ${formatTime(key.created_at)}, ${used}` }),
      remove));
  }
}

async function refresh() {
  try {
    // every page: the list is paginated, and a user may hold more keys than one page
    const items = [];
    let cursor = null;
    do {
      const page = await api.listKeys(cursor);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    renderKeys(items);
  } catch (err) {
    reportError(err, "Could not load your API keys");
  }
}

async function deleteKey(key, button) {
  if (!window.confirm(`Delete the key \u201c${key.name}\u201d? Programs using it stop working at once.`)) return;
  button.disabled = true;
  try {
    await api.deleteKey(key.id);
  } catch (err) {
    showError(err.message);
  }
  await refresh();
}

async function createKey(ev) {
  ev.preventDefault();
  const name = $("key-name").value.trim();
  if (!name) { showError("Give the key a name."); return; }
  showError("");
  try {
    const made = await api.createKey(name);
    $("key-name").value = "";
    $("new-key-value").value = made.key;
    $("new-key").hidden = false;
    $("new-key-value").select();
  } catch (err) {
    showError(err.message);
  }
  await refresh();
}

async function copyKey() {
  const input = $("new-key-value");
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    $("copy-key").textContent = "Copied";
  } catch {
    $("copy-key").textContent = "Press Ctrl+C to copy";
  }
}

// The key's value leaves the page when the dialog closes: it was shown once.
function forgetNewKey() {
  $("new-key-value").value = "";
  $("new-key").hidden = true;
  $("copy-key").textContent = "Copy";
  showError("");
}

export function wireKeys() {
  const dialog = $("keys-dialog");
  $("open-keys").addEventListener("click", () => {
    forgetNewKey();
    dialog.showModal();
    $("key-name").focus();
    refresh();
  });
  $("close-keys").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", forgetNewKey);
  $("key-form").addEventListener("submit", createKey);
  $("copy-key").addEventListener("click", copyKey);
}
