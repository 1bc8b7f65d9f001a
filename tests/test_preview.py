"""Preview jobs with the built-in extractor: every type it reads, the text
budget, unreadable and corrupt files, and the status a file moves through."""

import zlib

import pytest
from support.accounts import register
from support.sample_files import docx_bytes, image_bytes, pdf_bytes, read_image
from support.served_app import app_of, db_of
from support.uploads import processed, stored_files, uploaded

from chatserver import appkeys
from chatserver.files.housekeeping import housekeep


async def preview_of(client, account, file: dict):
    resp = await client.get(f"/api/files/{file['id']}/preview", headers=account.headers)
    return resp.status, resp.headers.get("Content-Type"), await resp.read()


@pytest.mark.parametrize("name, data, content_type, text", [
    ("notes.txt", "Plain words, ünïcode ✓\nsecond line".encode(), "text/plain",
     "Plain words, ünïcode ✓\nsecond line"),
    ("readme.md", b"# Title\n\n* a point\n", "text/markdown", "# Title\n\n* a point\n"),
    ("table.csv", b"name,qty\napples,3\n", "text/csv", "name,qty\napples,3\n"),
    ("data.json", b'{"answer": 42}', "application/json", '{"answer": 42}'),
    ("main.py", b"def main():\n    return 1\n", "text/x-python", "def main():\n    return 1\n"),
    ("bom.txt", b"\xef\xbb\xbfwith a byte order mark", "text/plain", "with a byte order mark"),
])
async def test_text_files_keep_their_text(client, user, name, data, content_type, text):
    file = await processed(client, user, await uploaded(client, user, data, name))
    assert (file["status"], file["content_type"], file["error"]) == ("ready", content_type, None)
    assert file["text_content"] == text
    assert file["preview_text"] == " ".join(text.split())
    assert file["processed_at"] is not None and file["has_preview_image"] is False


async def test_html_gives_its_text_without_tags_scripts_or_styles(client, user):
    page = b"""<!DOCTYPE html><html><head><title>Report</title><style>p {color: red}</style>
    <script>var secret = "do not show";</script></head>
    <body><h1>Results &amp; notes</h1><p>First <b>bold</b> paragraph.</p>
    <noscript>enable js</noscript><ul><li>one</li><li>two</li></ul></body></html>"""
    file = await processed(client, user, await uploaded(client, user, page, "report.html"))
    assert file["status"] == "ready" and file["content_type"] == "text/html"
    assert file["text_content"] == "Report\nResults & notes\nFirst bold paragraph.\none\ntwo"


async def test_pdf_gives_the_text_of_every_page(client, user):
    data = pdf_bytes(["The first page talks about apples.", "The second page talks about pears."])
    file = await processed(client, user, await uploaded(client, user, data, "fruit.pdf"))
    assert (file["status"], file["content_type"]) == ("ready", "application/pdf")
    assert "apples" in file["text_content"] and "pears" in file["text_content"]
    assert file["text_content"].index("apples") < file["text_content"].index("pears")


