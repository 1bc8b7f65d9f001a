"""The built-in backend: no model, just PostgreSQL full-text search. It cuts
the attached files, the user's other files, earlier answers and the passages
of files a model would be given (context.py: the chat's knowledge, files too
long to read whole; cited with file, page and passage) into sentences,
ranks the sentences against the question (ts_rank, attached files weighted
up), and quotes the best ones once each. A passage the search found by
meaning (vectors) holding none of the question's words is quoted from its
start after those, where room is left. It says plainly what it is: every
answer opens with one short sentence, and the first of a conversation also
says how the search works.

What the user wrote is never a source (they know it already), nor is an
earlier built-in answer (it only repeats passages of files), nor the text of
an image (it merely describes the image)."""

from __future__ import annotations

import re

from chatserver.ai.base import Backend, Write
from chatserver.ai.context import Context
from chatserver.config import Settings
from chatserver.data import chats, files, messages

MAX_PASSAGES = 4
MAX_FILES = 20  # the user's best-matching files read besides the attached ones
MAX_ANSWERS = 20
ATTACHED_WEIGHT = 2.0
LONG_SENTENCE = 400  # a longer "sentence" (a run-on, a table) is quoted around its matching words
HEADLINE = "MaxWords=50, MinWords=20, ShortWord=2, StartSel=\"\", StopSel=\"\""
# Every built-in answer, of this version and of earlier ones, starts so; such
# answers are never quoted (they only repeat passages of files).
SIGNATURE = "No AI model is configured on this server"
LEAD = SIGNATURE + ", so the built-in search answers."
HOW = ("It looks for the words of your message in your files and earlier answers and quotes the sentences "
       "that match best. It is not a language model and does not compose answers of its own.")
MODEL = "builtin"

