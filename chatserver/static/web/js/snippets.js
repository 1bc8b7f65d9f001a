// Search snippets as plain text: the Markdown marks of the stored message
// taken out, and the words searched for marked. Linear in the snippet.

// Markdown's markup at the start of a line, a code fence with its language,
// a link's brackets and address, and runs of emphasis marks or backticks
const MARKUP = /^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d{1,9}[.)]\s+)|`{3,}[\w+#-]*|!?\[([^[\]\n]*)\]\([^()\s]*\)|\]\([^()\s]*\)|[*_~`]+/gmu;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACE = /^$|\s/u;

// An emphasis run is a mark unless it sits inside a word (snake_case, 2*3)
// or stands alone between spaces (a * b); backticks are always marks.
function unmark(match, linkText, at, text) {
  if (linkText !== undefined) return linkText;
  if (!/^[*_~]+$/.test(match)) return "";
  const before = text.charAt(at - 1);
  const after = text.charAt(at + match.length);
  const inWord = ALNUM.test(before) && ALNUM.test(after);
  const alone = SPACE.test(before) && SPACE.test(after);
  return inWord || alone ? match : "";
}

export function plainText(snippet) {
  return snippet.replace(MARKUP, unmark).replace(/\s+/g, " ").trim();
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
