// The share dialog of the open chat: make a link to a read-only copy of
// what the chat shows now, copy or open it, and revoke links at once; and
// the list of every link the user has made, to find and revoke any of them.

import { state, api } from "./state.js";
import { reportError } from "./notices.js";
import { copyButton } from "./clipboard.js";
import { h, clear, $, formatTime } from "./dom.js";

// `all`: the list of every link (each names its chat) rather than the open chat's
function shareRow(share, all) {
  const field = h("input", { type: "text", readonly: true, value: share.url, class: "share-url",
    "aria-label": `Link shared ${formatTime(share.created_at)}` });
  const revoke = h("button", { type: "button", class: "secondary danger revoke" }, "Revoke");
  revoke.addEventListener("click", async () => {
    try {
      await api.revokeShare(share.id);
      await (all ? renderAllShares() : renderShares());
    } catch (err) {
      reportError(err, "Could not revoke the link");
    }
  });
  return h("li", { "data-share-id": share.id },
    all ? h("strong", { class: "share-title", text: share.title }) : null,
    field,
    h("div", { class: "share-actions" },
      copyButton("Copy link", () => share.url, "copy-link"),
      h("a", { href: share.url, target: "_blank", rel: "noopener noreferrer" }, "Open"),
      revoke),
    h("p", { class: "muted share-meta",
      text: `${share.message_count} message${share.message_count === 1 ? "" : "s"}, shared ${formatTime(share.created_at)}` }));
}

async function renderShares() {
  const conv = state.current;
  const { items } = await api.listShares();
  const mine = items.filter((s) => conv && s.chat_id === conv.chatId);
  const list = clear($("share-list"));
  for (const share of mine) list.append(shareRow(share, false));
  $("share-empty").hidden = mine.length > 0;
}

async function renderAllShares() {
  const { items } = await api.listShares();
  const list = clear($("links-list"));
  for (const share of items) list.append(shareRow(share, true));
  $("links-empty").hidden = items.length > 0;
}

async function openAllLinks() {
  try {
    await renderAllShares();
  } catch (err) {
    reportError(err, "Could not load your links");
    return;
  }
  $("links-dialog").showModal();
}

async function openShare() {
  if (!state.current || !state.current.chat) return;
  $("share-error").hidden = true;
  try {
    await renderShares();
  } catch (err) {
    reportError(err, "Could not load your links");
    return;
  }
  $("share-dialog").showModal();
}

async function createShare() {
  const conv = state.current;
  if (!conv) return;
  try {
    await api.share(conv.chatId);
    await renderShares();
    const field = $("share-list").querySelector(".share-url");
    if (field) { field.focus(); field.select(); }
  } catch (err) {
    $("share-error").textContent = err.code === "empty_chat" ? "Send a message first: there is nothing to share yet." : err.message;
    $("share-error").hidden = false;
  }
}

export function showShareButton(chat) {
  $("share-chat").hidden = !chat;
}

export function wireSharing() {
  $("share-chat").addEventListener("click", openShare);
  $("share-create").addEventListener("click", createShare);
  $("share-close").addEventListener("click", () => $("share-dialog").close());
  $("open-links").addEventListener("click", openAllLinks);
  $("links-close").addEventListener("click", () => $("links-dialog").close());
}
