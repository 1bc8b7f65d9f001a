// The WebSocket half of the contract: one socket per open chat (and, with
// `path`, the chat list's socket: listsocket.js).
//
// Every assistant message that is pending or streaming is "watched": a
// stream_request is sent for it whenever a socket opens, so a reconnect
// (network blip, server restart, page reload) resumes it exactly: the
// server answers with stream_content (everything so far, which replaces
// what is on screen) and then chunks (which are appended).

const PING_EVERY_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class ChatSocket {
  constructor({ chatId, path, token, onFrame, onState, onConnectFailed }) {
    this.chatId = chatId;
    this.path = path || `/ws/chat/${encodeURIComponent(chatId)}`;
    this.token = token;             // () => current token
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.onConnectFailed = onConnectFailed || (async () => true);
    this.watching = new Set();
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.timers = {};
    this.lastPong = 0;
    this.wake = () => { if (!this.stopped && !this.isOpen()) this.reconnectNow(); };
    window.addEventListener("online", this.wake);
    document.addEventListener("visibilitychange", this.wake);
  }

  isOpen() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.wake);
    document.removeEventListener("visibilitychange", this.wake);
    Object.values(this.timers).forEach((t) => clearTimeout(t));
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, "chat closed"); } catch { /* already closed */ }
    }
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}${this.path}?token=${encodeURIComponent(this.token() || "")}`;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timers.retry);
    this.onState(this.attempt ? "reconnecting" : "connecting");
    let opened = false;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      opened = true;
      this.attempt = 0;
      this.lastPong = Date.now();
      this.onState("online");
      // chat events: messages and changes made in other tabs and devices
      this.send({ type: "subscribe" });
      for (const id of this.watching) this.send({ type: "stream_request", message_id: id });
      this.schedulePing();
    });
    ws.addEventListener("message", (ev) => {
      if (ws !== this.ws) return; // a frame from a socket we already replaced
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (frame && frame.type === "pong") { this.lastPong = Date.now(); return; }
      if (frame && frame.type === "complete") this.watching.delete(frame.message_id);
      if (frame && frame.error && frame.message_id) this.watching.delete(frame.message_id);
      this.onFrame(frame);
    });
    ws.addEventListener("close", async (ev) => {
      if (ws !== this.ws || this.stopped) return;
      this.ws = null;
      clearTimeout(this.timers.ping);
      clearTimeout(this.timers.pong);
      this.onState("offline");
      // A refused upgrade (401 expired token, 404 deleted chat) looks like a
      // plain close to a browser: ask the REST API what is wrong.
      if (!opened || ev.code === 4401 || ev.code === 4404) {
        let goOn = true;
        try { goOn = await this.onConnectFailed(ev.code); } catch { goOn = true; }
        if (!goOn || this.stopped) { this.stopped = true; return; }
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * base / 2;
    this.attempt++;
    this.onState("reconnecting", delay);
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.ws && this.ws.readyState === WebSocket.CONNECTING) return;
    this.attempt = 0;
    this.connect();
  }

  // Ping while open; no pong in time means a dead connection: drop and reconnect.
  schedulePing() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => {
      if (!this.isOpen()) return;
      const sent = Date.now();
      this.send({ type: "ping", timestamp: sent });
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => {
        if (this.lastPong < sent && this.ws) {
          const ws = this.ws;
          try { ws.close(4000, "no pong"); } catch { /* ignore */ }
          // the close event may take a while on a dead link: move on now
          ws.dispatchEvent(new CloseEvent("close", { code: 4000 }));
        }
      }, PONG_TIMEOUT_MS);
      this.schedulePing();
    }, PING_EVERY_MS);
  }

  send(frame) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Follow an assistant message until it is complete, failed or cancelled.
  watch(messageId) {
    if (this.watching.has(messageId)) return;
    this.watching.add(messageId);
    this.send({ type: "stream_request", message_id: messageId });
  }

  unwatch(messageId) { this.watching.delete(messageId); }
}
