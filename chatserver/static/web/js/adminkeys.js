// Everyone's API keys on the administration page: newest first, one
// account's or everyone's, each revocable (it stops working at once, and
// what is open with it closes, on the server's side).

import { api } from "./state.js";
import { reportError } from "./notices.js";
import { h, clear, $, formatTime } from "./dom.js";

let cursor = null;
let owner = null; // {id, email} when showing one account's keys

function showError(message) {
  $("admin-error").textContent = message;
  $("admin-error").hidden = false;
}

async function revoke(key, row) {
  if (!window.confirm(`Revoke the key \u201c${key.name}\u201d of ${key.user_email}? Programs using it stop working at once.`)) return;
  $("admin-error").hidden = true;
  try {
    await api.adminRevokeKey(key.id);
  } catch (err) {
    // already gone: what the administrator wanted
    if (err.status !== 404) { showError(err.message); return; }
  }
  row.remove();
  $("admin-keys-empty").hidden = $("admin-keys").children.length > 0;
}

function keyRow(key) {
  const row = h("tr", { "data-key-id": key.id },
    h("td", { text: key.user_email }),
    h("td", { text: key.name }),
    h("td", {}, h("code", { text: `${key.prefix}\u2026` })),
    h("td", { text: formatTime(key.created_at) }),
    h("td", { text: key.last_used_at ? formatTime(key.last_used_at) : "never" }));
  row.append(h("td", { class: "admin-actions" },
    h("button", { type: "button", class: "link-button danger", text: "Revoke",
      "aria-label": `Revoke key ${key.name} of ${key.user_email}`, onclick: () => revoke(key, row) })));
  return row;
}

export async function loadKeys(more) {
  const page = await api.adminKeys(owner && owner.id, more ? cursor : null);
  if (!more) clear($("admin-keys"));
  $("admin-keys").append(...page.items.map(keyRow));
  cursor = page.next_cursor;
  $("admin-keys-more").hidden = !cursor;
  $("admin-keys-empty").hidden = $("admin-keys").children.length > 0;
  $("admin-keys-title").textContent = owner ? `API keys of ${owner.email}` : "API keys";
  $("admin-keys-all").hidden = !owner;
}

// one account's keys (null: everyone's)
export function showKeysOf(user) {
  owner = user ? { id: user.id, email: user.email } : null;
  loadKeys(false).catch((err) => reportError(err, "Could not load the API keys"));
}

export function wireAdminKeys() {
  $("admin-keys-more").addEventListener("click", () => loadKeys(true).catch((err) => reportError(err, "Could not load more keys")));
  $("admin-keys-all").addEventListener("click", () => showKeysOf(null));
  $("admin-dialog").addEventListener("close", () => { owner = null; });
}
