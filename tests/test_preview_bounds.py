"""Extracting one file is bounded in time and memory (docs/preview-service.md,
"The built-in extractor"): hostile files end `failed` saying which bound they
passed, in a process of their own, while other uploads are processed and the
server's memory does not grow."""

import asyncio
import io
import zipfile

from support.accounts import register
from support.sample_files import docx_bomb, hostile_pdf, image_bytes
from support.served_app import app_of
from support.uploads import processed, uploaded

from chatserver import appkeys
from chatserver.files.sandbox import extract_isolated

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def peak_rss_mb() -> float:
    """The most memory this process (the server) ever held, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/self/status")


async def test_a_pdf_that_takes_too_long_fails_saying_so(make_client):
    client = await make_client(PREVIEW_TIMEOUT_SECONDS=2)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, hostile_pdf(), "slow.pdf"))
    assert file["status"] == "failed"
    assert file["error"] == "extracting the file took longer than the limit of 2 s"


async def test_a_docx_that_unpacks_past_the_memory_bound_fails_saying_so(make_client):
    client = await make_client(PREVIEW_MEMORY_MB=64)
    account = await register(client)
    bomb = docx_bomb(unpacked_mb=100)
    assert len(bomb) < 1_000_000
    file = await processed(client, account, await uploaded(client, account, bomb, "bomb.docx"))
    assert (file["status"], file["content_type"]) == ("failed", DOCX)
    assert "memory limit of 64 MB" in file["error"]


async def test_an_image_that_decodes_past_the_memory_bound_fails_saying_so(make_client):
    # 5000x5000 RGB decodes to 75 MB, within the pixel cap but past a 64 MB bound
    client = await make_client(PREVIEW_MEMORY_MB=64)
    account = await register(client)
    picture = image_bytes((5000, 5000), "PNG")
    file = await processed(client, account, await uploaded(client, account, picture, "big.png"))
    assert file["status"] == "failed"
    assert "the limit of 64 MB" in file["error"]


async def test_a_docx_within_the_bound_is_read(make_client):
    client = await make_client(PREVIEW_MEMORY_MB=64)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, docx_bomb(unpacked_mb=2), "big.docx"))
    assert file["status"] == "ready" and file["text_content"].startswith("boom\nboom")


async def test_a_member_inflating_past_its_declared_size_is_refused(make_client):
    # a header that declares 10 bytes for a member that inflates to 20 MB
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<a/>" * 5_000_000)
    data = bytearray(out.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset:at + offset + 4] = (10).to_bytes(4, "little")
    client = await make_client(PREVIEW_MEMORY_MB=64)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, bytes(data), "liar.docx",
                                                           content_type=DOCX))
    assert file["status"] == "failed"
    assert file["error"] == f"could not read the file as {DOCX}: Bad CRC-32 for file 'word/document.xml'"


async def test_hostile_files_neither_stop_other_uploads_nor_grow_the_server(make_client):
    client = await make_client(PREVIEW_TIMEOUT_SECONDS=3, PREVIEW_MEMORY_MB=64)
    account = await register(client)
    before = peak_rss_mb()
    slow = await uploaded(client, account, hostile_pdf(), "slow.pdf")
    bomb = await uploaded(client, account, docx_bomb(unpacked_mb=100), "bomb.docx")
    slow2 = await uploaded(client, account, hostile_pdf(), "slow2.pdf")
    plain = await uploaded(client, account, b"an ordinary note", "note.txt")
    results = {f["name"]: await processed(client, account, f) for f in (slow, bomb, slow2, plain)}
    assert {name: f["status"] for name, f in results.items()} == {
        "slow.pdf": "failed", "bomb.docx": "failed", "slow2.pdf": "failed", "note.txt": "ready"}
    assert results["note.txt"]["text_content"] == "an ordinary note"
    assert peak_rss_mb() - before < 60


async def test_a_cancelled_extraction_leaves_no_process_behind(tmp_path):
    path = tmp_path / "slow.pdf"
    path.write_bytes(hostile_pdf())
    before = set(_children())
    task = asyncio.create_task(extract_isolated(path, "application/pdf", 1000, timeout=30, memory_mb=128))
    while not set(_children()) - before:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for _ in range(100):
        if not set(_children()) - before:
            break
        await asyncio.sleep(0.05)
    assert not set(_children()) - before


def _children() -> list[int]:
    import os

    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                found.append(int(entry))
    return found


async def test_a_file_whose_job_keeps_killing_its_process_ends_failed(make_client):
    client = await make_client(JOB_MAX_ATTEMPTS=1, start_workers=False)
    app = app_of(client)
    worker, keys = app[appkeys.WORKER], app[appkeys.KEYS]
    account = await register(client)
    file = await uploaded(client, account, b"a note", "note.txt")
    # a process took the job and died running it
    redis = app[appkeys.REDIS]
    await redis.sadd(keys.instances, "dead-process")
    await redis.lmove(keys.queue("preview"), keys.active("preview", "dead-process"), "RIGHT", "LEFT")
    await worker.start()
    try:
        file = await processed(client, account, file)
    finally:
        await worker.stop()
    assert file["status"] == "failed"
    assert file["error"] == "gave up after 1 attempts; the process running it stopped mid-run 1 time(s)"
