// The messages of the open conversation: how each is drawn, kept in step
// with its live answer, stopped. The buttons that change the shown branch
// (edit, regenerate, the version switcher) are drawn here and handled in
// branches.js, which listens on the list: the tree's code uses this module,
// never the other way round.

import { state, api, files, RUNNING } from "./state.js";
import { ApiError } from "./api.js";
import { renderMarkdown } from "./markdown.js";
import { linkCitations, sourceLabel } from "./citations.js";
import { messageAttachment } from "./files.js";
import { reportError } from "./notices.js";
import { enhanceCodeBlocks } from "./codeblocks.js";
import { answerTools } from "./answertools.js";
import { h, clear, $, safeUrl, formatTime } from "./dom.js";
import { renderSteps } from "./steps.js";

export function addMessage(data, { prepend = false } = {}) {
  const conv = state.current;
  if (conv.messages.has(data.id)) return conv.messages.get(data.id);
  const model = { data, el: h("li", { class: `message ${data.role}`, id: `msg-${data.id}`, "data-message-id": data.id, tabindex: "-1" }),
    synced: false, metaKey: null, scheduled: false };
  conv.messages.set(data.id, model);
  const list = $("messages");
  if (prepend) list.prepend(model.el); else list.append(model.el);
  $("empty-chat").hidden = true;
  renderMessage(model);
  return model;
}

export function scheduleRender(model) {
  if (model.scheduled) return;
  model.scheduled = true;
  const run = () => {
    model.scheduled = false;
    const stick = nearBottom();
    renderMessage(model);
    if (stick) scrollToBottom();
  };
  // animation frames pause in hidden tabs; a timer keeps the model and page in step
  if (document.hidden) setTimeout(run, 100); else requestAnimationFrame(run);
}

const STATUS_LABEL = { pending: "waiting", streaming: "writing\u2026", failed: "failed", cancelled: "stopped" };

function lastAssistantId() {
  let last = null;
  for (const el of $("messages").children) if (el.classList.contains("assistant")) last = el.dataset.messageId;
  return last;
}

function renderMessage(model) {
  const { data, el } = model;
  el.dataset.status = data.status;
  el.setAttribute("aria-busy", String(RUNNING.has(data.status)));
  const isLast = data.role === "assistant" && lastAssistantId() === data.id;
  const metaKey = JSON.stringify([data.status, data.error, data.sources.length, isLast, data.file_ids.length,
    data.siblings, model.retry, data.model, data.finish_reason, data.usage, data.feedback]);

  if (model.metaKey === null) {
    el.append(
      h("div", { class: "message-head" },
        h("span", { class: "role" }, data.role === "user" ? "You" : "Assistant"),
        h("span", { class: "status", hidden: true }),
        h("time", { datetime: data.created_at, text: formatTime(data.created_at) })),
      h("details", { class: "reasoning", hidden: true }, h("summary", {}, "Reasoning"), h("div", { class: "reasoning-text" })),
      h("div", { class: "steps", hidden: true, "aria-label": "Tool calls" }),
      h("div", { class: data.role === "user" ? "content" : "content markdown" }),
      h("p", { class: "answer-info muted", hidden: true }),
      h("p", { class: "message-error", hidden: true }),
      h("ul", { class: "attachments", hidden: true, "aria-label": "Attachments" }),
      h("section", { class: "sources", hidden: true }),
      h("div", { class: "message-actions", hidden: true }));
  }

  const reasoning = el.querySelector(".reasoning");
  reasoning.hidden = !data.reasoning;
  if (data.reasoning) el.querySelector(".reasoning-text").textContent = data.reasoning;

  renderSteps(el.querySelector(".steps"), data.steps);

  const content = el.querySelector(".content");
  clear(content);
  if (data.role === "user") {
    content.append(h("p", { class: "user-text", text: data.content }));
  } else if (data.content) {
    content.append(enhanceCodeBlocks(renderMarkdown(data.content)));
    linkCitations(content, data.sources, el.querySelector(".sources"));
  } else if (RUNNING.has(data.status)) {
    content.append(h("span", { class: "typing muted" }, "Thinking"));
  }

  if (model.metaKey === metaKey) return;
  model.metaKey = metaKey;

  const status = el.querySelector(".status");
  status.className = `status ${data.status}`;
  const label = model.retry && RUNNING.has(data.status)
    ? `the model server is busy; retrying (try ${model.retry})\u2026` : STATUS_LABEL[data.status] || "";
  status.textContent = label;
  status.hidden = !label;

  const info = el.querySelector(".answer-info");
  clear(info);
  if (data.role === "assistant" && !RUNNING.has(data.status)) {
    if (data.model) info.append(h("span", { class: "answer-model", text: data.model }));
    if (data.finish_reason === "length") {
      info.append(h("span", { class: "cut-short", title: "The answer reached its token limit (max tokens or the model's context)" }, "cut short"));
    }
    if (data.usage && data.usage.completion_tokens != null) {
      info.append(h("span", { class: "answer-tokens", text: `${data.usage.prompt_tokens ?? "?"} + ${data.usage.completion_tokens} tokens` }));
    }
  }
  info.hidden = !info.children.length;

  const error = el.querySelector(".message-error");
  const stopped = "Stopped before the answer was finished.";
  const errorText = data.status === "cancelled"
    ? (data.error && !/^cancel+ed\.?$/i.test(data.error.trim()) ? `${stopped} (${data.error})` : stopped)
    : data.status === "failed" ? `The answer failed: ${data.error || "unknown error"}` : "";
  error.textContent = errorText;
  error.hidden = !errorText;

  const attachments = el.querySelector(".attachments");
  if (data.file_ids.length && !attachments.children.length) {
    for (const id of data.file_ids) attachments.append(messageAttachment(id, files));
  }
  attachments.hidden = !data.file_ids.length;

  const sources = el.querySelector(".sources");
  clear(sources);
  if (data.sources.length) {
    const list = h("ol");
    for (const source of data.sources) list.append(renderSource(source));
    sources.append(h("h3", {}, "Sources"), list);
  }
  sources.hidden = !data.sources.length;

  const actions = el.querySelector(".message-actions");
  clear(actions);
  const switcher = siblingSwitcher(data);
  if (switcher) actions.append(switcher);
  if (data.role === "user") {
    actions.append(h("button", { type: "button", class: "secondary edit" }, "Edit"));
  } else {
    if (RUNNING.has(data.status)) {
      actions.append(h("button", { type: "button", class: "secondary stop-one", onclick: () => stopMessage(data.id) }, "Stop"));
    } else if (isLast) {
      actions.append(h("button", { type: "button", class: "secondary regenerate" }, "Regenerate"));
    }
    if (!RUNNING.has(data.status)) actions.append(...answerTools(model, scheduleRender));
  }
  actions.hidden = !actions.children.length;
}

