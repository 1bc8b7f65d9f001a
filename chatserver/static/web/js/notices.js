// What the user is told: notices on screen, and announcements for screen
// readers.

import { ApiError } from "./api.js";
import { h, $ } from "./dom.js";

export function notify(text, kind = "info") {
  const box = $("notices");
  // the same failure seen twice (a retry, a second request) is one notice
  for (const shown of box.children) {
    if (shown.classList.contains(kind) && shown.querySelector("p").textContent === text) return;
  }
  const close = h("button", { type: "button", "aria-label": "Dismiss notice" }, "\u00d7");
  const notice = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : undefined },
    h("p", { text }), close);
  close.addEventListener("click", () => notice.remove());
  box.append(notice);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => notice.remove(), kind === "error" ? 15000 : 6000);
}

export function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

export function reportError(err, what) {
  if (!err || err.name === "AbortError") return;
  if (err instanceof ApiError && err.status === 401) return; // the login form says it
  notify(what ? `${what}: ${err.message}` : err.message || String(err), "error");
}

export function reportUncaughtErrors() {
  window.addEventListener("error", (ev) => notify(`Something went wrong: ${ev.message}`, "error"));
  window.addEventListener("unhandledrejection", (ev) => reportError(ev.reason, "Something went wrong"));
}
