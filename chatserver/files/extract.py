"""The built-in extractor: text and previews made locally, no service needed.

Everything here blocks (parsers, Pillow) and trusts its limits to the
process it runs in: the server runs `extract` in a child process of its own
(files/sandbox.py). Parsers of hostile input fail in many ways besides their
own error classes, so each reader turns any failure into UnreadableFile with
a clear message.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import docx
import pypdf
from PIL import Image

from chatserver.files.result import Preview, UnreadableFile, make_preview
from chatserver.files.sniff import DOCX, is_text

THUMBNAIL_PX = 512
# a small upload can decode to gigabytes; Pillow's own bomb check allows ~180M pixels
MAX_IMAGE_PIXELS = 40_000_000
HTML_TYPES = ("text/html", "application/xhtml+xml")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff")


# Of the memory bound, how much an archive may unpack to in all, and its XML
# parts (which become trees several times their size) on their own.
ARCHIVE_SHARE = 4
XML_SHARE = 8


def extract(path: Path, content_type: str, budget: int, *, memory_mb: int = 512) -> Preview:
    reader = _reader_for(content_type)
    if reader is None:
        raise UnreadableFile(f"cannot extract text from files of type {content_type}")
    try:
        if content_type == DOCX:
            check_archive(path, memory_mb)
        return reader(path, budget)
    except (UnreadableFile, MemoryError):
        raise
    except Exception as exc:
        # users see this message; where we keep files is none of their business
        reason = str(exc).replace(str(path), "the file") or exc.__class__.__name__
        raise UnreadableFile(f"could not read the file as {content_type}: {reason}") from exc


def _reader_for(content_type: str) -> Callable[[Path, int], Preview] | None:
    if content_type in HTML_TYPES:
        return _html
    if is_text(content_type):
        return _text
    if content_type == "application/pdf":
        return _pdf
    if content_type == DOCX:
        return _docx
    if content_type in IMAGE_TYPES:
        return _image
    return None


def _read_text(path: Path, budget: int) -> tuple[str, bool]:
    """The start of a UTF-8 file, enough for `budget` characters; and whether more follows."""
    limit = budget * 4
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    more = len(data) > limit
    text = data[:limit].decode("utf-8-sig", "replace")
    # a character cut by the byte limit decodes as U+FFFD
    return (text.rstrip("\ufffd") if more else text), more


def _text(path: Path, budget: int) -> Preview:
    text, more = _read_text(path, budget)
    return make_preview(text, budget, cut=more)


class _HtmlText(HTMLParser):
    HIDDEN = {"script", "style", "noscript", "template", "svg", "iframe", "object"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title", "section",
              "article", "header", "footer", "pre", "blockquote", "table", "ul", "ol", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def _html(path: Path, budget: int) -> Preview:
    markup, more = _read_text(path, budget)
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return make_preview(parser.text(), budget, cut=more)


def _pdf(path: Path, budget: int) -> Preview:
    reader = pypdf.PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableFile("the PDF is encrypted with a password")
    pages, size = [], 0
    for page in reader.pages:
        text = page.extract_text() or ""
        pages.append(text)
        size += len(text)
        if size > budget:
            break
    cut = size > budget or len(pages) < len(reader.pages)
    # a form feed between pages, as pdftotext writes: passages know their page by it
    return make_preview("\f".join(pages), budget, cut=cut)


def check_archive(path: Path, memory_mb: int) -> None:
    """Refuse a ZIP whose members unpack past the share of the memory bound a
    parser may use: first by the sizes the archive declares, then by the
    bytes each member really inflates to (a header may lie), counted while
    inflating in small pieces and stopped at the bound."""
    total_limit = memory_mb * 1024 * 1024 // ARCHIVE_SHARE
    xml_limit = memory_mb * 1024 * 1024 // XML_SHARE
    too_big = UnreadableFile(f"the archive unpacks to more than its share of the memory limit of "
                             f"{memory_mb} MB (PREVIEW_MEMORY_MB)")
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > total_limit or sum(
                m.file_size for m in members if _is_xml(m.filename)) > xml_limit:
            raise too_big
        total = xml = 0
        for member in members:
            with archive.open(member) as stream:
                while chunk := stream.read(1 << 16):
                    total += len(chunk)
                    xml += len(chunk) if _is_xml(member.filename) else 0
                    if total > total_limit or xml > xml_limit:
                        raise too_big


def _is_xml(name: str) -> bool:
    return name.lower().endswith((".xml", ".rels"))


def _docx(path: Path, budget: int) -> Preview:
    document = docx.Document(str(path))
    # headings as Markdown's, so that passages know their section; styles are
    # looked up once by id (python-docx's paragraph.style searches them every time)
    names = {style.style_id: style.name for style in document.styles}
    blocks = []
    for paragraph in document.paragraphs:
        text = paragraph.text
        style = names.get(paragraph._p.style, "") if text.strip() else ""
        blocks.append(_heading_mark(style or "") + text)
    for table in document.tables:
        for row in table.rows:
            blocks.append("\t".join(cell.text for cell in row.cells))
    return make_preview("\n".join(b for b in blocks if b.strip()), budget)


def _heading_mark(style: str) -> str:
    level = style.removeprefix("Heading ").strip()
    return "#" * int(level) + " " if style.startswith("Heading ") and level.isdigit() else ""


def _image(path: Path, budget: int) -> Preview:
    with Image.open(path) as image:
        kind, (width, height) = image.format, image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise UnreadableFile(f"the image is too large to preview ({width}x{height} pixels)")
        image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        thumbnail = image.convert("RGBA" if transparent else "RGB")
    out = io.BytesIO()
    if transparent:
        thumbnail.save(out, "PNG", optimize=True)
    else:
        thumbnail.save(out, "JPEG", quality=85)
    description = f"{kind} image, {width}x{height} pixels"
    return make_preview(description, budget, image=out.getvalue(),
                        image_extension="png" if transparent else "jpeg")
