// Syntax highlighting of code blocks: one pass over the text, each step
// taking at least one character and every search starting where the last
// one ended, so the time is linear in the code's length whatever it holds.
// It knows comments, strings, numbers and keywords of common languages;
// anything else is left plain. The result is DOM nodes (text nodes inside
// spans), never HTML.

const C_LIKE = "break case catch class const continue default do else enum export extends finally for function if import in instanceof interface let new of package private protected public return static struct super switch this throw try typeof var void while yield async await";
const LANGUAGES = {
  js: { line: "//", block: true, quotes: "\"'`", words: C_LIKE },
  ts: { line: "//", block: true, quotes: "\"'`", words: `${C_LIKE} type implements namespace declare readonly abstract as` },
  c: { line: "//", block: true, quotes: "\"'", words: `${C_LIKE} int char long short float double unsigned signed sizeof typedef union goto extern auto register volatile bool` },
  java: { line: "//", block: true, quotes: "\"'", words: `${C_LIKE} implements abstract final native synchronized throws transient boolean int long char byte short float double` },
  go: { line: "//", block: true, quotes: "\"'`", words: "break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var" },
  rust: { line: "//", block: true, quotes: "\"", words: "as async await break const continue crate dyn else enum extern fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait type unsafe use where while" },
  python: { line: "#", block: false, quotes: "\"'", triple: true, words: "and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield" },
  ruby: { line: "#", block: false, quotes: "\"'", words: "begin break case class def do else elsif end ensure for if in module next redo rescue retry return self super then unless until when while yield" },
  sh: { line: "#", block: false, quotes: "\"'", words: "if then else elif fi for while until do done case esac function in select return local export readonly echo exit" },
  sql: { line: "--", block: true, quotes: "'\"", caseless: true, words: "select from where and or not insert into values update set delete create table index drop alter add join left right inner outer on group by order having limit offset as distinct union all case when then else end is in exists primary key references begin commit rollback returning with" },
  lua: { line: "--", block: false, quotes: "\"'", words: "and break do else elseif end for function goto if in local not or repeat return then until while" },
};
const ALIASES = {
  javascript: "js", jsx: "js", mjs: "js", node: "js", typescript: "ts", tsx: "ts", py: "python", python3: "python",
  rb: "ruby", bash: "sh", shell: "sh", zsh: "sh", console: "sh", cpp: "c", "c++": "c", h: "c", hpp: "c", cs: "java",
  csharp: "java", kotlin: "java", kt: "java", swift: "java", php: "java", scala: "java", golang: "go", rs: "rust",
  postgres: "sql", postgresql: "sql", mysql: "sql", sqlite: "sql",
};
const LITERALS = new Set(["true", "false", "null", "undefined", "None", "True", "False", "nil", "NULL", "nullptr"]);
const compiled = new Map();

function language(name) {
  const key = ALIASES[name] || name;
  const spec = LANGUAGES[key];
  if (!spec) return null;
  if (!compiled.has(key)) {
    const words = spec.words.split(" ");
    compiled.set(key, { ...spec, words: new Set(spec.caseless ? words.map((w) => w.toLowerCase()) : words) });
  }
  return compiled.get(key);
}

const isWordStart = (c) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c === "$";
const isDigit = (c) => c >= "0" && c <= "9";
const isWord = (c) => isWordStart(c) || isDigit(c);

// The end (exclusive) of the string opening at `i` with `quote`.
function stringEnd(text, i, quote, multiline) {
  let j = i + quote.length;
  while (j < text.length) {
    const c = text[j];
    if (c === "\\") { j += 2; continue; }
    if (text.startsWith(quote, j)) return j + quote.length;
    if (c === "\n" && !multiline) return j;
    j++;
  }
  return text.length;
}

// [[class or "", text], ...] covering `text` in order.
export function tokens(text, name) {
  const lang = language((name || "").toLowerCase());
  if (!lang) return [["", text]];
  const out = [];
  let plain = 0; // start of the plain text not yet emitted
  const emit = (cls, start, end) => {
    if (start > plain) out.push(["", text.slice(plain, start)]);
    out.push([cls, text.slice(start, end)]);
    plain = end;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (text.startsWith(lang.line, i)) {
      const end = text.indexOf("\n", i);
      emit("tok-c", i, end < 0 ? text.length : end);
      i = plain;
    } else if (lang.block && c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      emit("tok-c", i, end < 0 ? text.length : end + 2);
      i = plain;
    } else if (lang.quotes.includes(c)) {
      const triple = lang.triple && text.startsWith(c.repeat(3), i) ? c.repeat(3) : null;
      emit("tok-s", i, stringEnd(text, i, triple || c, Boolean(triple) || c === "`"));
      i = plain;
    } else if (isDigit(c) && (i === 0 || !isWord(text[i - 1]))) {
      let j = i + 1;
      while (j < text.length && (isWord(text[j]) || text[j] === ".")) j++;
      emit("tok-n", i, j);
      i = j;
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < text.length && isWord(text[j])) j++;
      const word = text.slice(i, j);
      if (LITERALS.has(word)) emit("tok-l", i, j);
      else if (lang.words.has(lang.caseless ? word.toLowerCase() : word)) emit("tok-k", i, j);
      i = j;
    } else {
      i++;
    }
  }
  if (plain < text.length) out.push(["", text.slice(plain)]);
  return out;
}

// Fill `code` (a <code> element) with its own text, highlighted.
export function highlight(code, name) {
  const text = code.textContent;
  const parts = tokens(text, name);
  if (parts.length === 1 && !parts[0][0]) return;
  code.textContent = "";
  for (const [cls, piece] of parts) {
    if (!cls) { code.append(piece); continue; }
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = piece;
    code.append(span);
  }
}
