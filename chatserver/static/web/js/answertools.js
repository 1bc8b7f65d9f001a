// The tools under a finished answer: copy it (its Markdown, as written),
// and thumbs up or down with an optional comment, kept with the message on
// the server. Pressing the chosen thumb again takes the rating back.

import { api } from "./state.js";
import { reportError } from "./notices.js";
import { copyButton } from "./clipboard.js";
import { h, $ } from "./dom.js";

async function rate(model, rating, rerender) {
  const current = model.data.feedback;
  try {
    model.data = current && current.rating === rating
      ? await api.unrate(model.data.id)
      : await api.rate(model.data.id, rating, current && current.comment);
    rerender(model);
  } catch (err) {
    reportError(err, "Could not save your feedback");
  }
}

function askComment(model, rerender) {
  const dialog = $("feedback-dialog");
  const input = $("feedback-comment");
  const feedback = model.data.feedback;
  input.value = (feedback && feedback.comment) || "";
  $("feedback-error").hidden = true;
  const form = $("feedback-form");
  const done = () => {
    form.onsubmit = null;
    $("feedback-cancel").onclick = null;
    if (dialog.open) dialog.close();
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      model.data = await api.rate(model.data.id, model.data.feedback.rating, input.value.trim());
      rerender(model);
      done();
    } catch (err) {
      $("feedback-error").textContent = err.message;
      $("feedback-error").hidden = false;
    }
  };
  $("feedback-cancel").onclick = done;
  dialog.showModal();
  input.focus();
}

const SVG = "http://www.w3.org/2000/svg";
// a thumb drawn as a line icon (no emoji font needed); `down` turns it over
function thumbIcon(down) {
  const svg = document.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({ width: "18", height: "18", viewBox: "0 0 24 24", fill: "none", stroke: "currentColor",
    "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" })) {
    svg.setAttribute(k, v);
  }
  if (down) svg.setAttribute("class", "flipped");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M7 10v11M7 10l4-8a3 3 0 0 1 3 3.5L13.5 10h6a2 2 0 0 1 2 2.4l-1.6 7A2 2 0 0 1 18 21H4a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1z");
  svg.append(path);
  return svg;
}

// The buttons for a finished answer `model`; `rerender(model)` redraws it.
export function answerTools(model, rerender) {
  const feedback = model.data.feedback;
  const thumb = (rating, label) => h("button", {
    type: "button", class: `secondary thumb${feedback && feedback.rating === rating ? " chosen" : ""}`,
    "aria-label": label, title: label, "aria-pressed": String(Boolean(feedback && feedback.rating === rating)),
    onclick: () => rate(model, rating, rerender),
  }, thumbIcon(rating < 0));
  const tools = [
    copyButton("Copy", () => model.data.content, "copy-answer"),
    thumb(1, "Good answer"),
    thumb(-1, "Bad answer"),
  ];
  if (feedback) {
    tools.push(h("button", { type: "button", class: "link-button comment", onclick: () => askComment(model, rerender) },
      feedback.comment ? "Edit comment" : "Add a comment"));
  }
  return tools;
}
