"""Files to upload, made in memory: PDFs, DOCX, images, and hostile ones
(endless to extract, or a zip bomb); reading an image back."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF
from PIL import Image


def pdf_bytes(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def image_bytes(size: tuple[int, int], kind: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(out, kind)
    return out.getvalue()


def read_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def hostile_pdf(pages: int = 3000, operators: int = 1_000_000) -> bytes:
    """A small PDF whose pages all share one large content stream of no-op
    operators: cheap to store, endless to extract text from."""
    import zlib

    stream = zlib.compress(b"q Q " * operators + b"BT ET\n", 9)
    first_page = 4
    kids = " ".join(f"{first_page + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
                b" /Resources << /ProcSet [/PDF /Text] >> /Contents 3 0 R >>"] * pages
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def docx_bomb(unpacked_mb: int = 64) -> bytes:
    """A valid DOCX whose document.xml unpacks to `unpacked_mb` MB of one repeated paragraph."""
    import zipfile

    out = io.BytesIO()
    # python-docx writes the parts a DOCX needs; only document.xml is replaced
    source = zipfile.ZipFile(io.BytesIO(docx_bytes(["seed"])))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, source.read(item))
        with bomb.open("word/document.xml", "w", force_zip64=True) as doc:
            doc.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                      b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                      b"<w:body>")
            paragraph = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>" * 25_000
            for _ in range(unpacked_mb * 1024 * 1024 // len(paragraph)):
                doc.write(paragraph)
            doc.write(b"</w:body></w:document>")
    return out.getvalue()
