// The administration page (administrators only; the server refuses everyone
// else): accounts with their role, state and quotas, their API keys
// (adminkeys.js), and usage by model.

import { api, state } from "./state.js";
import { reportError } from "./notices.js";
import { h, clear, $ } from "./dom.js";
import { loadKeys, showKeysOf, wireAdminKeys } from "./adminkeys.js";

const DAYS = 30;
let cursor = null;

const quotaText = (value) => (value === null ? "default" : value === 0 ? "none" : String(value));

async function change(user, changes) {
  $("admin-error").hidden = true;
  try {
    const updated = await api.adminUpdate(user.id, changes);
    $(`admin-user-${user.id}`).replaceWith(userRow(updated));
  } catch (err) {
    $("admin-error").textContent = err.message;
    $("admin-error").hidden = false;
  }
}

function askQuota(user, field, what) {
  const answer = prompt(`${what} a day for ${user.email} (empty: the server's default, 0: no limit)`,
    user.quota[field] === null ? "" : String(user.quota[field]));
  if (answer === null) return;
  const value = answer.trim() === "" ? null : Number(answer);
  if (value !== null && !(Number.isInteger(value) && value >= 0)) {
    $("admin-error").textContent = "A quota is a whole number, 0 or more.";
    $("admin-error").hidden = false;
    return;
  }
  change(user, { quota: { [field]: value } });
}

function userRow(user) {
  const self = state.user && user.id === state.user.id;
  const admin = user.role === "admin";
  return h("tr", { id: `admin-user-${user.id}` },
    h("td", { text: user.email }),
    h("td", { text: user.role }),
    h("td", { text: user.disabled ? "disabled" : "active" }),
    h("td", { text: quotaText(user.quota.messages_per_day) }),
    h("td", { text: quotaText(user.quota.tokens_per_day) }),
    h("td", { text: user.last_active_at ? new Date(user.last_active_at).toLocaleString() : "never" }),
    h("td", { class: "admin-actions" },
      self ? null : h("button", { type: "button", class: "link-button", text: admin ? "Remove admin" : "Make admin",
        "aria-label": `${admin ? "Remove admin" : "Make admin"} ${user.email}`,
        onclick: () => change(user, { role: admin ? "user" : "admin" }) }),
      self ? null : h("button", { type: "button", class: "link-button", text: user.disabled ? "Enable" : "Disable",
        "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.email}`,
        onclick: () => change(user, { disabled: !user.disabled }) }),
      h("button", { type: "button", class: "link-button", text: "Messages quota",
        "aria-label": `Messages quota of ${user.email}`, onclick: () => askQuota(user, "messages_per_day", "Messages") }),
      h("button", { type: "button", class: "link-button", text: "Tokens quota",
        "aria-label": `Tokens quota of ${user.email}`, onclick: () => askQuota(user, "tokens_per_day", "Tokens") }),
      h("button", { type: "button", class: "link-button", text: "API keys",
        "aria-label": `API keys of ${user.email}`, onclick: () => showKeysOf(user) })));
}

async function loadUsers(more) {
  const page = await api.adminUsers($("admin-q").value.trim(), more ? cursor : null);
  if (!more) clear($("admin-users"));
  $("admin-users").append(...page.items.map(userRow));
  cursor = page.next_cursor;
  $("admin-more").hidden = !cursor;
}

async function loadUsage() {
  const report = await api.adminUsage("model", DAYS);
  const rows = clear($("admin-usage"));
  for (const item of report.items) {
    rows.append(h("tr", {},
      h("td", { text: item.key || "\u2014" }), h("td", { text: String(item.messages) }),
      h("td", { text: String(item.prompt_tokens) }), h("td", { text: String(item.completion_tokens) }),
      h("td", { text: String(item.thumbs_up) }), h("td", { text: String(item.thumbs_down) })));
  }
}

async function showAdmin() {
  $("admin-error").hidden = true;
  try {
    await Promise.all([loadUsers(false), loadKeys(false), loadUsage()]);
  } catch (err) {
    reportError(err, "Could not load the administration page");
    return;
  }
  $("admin-dialog").showModal();
}

export function wireAdmin() {
  wireAdminKeys();
  $("open-admin").addEventListener("click", showAdmin);
  $("admin-close").addEventListener("click", () => $("admin-dialog").close());
  $("admin-more").addEventListener("click", () => loadUsers(true).catch((err) => reportError(err, "Could not load more accounts")));
  $("admin-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadUsers(false).catch((err) => reportError(err, "Could not search the accounts"));
  });
}
