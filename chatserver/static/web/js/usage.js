// The usage panel: the user's answers and tokens by day and model.

import { api } from "./state.js";
import { reportError } from "./notices.js";
import { h, clear, $ } from "./dom.js";

const DAYS = 30;

function allowanceText(what, allowance) {
  if (allowance.limit === null) return `${allowance.used} ${what} (no limit)`;
  return `${allowance.used} of ${allowance.limit} ${what}, ${allowance.left} left`;
}

async function showUsage() {
  let report;
  let me;
  try {
    [report, me] = await Promise.all([api.usage(DAYS), api.me()]);
  } catch (err) {
    reportError(err, "Could not load your usage");
    return;
  }
  const rows = $("usage-rows");
  clear(rows);
  for (const item of report.items) {
    rows.append(h("tr", {},
      h("td", { text: item.day }), h("td", { text: item.model || "\u2014" }), h("td", { text: String(item.messages) }),
      h("td", { text: String(item.prompt_tokens) }), h("td", { text: String(item.completion_tokens) })));
  }
  $("usage-empty").hidden = report.items.length > 0;
  $("quota-today").textContent = `Today (UTC): ${allowanceText("messages", me.quota.messages)}; ${allowanceText("tokens", me.quota.tokens)}.`;
  $("usage-dialog").showModal();
}

export function wireUsage() {
  $("show-usage").addEventListener("click", showUsage);
  $("usage-close").addEventListener("click", () => $("usage-dialog").close());
}
