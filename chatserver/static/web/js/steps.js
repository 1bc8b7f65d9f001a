// An answer's tool steps (docs/tools.md): one collapsible entry per call,
// showing the tool, its arguments and its output, updated in place while it
// runs so an entry the reader opened stays open.

import { h, clear } from "./dom.js";

const LABEL = { running: "running\u2026", done: "done", failed: "failed" };

// The steps with `step` in its place (a step ends with the id it started with).
export function withStep(steps, step) {
  const list = Array.isArray(steps) ? steps.slice() : [];
  if (!step || typeof step.id !== "string") return list;
  const at = list.findIndex((s) => s.id === step.id);
  if (at >= 0) list[at] = step; else list.push(step);
  return list;
}

export function renderSteps(container, steps) {
  const list = Array.isArray(steps) ? steps : [];
  container.hidden = !list.length;
  const kept = new Map([...container.children].map((el) => [el.dataset.stepId, el]));
  for (const step of list) {
    let el = kept.get(step.id);
    if (!el) {
      el = h("details", { class: "step", "data-step-id": step.id },
        h("summary", {}, h("span", { class: "step-tool" }), " ", h("span", { class: "step-status" })),
        h("div", { class: "step-body" }));
    }
    container.append(el);  // in call order
    kept.delete(step.id);
    fill(el, step);
  }
  for (const stale of kept.values()) stale.remove();
}

function fill(el, step) {
  el.dataset.status = step.status;
  el.querySelector(".step-tool").textContent = step.tool;
  el.querySelector(".step-status").textContent = LABEL[step.status] || step.status;
  const body = el.querySelector(".step-body");
  clear(body);
  body.append(h("p", { class: "step-label muted" }, "Arguments"),
    h("pre", { class: "step-arguments", text: JSON.stringify(step.arguments ?? {}, null, 2) }));
  if (step.status === "failed") {
    body.append(h("p", { class: "step-label muted" }, "Error"), h("pre", { class: "step-error", text: step.error || "" }));
  } else if (step.status === "done") {
    body.append(h("p", { class: "step-label muted" }, "Output"), h("pre", { class: "step-output", text: step.output || "" }));
  }
}
