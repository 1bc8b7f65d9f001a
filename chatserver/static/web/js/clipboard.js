// Copying text for the copy buttons: the Clipboard API where the page may
// use it (https or localhost), else a hidden textarea and execCommand.

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copying is not allowed here");
  } finally {
    area.remove();
  }
}

// A button that copies what `text()` returns and says so for a moment.
export function copyButton(label, text, className = "copy") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `secondary ${className}`;
  button.textContent = label;
  button.addEventListener("click", async () => {
    try {
      await copyText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}
