// The REST half of the public contract (docs/rest.md), with the bearer token.

export class ApiError extends Error {
  constructor(status, message, code, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: say what we know */ }
  if (body && typeof body.error === "string") {
    let message = body.error;
    if (Array.isArray(body.details) && body.details.length && body.details[0].msg && !message.includes(body.details[0].msg)) {
      message += `: ${body.details.map((d) => d.msg).join("; ")}`;
    }
    return new ApiError(response.status, message, body.code, body.details);
  }
  return new ApiError(response.status, `The server answered ${response.status} ${response.statusText || ""}`.trim(), "http_error");
}

export class Api {
  constructor() {
    this.token = null;
    this.onUnauthorized = () => {};
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  // fetch with the token; a 401 on an authenticated call means the session is over
  // `rawBody` (a FormData) goes as it is, with the browser's own Content-Type
  async raw(method, path, { body, rawBody, headers, signal, auth = true } = {}) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers({ ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers }),
        body: rawBody !== undefined ? rawBody : body !== undefined ? JSON.stringify(body) : undefined,
        signal,
        cache: "no-store",
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "Cannot reach the server. Check your connection and try again.", "network_error");
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401 && auth && this.token) this.onUnauthorized(error);
      throw error;
    }
    return response;
  }

  async json(method, path, options) {
    const response = await this.raw(method, path, options);
    if (response.status === 204) return null;
    return response.json();
  }

  get(path, options) { return this.json("GET", path, options); }
  post(path, body, options) { return this.json("POST", path, { ...options, body }); }
  patch(path, body, options) { return this.json("PATCH", path, { ...options, body }); }
  del(path, options) { return this.json("DELETE", path, options); }

  async blob(path) {
    const response = await this.raw("GET", path);
    return response.blob();
  }

  // accounts
  login(email, password) { return this.post("/api/auth/login", { email, password }, { auth: false }); }
  logout() { return this.post("/api/auth/logout", undefined, { auth: false }); }

  // administration (administrators only)
  adminUsers(q, cursor) {
    const query = new URLSearchParams({ limit: "50" });
    if (q) query.set("q", q);
    if (cursor) query.set("cursor", cursor);
    return this.get(`/api/admin/users?${query}`);
  }
  adminUpdate(id, changes) { return this.patch(`/api/admin/users/${encodeURIComponent(id)}`, changes); }
  adminKeys(userId, cursor) {
    const query = new URLSearchParams({ limit: "50" });
    if (userId) query.set("user_id", userId);
    if (cursor) query.set("cursor", cursor);
    return this.get(`/api/admin/keys?${query}`);
  }
  adminRevokeKey(id) { return this.del(`/api/admin/keys/${encodeURIComponent(id)}`); }
  adminUsage(by, days) { return this.get(`/api/admin/usage?by=${encodeURIComponent(by)}&days=${encodeURIComponent(days)}`); }
  register(email, password, displayName) {
    const body = { email, password };
    if (displayName) body.display_name = displayName;
    return this.post("/api/auth/register", body, { auth: false });
  }
  me() { return this.get("/api/users/me"); }

  // chats and messages
  // `filters`: {archived, folder_id, pinned} as GET /api/chats takes them
  listChats(cursor, filters = {}) {
    const query = new URLSearchParams({ limit: "30", ...filters });
    if (cursor) query.set("cursor", cursor);
    return this.get(`/api/chats?${query}`);
  }
  createChat(title, extra = {}) { return this.post("/api/chats", title ? { title, ...extra } : { ...extra }); }
  getChat(id) { return this.get(`/api/chats/${encodeURIComponent(id)}`); }
  renameChat(id, title) { return this.patch(`/api/chats/${encodeURIComponent(id)}`, { title }); }
  updateChat(id, changes) { return this.patch(`/api/chats/${encodeURIComponent(id)}`, changes); }
  models() { return this.get("/api/models"); }
  tools() { return this.get("/api/tools"); }
  usage(days) { return this.get(`/api/users/me/usage?days=${encodeURIComponent(days)}`); }
  deleteChat(id) { return this.del(`/api/chats/${encodeURIComponent(id)}`); }
  listKeys(cursor) { return this.get(`/api/keys?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`); }
  createKey(name) { return this.post("/api/keys", { name }); }
  deleteKey(id) { return this.del(`/api/keys/${encodeURIComponent(id)}`); }
  search(q) { return this.get(`/api/search?limit=30&q=${encodeURIComponent(q)}`); }
  listMessages(chatId, cursor) {
    return this.get(`/api/chats/${encodeURIComponent(chatId)}/messages?limit=30${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  }
  postMessage(chatId, content, fileIds) {
    const body = { content };
    if (fileIds && fileIds.length) body.file_ids = fileIds;
    return this.post(`/api/chats/${encodeURIComponent(chatId)}/messages`, body);
  }
  getMessage(id) { return this.get(`/api/messages/${encodeURIComponent(id)}`); }
  cancel(id) { return this.post(`/api/messages/${encodeURIComponent(id)}/cancel`); }
  regenerate(id) { return this.post(`/api/messages/${encodeURIComponent(id)}/regenerate`); }
  edit(id, content, fileIds) {
    const body = { content };
    if (fileIds && fileIds.length) body.file_ids = fileIds;
    return this.post(`/api/messages/${encodeURIComponent(id)}/edit`, body);
  }
  showBranch(chatId, messageId) {
    return this.post(`/api/chats/${encodeURIComponent(chatId)}/branch`, { message_id: messageId });
  }

  // sharing, folders, feedback, presets
  share(chatId) { return this.post(`/api/chats/${encodeURIComponent(chatId)}/shares`); }
  listShares() { return this.get("/api/shares"); }
  revokeShare(id) { return this.del(`/api/shares/${encodeURIComponent(id)}`); }
  listFolders() { return this.get("/api/folders"); }
  createFolder(name) { return this.post("/api/folders", { name }); }
  renameFolder(id, name) { return this.patch(`/api/folders/${encodeURIComponent(id)}`, { name }); }
  deleteFolder(id) { return this.del(`/api/folders/${encodeURIComponent(id)}`); }
  rate(messageId, rating, comment) {
    const body = { rating };
    if (comment) body.comment = comment;
    return this.post(`/api/messages/${encodeURIComponent(messageId)}/feedback`, body);
  }
  unrate(messageId) { return this.del(`/api/messages/${encodeURIComponent(messageId)}/feedback`); }
  listPresets() { return this.get("/api/presets"); }
  createPreset(preset) { return this.post("/api/presets", preset); }
  deletePreset(id) { return this.del(`/api/presets/${encodeURIComponent(id)}`); }

  // export and import
  exportChat(chatId, format) { return this.blob(`/api/chats/${encodeURIComponent(chatId)}/export?format=${format}`); }
  exportAll() { return this.blob("/api/export"); }
  // `background`: ask for a 202 and an import to follow (Prefer: respond-async)
  async importFile(file, { background = false } = {}) {
    const form = new FormData();
    form.append("file", file, file.name);
    const headers = background ? { Prefer: "respond-async" } : {};
    const response = await this.raw("POST", "/api/import", { rawBody: form, headers });
    return { accepted: response.status === 202, body: await response.json() };
  }
  importStatus(id) { return this.get(`/api/imports/${encodeURIComponent(id)}`); }

  // files
  listFiles() { return this.get("/api/files"); }
  getFile(id) { return this.get(`/api/files/${encodeURIComponent(id)}`); }
  deleteFile(id) { return this.del(`/api/files/${encodeURIComponent(id)}`); }
  fileContent(id) { return this.blob(`/api/files/${encodeURIComponent(id)}/content`); }
  filePreview(id) { return this.blob(`/api/files/${encodeURIComponent(id)}/preview`); }

  // XMLHttpRequest, because fetch cannot report upload progress.
  // Returns {promise, abort}.
  upload(file, chatId, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open("POST", "/api/files");
      if (this.token) xhr.setRequestHeader("Authorization", `Bearer ${this.token}`);
      xhr.responseType = "text";
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { /* handled below */ }
        if (xhr.status >= 200 && xhr.status < 300 && body) {
          onProgress(1);
          resolve(body);
          return;
        }
        const message = body && typeof body.error === "string" ? body.error : `Upload failed (${xhr.status})`;
        const error = new ApiError(xhr.status, message, body && body.code);
        if (xhr.status === 401 && this.token) this.onUnauthorized(error);
        reject(error);
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "The upload was interrupted (network error or file too large).", "network_error")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "Upload cancelled", "aborted")));
      const form = new FormData();
      if (chatId) form.append("chat_id", chatId);
      form.append("file", file, file.name);
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }
}
