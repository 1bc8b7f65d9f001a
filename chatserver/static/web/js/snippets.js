// Search snippets as plain text: the Markdown marks of the stored message
// taken out, and the words searched for marked. Linear in the snippet.

// Markdown's markup characters at the start of a line or around words
const MARKUP = /^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d{1,9}[.)]\s+)|[*_~`]+|!?\[|\]\([^()\s]*\)|\]/gm;

export function plainText(snippet) {
  return snippet.replace(MARKUP, "").replace(/\s+/g, " ").trim();
}

function words(q) {
  return [...new Set(q.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [])].filter((w) => w.length > 1 || /\p{N}/u.test(w));
}

// A fragment of `snippet` as text with each word of `q` (and words starting with one) in <mark>.
export function highlightedSnippet(snippet, q) {
  const text = plainText(snippet);
  const frag = document.createDocumentFragment();
  const wanted = words(q);
  let plain = 0;
  // word by word: a word of the text is marked when it starts with a searched word
  for (const match of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const word = match[0].toLowerCase();
    if (!wanted.some((w) => word.startsWith(w))) continue;
    frag.append(text.slice(plain, match.index));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(match.index, match.index + match[0].length);
    frag.append(mark);
    plain = match.index + match[0].length;
  }
  frag.append(text.slice(plain));
  return frag;
}