async def test_docx_gives_its_paragraphs_and_tables(client, user):
    data = docx_bytes(["Quarterly plan", "Hire two people."], table=[["Item", "Cost"], ["Laptop", "900"]])
    file = await processed(client, user, await uploaded(client, user, data, "plan.docx"))
    assert file["status"] == "ready"
    assert file["content_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert file["text_content"] == "Quarterly plan\nHire two people.\nItem\tCost\nLaptop\t900"


@pytest.mark.parametrize("size, kind, mode, thumb_type, thumb_size", [
    ((1200, 800), "PNG", "RGB", "image/jpeg", (512, 341)),
    ((300, 1000), "JPEG", "RGB", "image/jpeg", (154, 512)),
    ((640, 640), "PNG", "RGBA", "image/png", (512, 512)),
    ((20, 10), "GIF", "RGB", "image/jpeg", (20, 10)),
])
async def test_images_get_a_thumbnail_of_at_most_512_px_and_their_size_as_text(
        client, user, size, kind, mode, thumb_type, thumb_size):
    file = await processed(client, user, await uploaded(client, user, image_bytes(size, kind, mode), "picture"))
    assert file["status"] == "ready" and file["has_preview_image"] is True
    description = f"{kind} image, {size[0]}x{size[1]} pixels"
    assert file["preview_text"] == file["text_content"] == description
    status, content_type, data = await preview_of(client, user, file)
    assert (status, content_type) == (200, thumb_type)
    assert read_image(data).size == thumb_size


async def test_an_image_too_large_to_decode_safely_fails_without_decoding(client, user):
    # a PNG header claiming 8000x8000 pixels, followed by nothing worth decoding
    data = image_bytes((1, 1))
    header = (8000).to_bytes(4, "big") * 2 + data[24:29]  # width, height, then depth, colour, ...
    data = data[:16] + header + zlib.crc32(b"IHDR" + header).to_bytes(4, "big") + data[33:]
    file = await processed(client, user, await uploaded(client, user, data, "bomb.png"))
    assert (file["status"], file["error"]) == ("failed", "the image is too large to preview (8000x8000 pixels)")


async def test_text_over_the_budget_is_cut_and_says_so(make_client):
    client = await make_client(TEXT_EXTRACT_CHAR_BUDGET=100)
    user = await register(client)
    file = await processed(client, user, await uploaded(client, user, ("word " * 1000).encode(), "long.txt"))
    assert file["status"] == "ready"
    assert file["text_content"].startswith(("word " * 20)[:100] + "\n\n[cut: only the first 100 characters")
    pdf = await processed(client, user, await uploaded(client, user, pdf_bytes(["a" * 80, "b" * 80, "c"]), "x.pdf"))
    assert "c" not in pdf["text_content"].split("[cut")[0] and "[cut: only the first 100" in pdf["text_content"]


@pytest.mark.parametrize("name, data, error", [
    ("broken.pdf", b"%PDF-1.7\n this is not really a pdf", "could not read the file as application/pdf"),
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "could not read the file as image/png"),
    ("broken.docx", docx_bytes(["x"])[:3000], "could not read the file as application/"),
    ("blob.bin", bytes(range(256)) * 4, "cannot extract text from files of type application/octet-stream"),
    ("archive.zip", b"PK\x05\x06" + b"\x00" * 18, "cannot extract text from files of type application/zip"),
])
async def test_unreadable_or_corrupt_files_fail_with_a_clear_error(client, user, name, data, error):
    file = await processed(client, user, await uploaded(client, user, data, name))
    assert file["status"] == "failed"
    assert file["error"].startswith(error), file["error"]
    assert "/" not in file["error"].removeprefix(error), "the error names a server path"
    assert file["text_content"] is None and file["processed_at"] is not None
    status, _, _ = await preview_of(client, user, file)
    assert status == 404
    # a file that cannot be read stays failed: housekeeping only retries temporary failures
    await housekeep(app_of(client))
    await app_of(client)[appkeys.QUEUE].wait_idle()
    assert (await processed(client, user, file))["status"] == "failed"
    assert await app_of(client)[appkeys.REDIS].llen(app_of(client)[appkeys.KEYS].dead) == 0


async def test_a_file_whose_bytes_vanished_fails_instead_of_retrying(make_client):
    client = await make_client(start_workers=False)
    user = await register(client)
    file = await uploaded(client, user, b"soon gone", "a.txt")
    for path in app_of(client)[appkeys.STORAGE].files.iterdir():
        path.unlink()
    await app_of(client)[appkeys.WORKER].start()
    file = await processed(client, user, file)
    assert (file["status"], file["error"]) == ("failed", "the stored file is missing")


async def test_a_preview_for_a_file_deleted_meanwhile_does_nothing(make_client):
    client = await make_client(start_workers=False)
    user = await register(client)
    file = await uploaded(client, user, image_bytes((100, 100)), "a.png")
    assert (await client.delete(f"/api/files/{file['id']}", headers=user.headers)).status == 204
    queue = app_of(client)[appkeys.QUEUE]
    await app_of(client)[appkeys.WORKER].start()
    await queue.wait_idle()
    assert stored_files(client) == {"tmp": [], "files": [], "previews": []}
    assert queue.stats["preview"].processed == 1


async def test_a_repeated_job_for_a_finished_file_changes_nothing(client, user):
    file = await processed(client, user, await uploaded(client, user, b"once", "a.txt"))
    await app_of(client)[appkeys.QUEUE].enqueue("preview", {"file_id": file["id"]})
    again = await processed(client, user, file)
    assert again == file


async def test_the_extracted_text_is_stored_for_search(client, user):
    file = await processed(client, user, await uploaded(client, user, b"the zeppelin departs at dawn", "a.txt"))
    found = await db_of(client).fetchval(
        "SELECT id FROM files WHERE search @@ websearch_to_tsquery('english', 'zeppelin')")
    assert str(found) == file["id"]

