// Citations: an answer's "[n]" (n a number of one of its sources) becomes a
// link that opens that source, its passage highlighted (docs/knowledge.md).

const CITATION = /\[(\d{1,3})\]/g;

// Replace [n] in the rendered answer's text with links to source n.
export function linkCitations(content, sources, list) {
  if (!sources.length) return;
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) if (!walker.currentNode.parentElement.closest("code, pre, a")) texts.push(walker.currentNode);
  for (const node of texts) {
    const text = node.nodeValue;
    if (!CITATION.test(text)) continue;
    CITATION.lastIndex = 0;
    const parts = document.createDocumentFragment();
    let at = 0;
    for (const match of text.matchAll(CITATION)) {
      const number = Number(match[1]);
      if (number < 1 || number > sources.length) continue;
      parts.append(text.slice(at, match.index));
      const link = document.createElement("a");
      link.href = "#";
      link.className = "citation";
      link.textContent = match[0];
      link.title = sourceLabel(sources[number - 1]);
      link.addEventListener("click", (event) => { event.preventDefault(); openSource(list, number); });
      parts.append(link);
      at = match.index + match[0].length;
    }
    parts.append(text.slice(at));
    node.replaceWith(parts);
  }
}

// "file name, page 3" for a passage of a file; the title otherwise.
export function sourceLabel(source) {
  const title = source.title || source.url || "Untitled source";
  return source.page ? `${title}, page ${source.page}` : title;
}

function openSource(list, number) {
  const item = list.querySelectorAll("ol > li")[number - 1];
  if (!item) return;
  for (const other of list.querySelectorAll("li.cited")) other.classList.remove("cited");
  item.classList.add("cited");
  const details = item.querySelector("details");
  if (details) details.open = true;
  item.scrollIntoView({ block: "nearest" });
}
