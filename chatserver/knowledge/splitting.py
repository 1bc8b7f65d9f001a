"""Cutting a file's extracted text into passages for retrieval.

A passage is a few sentences (at most PASSAGE_CHARS, about 250 tokens: long
enough to hold an answer with its context, short enough that a handful fit a
small model's window). Consecutive passages of one section share their last
sentences (OVERLAP_CHARS), so a fact that straddles a cut is whole in one of
them. A passage never spans two pages (the extractor separates a PDF's pages
with a form feed) nor two sections (a Markdown heading line, which DOCX
headings become): it knows its page and its heading.
"""

from __future__ import annotations

import dataclasses
import re

PASSAGE_CHARS = 1200
OVERLAP_CHARS = 200
PAGE_BREAK = "\f"

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+")
_CUT_NOTE = re.compile(r"^\[cut: .*\]$")  # the extractor's note that it kept only the start


@dataclasses.dataclass
class Passage:
    ordinal: int
    page: int | None
    heading: str | None
    text: str


def split(text: str) -> list[Passage]:
    """The text's passages in reading order; pages are numbered from 1 when
    the text has page breaks."""
    pages = text.split(PAGE_BREAK)
    paged = len(pages) > 1
    found: list[Passage] = []
    heading: str | None = None
    for number, page in enumerate(pages, 1):
        sections = _sections(page, heading)
        heading = sections[-1][0]
        for title, units in sections:
            for chunk in _pack(units):
                found.append(Passage(len(found), number if paged else None, title, chunk))
    return found


def _sections(page: str, heading: str | None) -> list[tuple[str | None, list[str]]]:
    """(heading, sentences) of each section of the page, the last one even
    when empty; a page's first section goes on under the previous page's last heading."""
    sections: list[tuple[str | None, list[str]]] = [(heading, [])]
    for block in re.split(r"\n\s*\n", page):
        lines: list[str] = []
        for line in block.splitlines():
            match = _HEADING.match(line.strip())
            if match:
                _add(sections[-1][1], lines)
                lines = []
                sections.append((match.group(1), []))
            elif line.strip() and not _CUT_NOTE.match(line.strip()):
                lines.append(line.strip())
        _add(sections[-1][1], lines)
    return [(h, units) for h, units in sections[:-1] if units] + sections[-1:]


def _add(units: list[str], lines: list[str]) -> None:
    paragraph = " ".join(" ".join(lines).split())
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > PASSAGE_CHARS:
            # a run-on without full stops (a table, a list) is cut at a space
            cut = sentence.rfind(" ", 0, PASSAGE_CHARS)
            cut = cut if cut > 0 else PASSAGE_CHARS
            units.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if sentence:
            units.append(sentence)


def _pack(units: list[str]) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    fresh = 0  # sentences in `current` not already in the previous chunk
    for unit in units:
        if current and size + 1 + len(unit) > PASSAGE_CHARS:
            chunks.append(" ".join(current))
            current = _overlap(current, PASSAGE_CHARS - len(unit) - 1)
            size = sum(len(u) + 1 for u in current)
            fresh = 0
        current.append(unit)
        size += len(unit) + 1
        fresh += 1
    if current and fresh:
        chunks.append(" ".join(current))
    return chunks


def _overlap(units: list[str], room: int) -> list[str]:
    """The last sentences of a chunk, within OVERLAP_CHARS and `room`, to open the next."""
    kept: list[str] = []
    size = 0
    for unit in reversed(units):
        size += len(unit) + 1
        if size > min(OVERLAP_CHARS, room):
            break
        kept.insert(0, unit)
    return kept
