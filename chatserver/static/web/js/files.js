// Attachments: uploads with progress, status polling, previews, downloads.
// Previews and downloads need the bearer token, which an <img src> or an
// <a href> cannot send: they are fetched and shown through blob: URLs.

import { h, clear, formatBytes } from "./dom.js";

const POLL_MIN_MS = 300;
const POLL_MAX_MS = 3000;
const POLL_GIVE_UP_MS = 10 * 60 * 1000;

export class FileStore {
  constructor(api, notify) {
    this.api = api;
    this.notify = notify;
    this.files = new Map();    // id -> File (last seen)
    this.waiters = new Map();  // id -> Promise<File> while polling
    this.blobUrls = new Map(); // "preview:id" -> blob URL
  }

  remember(file) { this.files.set(file.id, file); return file; }

  async get(id) {
    if (this.files.has(id) && isSettled(this.files.get(id))) return this.files.get(id);
    return this.remember(await this.api.getFile(id));
  }

  // Poll GET /api/files/{id} until the file is ready or failed.
  untilSettled(id, onUpdate) {
    if (this.waiters.has(id)) {
      const p = this.waiters.get(id);
      if (onUpdate) p.then(onUpdate, () => {});
      return p;
    }
    const started = Date.now();
    const p = (async () => {
      let delay = POLL_MIN_MS;
      for (;;) {
        const file = this.remember(await this.api.getFile(id));
        if (onUpdate) onUpdate(file);
        if (isSettled(file) || Date.now() - started > POLL_GIVE_UP_MS) return file;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(POLL_MAX_MS, delay * 1.5);
      }
    })();
    this.waiters.set(id, p);
    p.finally(() => this.waiters.delete(id)).catch(() => {});
    return p;
  }

  async previewUrl(id) {
    const key = `preview:${id}`;
    if (!this.blobUrls.has(key)) {
      const blob = await this.api.filePreview(id);
      if (!blob.type.startsWith("image/")) throw new Error("the preview is not an image");
      this.blobUrls.set(key, URL.createObjectURL(blob));
    }
    return this.blobUrls.get(key);
  }

  async download(file) {
    const blob = await this.api.fileContent(file.id);
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: file.name || "download", hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  forgetAll() {
    for (const url of this.blobUrls.values()) URL.revokeObjectURL(url);
    this.blobUrls.clear();
    this.files.clear();
  }
}

export const isSettled = (file) => file.status === "ready" || file.status === "failed";

const STATUS_TEXT = {
  pending: "Waiting for processing\u2026",
  processing: "Processing\u2026",
  ready: "Ready",
  failed: "Failed",
};

// Fills `card` (an <li class="attachment">) for a File: name, size, status,
// preview (thumbnail or text excerpt), download button.
export function renderFileCard(card, file, store) {
  card.classList.toggle("failed", file.status === "failed");
  card.dataset.fileId = file.id;
  card.dataset.status = file.status;
  const body = card.querySelector(".att-body") || h("div", { class: "att-body" });
  clear(body);
  const thumbSlot = card.querySelector(".thumb-slot") || h("div", { class: "thumb-slot" });
  if (!thumbSlot.parentNode) card.prepend(thumbSlot);
  if (!body.parentNode) card.append(body);
  body.append(h("span", { class: "att-name", title: file.name, text: file.name }));
  const status = file.status === "failed" && file.error ? `Failed: ${file.error}` : STATUS_TEXT[file.status] || file.status;
  body.append(h("span", { class: "att-status", text: `${formatBytes(file.size)} \u00b7 ${status}` }));
  if (file.status === "ready") {
    if (file.has_preview_image) {
      if (!thumbSlot.querySelector("img")) {
        store.previewUrl(file.id).then((url) => {
          clear(thumbSlot).append(h("img", { class: "thumb", src: url, alt: `Preview of ${file.name}` }));
        }).catch(() => { /* no thumbnail: the text stays */ });
      }
    }
    if (file.preview_text) {
      body.append(h("p", { class: "excerpt", text: file.preview_text }));
    }
  }
  const download = h("button", {
    type: "button", class: "secondary", "aria-label": `Download ${file.name}`,
    onclick: () => store.download(file).catch((err) => store.notify(`Download failed: ${err.message}`, "error")),
  }, "Download");
  body.append(h("div", { class: "att-actions" }, download));
  return card;
}

// An attachment of a message on screen: loads the File, polls while it is processed.
export function messageAttachment(id, store) {
  const card = h("li", { class: "attachment", "data-file-id": id },
    h("div", { class: "att-body" }, h("span", { class: "att-status", text: "Loading attachment\u2026" })));
  store.get(id).then((file) => {
    renderFileCard(card, file, store);
    if (!isSettled(file)) store.untilSettled(id, (f) => renderFileCard(card, f, store)).catch(() => {});
  }).catch((err) => {
    clear(card).append(h("div", { class: "att-body" }, h("span", { class: "att-status", text: `Attachment unavailable (${err.message})` })));
  });
  return card;
}
