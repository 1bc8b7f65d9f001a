// The message box at the bottom: sending, and the files attached to the
// next message.

import { state, api, files, DEFAULT_TITLE } from "./state.js";
import { renderFileCard, isSettled } from "./files.js";
import { notify, reportError } from "./notices.js";
import { renderChatList, touchChat, startChat } from "./chatlist.js";
import { whenOpen } from "./router.js";
import { setHeader } from "./conversation.js";
import { addMessage, rerenderAll, watch, updateRunning, scrollToBottom, runningIds, stopMessage } from "./messages.js";
import { h, clear, $ } from "./dom.js";

function autosize() {
  const box = $("composer-input");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, 192)}px`;
}

async function send() {
  const box = $("composer-input");
  const content = box.value;
  if (!content.trim()) {
    notify("Type a message first.");
    box.focus();
    return;
  }
  if (state.uploads.some((u) => u.state === "uploading")) {
    notify("Wait until the files have finished uploading.");
    return;
  }
  const fileIds = state.uploads.filter((u) => u.file && u.state !== "failed").map((u) => u.file.id);
  const sendButton = $("send");
  sendButton.disabled = true;
  try {
    let conv = state.current;
    if (!conv || !conv.chatId) {
      const chat = await startChat(titleFrom(content));
      await whenOpen(chat.id);
      conv = state.current;
    }
    const posted = await api.postMessage(conv.chatId, content, fileIds);
    box.value = "";
    autosize();
    clearUploads({ keepFiles: true });
    if (state.current !== conv) return;
    addMessage(posted.user_message);
    const answer = addMessage(posted.assistant_message);
    rerenderAll();
    watch(conv, answer);
    updateRunning();
    scrollToBottom();
    const chat = state.chats.get(conv.chatId);
    if (chat && chat.title === DEFAULT_TITLE) {
      api.renameChat(chat.id, titleFrom(content)).then((renamed) => {
        state.chats.set(renamed.id, renamed);
        if (state.current && state.current.chatId === renamed.id) {
          state.current.chat = renamed;
          setHeader(renamed);
        }
        renderChatList();
      }).catch(() => {});
    }
    touchChat(conv.chatId);
  } catch (err) {
    reportError(err, "Could not send the message");
  } finally {
    sendButton.disabled = false;
    box.focus();
  }
}

function titleFrom(content) {
  const line = content.trim().split("\n")[0].trim();
  return line.length > 60 ? `${line.slice(0, 57)}\u2026` : line || DEFAULT_TITLE;
}

// Files belong to a chat (deleting the chat removes them): with no chat open,
// attaching starts one.
async function addFiles(list) {
  if (!list.length) return;
  if (!state.current || !state.current.chatId) {
    try {
      const chat = await startChat();
      await whenOpen(chat.id);
    } catch (err) {
      reportError(err, "Could not start a chat for the files");
      return;
    }
  }
  for (const file of list) {
    const upload = { local: file, file: null, state: "uploading", progress: 0, error: null, abort: null,
      el: h("li", { class: "attachment uploading" }) };
    state.uploads.push(upload);
    $("attachments").append(upload.el);
    renderUpload(upload);
    const chatId = state.current && state.current.chatId;
    const task = api.upload(file, chatId, (fraction) => {
      upload.progress = fraction;
      renderUpload(upload);
    });
    upload.abort = task.abort;
    task.promise.then((created) => {
      upload.file = files.remember(created);
      upload.state = "processing";
      renderUpload(upload);
      return files.untilSettled(created.id, (f) => {
        upload.file = f;
        if (isSettled(f)) upload.state = f.status === "failed" ? "failed" : "ready";
        if (state.uploads.includes(upload)) renderUpload(upload);
      });
    }).catch((err) => {
      upload.state = "failed";
      upload.error = err.message;
      if (state.uploads.includes(upload)) renderUpload(upload);
    });
  }
}

function renderUpload(upload) {
  const el = upload.el;
  const name = upload.local.name;
  el.dataset.state = upload.state;
  const remove = h("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${name}` }, "Remove");
  remove.addEventListener("click", () => removeUpload(upload));
  if (upload.file && upload.state !== "uploading") {
    clear(el);
    renderFileCard(el, upload.file, files);
    if (upload.state === "failed" && !upload.file.error) el.querySelector(".att-status").textContent = "Failed";
    el.querySelector(".att-actions").append(remove);
    return;
  }
  clear(el);
  el.classList.toggle("failed", upload.state === "failed");
  const pct = Math.round(upload.progress * 100);
  el.append(h("div", { class: "att-body" },
    h("span", { class: "att-name", title: name, text: name }),
    upload.state === "uploading"
      ? h("progress", { max: "100", value: String(pct), "aria-label": `Uploading ${name}` })
      : null,
    h("span", { class: "att-status", role: upload.state === "failed" ? "alert" : undefined,
      text: upload.state === "failed" ? upload.error : `Uploading ${pct}%` }),
    h("div", { class: "att-actions" }, remove)));
}

function removeUpload(upload) {
  if (upload.state === "uploading" && upload.abort) upload.abort();
  if (upload.file) api.deleteFile(upload.file.id).catch(() => {});
  state.uploads = state.uploads.filter((u) => u !== upload);
  upload.el.remove();
}

export function clearUploads({ keepFiles = false } = {}) {
  for (const upload of state.uploads) {
    if (!keepFiles && upload.state === "uploading" && upload.abort) upload.abort();
  }
  state.uploads = [];
  clear($("attachments"));
}

export function wireComposer() {
  const box = $("composer-input");
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      send();
    }
  });
  box.addEventListener("input", autosize);
  $("stop").addEventListener("click", () => { for (const id of runningIds()) stopMessage(id); });
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (ev) => {
    addFiles([...ev.target.files]);
    ev.target.value = "";
  });

  const view = $("chat-view");
  let depth = 0;
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  view.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth++;
    $("drop-overlay").hidden = false;
  });
  view.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
  });
  view.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) $("drop-overlay").hidden = true;
  });
  view.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth = 0;
    $("drop-overlay").hidden = true;
    addFiles([...ev.dataTransfer.files]);
  });
}
