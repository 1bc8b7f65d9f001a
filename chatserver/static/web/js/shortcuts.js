// Keyboard shortcuts, and the list of them (press ? outside a text field).

import { state } from "./state.js";
import { copyText } from "./clipboard.js";
import { notify } from "./notices.js";
import { $ } from "./dom.js";

const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

function lastAnswer() {
  if (!state.current) return null;
  const answers = [...state.current.messages.values()].filter((m) => m.data.role === "assistant" && m.data.content);
  return answers.length ? answers[answers.length - 1].data.content : null;
}

const SHORTCUTS = [
  { keys: "?", what: "Show this list", test: (ev) => ev.key === "?" && !typing(ev.target),
    run: () => $("shortcuts-dialog").showModal() },
  { keys: "/ or Ctrl+K", what: "Search messages",
    test: (ev) => (ev.key === "/" && !typing(ev.target)) || ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k"),
    run: () => $("search-input").focus() },
  { keys: "Ctrl+Shift+O", what: "New chat", test: (ev) => ev.ctrlKey && ev.shiftKey && ev.key.toLowerCase() === "o",
    run: () => $("new-chat").click() },
  { keys: "Ctrl+Shift+C", what: "Copy the last answer", test: (ev) => ev.ctrlKey && ev.shiftKey && ev.key.toLowerCase() === "c",
    run: () => {
      const text = lastAnswer();
      if (text) copyText(text).then(() => notify("Answer copied."), () => notify("Copying is not allowed here.", "error"));
    } },
  { keys: "Ctrl+Shift+S", what: "Share this chat", test: (ev) => ev.ctrlKey && ev.shiftKey && ev.key.toLowerCase() === "s",
    run: () => { if (!$("share-chat").hidden) $("share-chat").click(); } },
  { keys: "Enter / Shift+Enter", what: "Send / new line in the message box" },
  { keys: "Esc", what: "Close a dialog or the chat list" },
];

export function wireShortcuts() {
  const table = $("shortcut-rows");
  for (const { keys, what } of SHORTCUTS) {
    const row = document.createElement("tr");
    const key = document.createElement("td");
    const kbd = document.createElement("kbd");
    kbd.textContent = keys;
    key.append(kbd);
    const meaning = document.createElement("td");
    meaning.textContent = what;
    row.append(key, meaning);
    table.append(row);
  }
  document.addEventListener("keydown", (ev) => {
    if (!state.user || document.querySelector("dialog[open]")) return;
    const shortcut = SHORTCUTS.find((s) => s.test && s.test(ev));
    if (!shortcut) return;
    ev.preventDefault();
    shortcut.run();
  });
  $("show-shortcuts").addEventListener("click", () => $("shortcuts-dialog").showModal());
  $("shortcuts-close").addEventListener("click", () => $("shortcuts-dialog").close());
}