_BULLET = re.compile(r"(?:[-*\u2022\u00b7\u2013]|\d{1,3}[.)])\s")
_TERMINAL = ".!?:;"
# a sentence ends at . ! or ? (and any closing quote or bracket) before a space and a capital or digit
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "prof", "st", "no", "vs", "approx", "fig", "cf"}
_MARKER = re.compile(r"^\[cut: .*\]$")  # the extractor's note that it kept only the start of a text


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace collapsed. A blank line or a bulleted
    line starts a new one; other line breaks (a PDF's wrapped lines) do not,
    except after a short line without closing punctuation (a heading)."""
    found: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        paragraphs: list[str] = []
        for line in (line.strip() for line in block.split("\n")):
            if not line:
                continue
            previous = paragraphs[-1] if paragraphs else ""
            heading = len(previous) < 40 and previous[-1:] not in _TERMINAL
            if not paragraphs or _BULLET.match(line) or heading or previous[-1] in _TERMINAL:
                paragraphs.append(line)
            else:
                paragraphs[-1] = previous + " " + line
        for paragraph in paragraphs:
            found += _split_sentences(" ".join(paragraph.split()))
    return [s for s in found if not _MARKER.match(s)]


def _split_sentences(paragraph: str) -> list[str]:
    parts, start = [], 0
    for end in _SENTENCE_END.finditer(paragraph):
        word = paragraph[start:end.start()].rsplit(" ", 1)[-1].lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        parts.append(paragraph[start:end.end()].strip())
        start = end.end()
    parts.append(paragraph[start:].strip())
    return [p for p in parts if p]


class BuiltinBackend(Backend):
    name = "builtin"
    needs = ()
    remote = False

    @classmethod
    def startup_line(cls, settings: Settings) -> str:
        return ("the built-in search, not a language model (set OPENAI_BASE_URL or AI_SERVICE_URL for one; "
                "see docs/settings.md)")

    async def models(self) -> list[str]:
        return [MODEL]

    def default_model(self) -> str:
        return MODEL

    def token_budget(self) -> None:
        return None

    async def generate(self, context: Context, write: Write) -> list[dict]:
        attached = [f["id"] for f in context.files]
        texts = await files.searchable_texts(self.db, context.user_id, context.message, attached,
                                             len(attached) + MAX_FILES)
        answers = await messages.searchable_answers(self.db, context.user_id, context.message, SIGNATURE,
                                                    MAX_ANSWERS)
        # an identical passage is credited to the file attached first
        order = {file_id: n for n, file_id in enumerate(attached)}
        texts.sort(key=lambda t: order.get(str(t["id"]), len(order)))
        titles = await chats.titles(self.db, list({a["chat_id"] for a in answers})) if answers else {}
        candidates = [{"title": t["name"], "file": t["id"], "weight": ATTACHED_WEIGHT if t["attached"] else 1.0,
                       "text": s} for t in texts for s in sentences(t["text_content"])]
        candidates += [{"title": titles.get(a["chat_id"], ""), "file": None, "weight": 1.0, "text": s}
                       for a in answers for s in sentences(a["content"])]
        # the passages a model would be given (the chat's knowledge, files too long to read whole),
        # weighted like attached files; a sentence of one is cited with its file, page and passage
        candidates += [{"title": p["file_name"], "file": p["file_id"], "weight": ATTACHED_WEIGHT, "text": s,
                        "source": {k: p[k] for k in ("file_id", "page", "passage_id")}}
                       for p in context.passages for s in sentences(p["text"])]
        ranked = await self._rank(context.message, candidates)
        matching = {c["text"] for c in ranked}
        matched_files = {c["file"] for c in candidates if c["text"] in matching}
        chosen = _choose(ranked, MAX_PASSAGES)
        quoted = {c["source"]["passage_id"] for c in ranked if "source" in c}
        chosen += [{"title": p["file_name"], "passage": _opening(p["text"]),
                    "source": {k: p[k] for k in ("file_id", "page", "passage_id")}}
                   for p in context.passages if p["passage_id"] not in quoted][:MAX_PASSAGES - len(chosen)]

        explained = any(turn["role"] == "assistant" and turn["content"].startswith(SIGNATURE)
                        for turn in context.history)
        await write(LEAD + "\n\n" if explained else f"{LEAD} {HOW}\n\n")
        for unread in (f for f in context.files if not f.get("content")):
            await write(f"\u201c{unread['name']}\u201d is attached but its text is not available "
                        f"({unread.get('note') or 'no text'}).\n\n")
        searched = {str(t["id"]) for t in texts}
        for image in (f for f in context.files if f.get("content") and f["id"] not in searched):
            await write(f"\u201c{image['name']}\u201d is attached; the built-in search reads text, "
                        "not images.\n\n")
        for text in texts:
            if text["attached"] and text["id"] not in matched_files:
                await write(f"\u201c{text['name']}\u201d does not mention any of the words of your message.\n\n")
        if not chosen:
            await write("I found nothing in your files or earlier answers that matches your message.")
            return []
        await write(f"I found {len(chosen)} passage{'s' if len(chosen) > 1 else ''} that may help:\n\n")
        # each passage names where it is from, so the answer reads whole where no sources are shown (/v1)
        for number, passage in enumerate(chosen, 1):
            end = "\n\n" if number < len(chosen) else ""
            page = passage.get("source", {}).get("page")
            where = f"\u201c{passage['title']}\u201d" + (f", page {page}" if page else "")
            await write(f"{number}. From {where}: {passage['passage']}{end}")
        return [{"title": p["title"], "url": "", "content": p["passage"], **p.get("source", {})} for p in chosen]

    async def _rank(self, question: str, candidates: list[dict]) -> list[dict]:
        """The candidates matching any word of the question, each identical
        passage once, with rank (weighted ts_rank), the question's words it
        holds, and the passage to quote; best first."""
        unique: dict[str, dict] = {}
        for candidate in candidates:
            known = unique.get(candidate["text"])
            if known is None or candidate["weight"] > known["weight"]:
                unique[candidate["text"]] = candidate
        if not unique:
            return []
        kept = list(unique.values())
        rows = await self.db.fetch(
            """
            WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q,
                              tsvector_to_array(to_tsvector('english', %(q)s)) AS words),
                 p AS (SELECT i, s, to_tsvector('english', s) AS v
                       FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS t(s, i))
            SELECT p.i, ts_rank(p.v, q.q) AS rank,
                   ARRAY(SELECT unnest(tsvector_to_array(p.v)) INTERSECT SELECT unnest(q.words)) AS words,
                   CASE WHEN length(p.s) <= %(long)s THEN p.s
                        ELSE '... ' || ts_headline('english', p.s, q.q, %(headline)s) || ' ...' END AS passage
            FROM p, q
            WHERE p.v @@ q.q
            """,
            {"q": question, "texts": [c["text"] for c in kept], "long": LONG_SENTENCE, "headline": HEADLINE},
        )
        ranked = [{**kept[r["i"] - 1], "rank": r["rank"] * kept[r["i"] - 1]["weight"], "words": set(r["words"]),
                   "passage": r["passage"]} for r in rows]
        return sorted(ranked, key=lambda c: -c["rank"])


def _opening(text: str) -> str:
    """The passage's first sentences, up to LONG_SENTENCE characters (at least one, cut)."""
    kept = ""
    for sentence in sentences(text):
        if kept and len(kept) + 1 + len(sentence) > LONG_SENTENCE:
            break
        kept = f"{kept} {sentence}".strip()
    return kept if len(kept) <= LONG_SENTENCE else kept[:LONG_SENTENCE].rsplit(" ", 1)[0] + " ..."


def _choose(ranked: list[dict], limit: int) -> list[dict]:
    """The best passages, preferring at each step one that holds words of the
    question the passages chosen so far do not (so a question about two things
    is answered on both)."""
    chosen: list[dict] = []
    covered: set[str] = set()
    left = list(ranked)
    while left and len(chosen) < limit:
        best = max(left, key=lambda c: c["rank"] * (1 + len(c["words"] - covered)))
        chosen.append(best)
        covered |= best["words"]
        left.remove(best)
    return chosen