// "< i / n >" for a message with siblings; nothing for one without. Each
// button names the sibling it shows in data-sibling-id.
function siblingSwitcher(data) {
  const siblings = data.siblings || [];
  if (siblings.length < 2) return null;
  const at = siblings.indexOf(data.id);
  return h("span", { class: "branch-switcher", role: "group", "aria-label": "Versions" },
    h("button", { type: "button", class: "icon-button branch-prev", "aria-label": "Previous version",
      disabled: at <= 0 ? true : undefined, "data-sibling-id": siblings[at - 1] }, "\u2039"),
    h("span", { class: "branch-position" }, `${at + 1} / ${siblings.length}`),
    h("button", { type: "button", class: "icon-button branch-next", "aria-label": "Next version",
      disabled: at >= siblings.length - 1 ? true : undefined, "data-sibling-id": siblings[at + 1] }, "\u203a"));
}

function renderSource(source) {
  const title = sourceLabel(source);
  const href = safeUrl(source.url);
  const item = h("li", {},
    href ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, title) : h("span", {}, title));
  if (source.content) {
    item.append(h("details", {}, h("summary", {}, "snippet"), h("span", { class: "snippet", text: source.content })));
  }
  return item;
}

export function rerenderAll() {
  if (!state.current) return;
  for (const model of state.current.messages.values()) renderMessage(model);
}

export function runningIds() {
  if (!state.current) return [];
  return [...state.current.messages.values()]
    .filter((m) => m.data.role === "assistant" && RUNNING.has(m.data.status)).map((m) => m.data.id);
}

export function updateRunning() {
  const running = runningIds().length > 0;
  $("stop").hidden = !running;
}

export function watch(conv, model) {
  if (!conv.socket || conv.socket.watching.has(model.data.id)) return;
  model.synced = false; // chunks count only after the stream_content this request brings
  conv.socket.watch(model.data.id);
}

export async function stopMessage(id) {
  const conv = state.current;
  const model = conv && conv.messages.get(id);
  if (!model) return;
  try {
    model.data = await api.cancel(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      model.data = await api.getMessage(id).catch(() => model.data);
    } else {
      reportError(err, "Could not stop the answer");
      return;
    }
  }
  if (state.current !== conv) return;
  conv.socket && conv.socket.unwatch(id);
  scheduleRender(model);
  updateRunning();
}

function nearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

export function scrollToBottom() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}
