"""Files (docs/rest.md, "Files"): streamed uploads and their limits, hostile names,
downloads, previews, deletion, ownership and housekeeping."""

import asyncio
import hashlib
import os
import re
import time

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.sample_files import image_bytes
from support.served_app import app_of, db_of
from support.uploads import nothing_stored, processed, random_id, raw_multipart, stored_files, upload, uploaded

from chatserver import appkeys
from chatserver.files.housekeeping import housekeep
from chatserver.files.preview import PREVIEW_TASK

FILE_KEYS = {"id", "name", "size", "content_type", "status", "chat_id", "text_content", "preview_text",
             "has_preview_image", "error", "created_at", "processed_at"}


async def rows_of(client, user) -> list[dict]:
    return await db_of(client).fetch("SELECT * FROM files WHERE user_id = %s", (user.id,))


async def wait_until(condition, timeout: float = 30) -> None:
    """For what no job queue reports (a server noticing a closed socket)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


# -- uploading ------------------------------------------------------------

async def test_upload_answers_a_pending_file_and_stores_the_bytes_under_a_generated_name(client, user):
    data = b"hello files\n" * 100
    resp = await upload(client, user, data, "notes.txt", content_type="text/plain")
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == FILE_KEYS
    assert body["status"] == "pending"
    assert (body["name"], body["size"], body["content_type"]) == ("notes.txt", len(data), "text/plain")
    assert body["chat_id"] is None and body["has_preview_image"] is False and body["processed_at"] is None
    [row] = await rows_of(client, user)
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{32}", row["storage_name"])
    assert stored_files(client)["files"] == [row["storage_name"]]
    assert stored_files(client)["tmp"] == []
    storage = app_of(client)[appkeys.STORAGE]
    assert storage.path(row["storage_name"]).read_bytes() == data


async def test_upload_into_an_own_chat_and_list_by_chat(client, user, chat):
    in_chat = await uploaded(client, user, b"in the chat", "a.txt", chat_id=chat["id"])
    loose = await uploaded(client, user, b"no chat", "b.txt")
    assert in_chat["chat_id"] == chat["id"] and loose["chat_id"] is None
    resp = await client.get("/api/files", params={"chat_id": chat["id"]}, headers=user.headers)
    assert resp.status == 200
    assert [f["id"] for f in (await resp.json())["items"]] == [in_chat["id"]]
    resp = await client.get("/api/files", headers=user.headers)
    assert [f["id"] for f in (await resp.json())["items"]] == [loose["id"], in_chat["id"]]


@pytest.mark.parametrize("chat_id", ["foreign", random_id(), "not-a-uuid"])
async def test_upload_into_a_chat_that_is_not_yours_is_404_and_stores_nothing(client, user, other_user, chat_id):
    if chat_id == "foreign":
        chat_id = (await create_chat(client, other_user))["id"]
    resp = await upload(client, user, b"x" * 5000, "a.txt", chat_id=chat_id)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    assert await rows_of(client, user) == []
    assert nothing_stored(client)


async def test_listing_a_chat_that_is_not_yours_is_404(client, user, other_user):
    foreign = await create_chat(client, other_user)
    resp = await client.get("/api/files", params={"chat_id": foreign["id"]}, headers=user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_upload_needs_a_token(client):
    body, content_type = raw_multipart([(b'Content-Disposition: form-data; name="file"; filename="a"', b"x")])
    resp = await client.post("/api/files", data=body, headers={"Content-Type": content_type})
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_upload_must_be_multipart(client, user):
    resp = await client.post("/api/files", json={"file": "x"}, headers=user.headers)
    assert resp.status == 415
    assert_error(await resp.json(), "unsupported_media_type")


async def test_upload_without_a_file_part_is_422(client, user):
    body, content_type = raw_multipart([(b'Content-Disposition: form-data; name="chat_id"', b"")])
    resp = await client.post("/api/files", data=body, headers=user.headers | {"Content-Type": content_type})
    assert resp.status == 422
    assert_error(await resp.json(), "validation_error")
    assert nothing_stored(client)


async def test_two_file_parts_are_422_and_store_nothing(client, user):
    part = (b'Content-Disposition: form-data; name="file"; filename="a.txt"', b"a" * 1000)
    body, content_type = raw_multipart([part, part])
    resp = await client.post("/api/files", data=body, headers=user.headers | {"Content-Type": content_type})
    assert resp.status == 422
    assert_error(await resp.json(), "too_many_files")
    assert nothing_stored(client) and await rows_of(client, user) == []


async def test_a_malformed_multipart_body_is_422(client, user):
    resp = await client.post("/api/files", data=b"--nope\r\ngarbage", headers=user.headers | {
        "Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status == 422
    assert_error(await resp.json())
    assert nothing_stored(client)


# -- the size limit -------------------------------------------------------

LIMIT = 64 * 1024


async def test_a_file_of_exactly_the_limit_is_accepted_beyond_the_json_body_limit(make_client):
    client = await make_client(MAX_UPLOAD_SIZE=LIMIT, MAX_REQUEST_BODY=1024)
    user = await register(client)
    data = os.urandom(LIMIT)
    body = await uploaded(client, user, data, "exact.bin")
    assert body["size"] == LIMIT
    resp = await client.get(f"/api/files/{body['id']}/content", headers=user.headers)
    assert await resp.read() == data


@pytest.mark.parametrize("extra", [1, 10 * LIMIT])
async def test_one_byte_over_the_limit_is_413_and_leaves_nothing(make_client, extra):
    client = await make_client(MAX_UPLOAD_SIZE=LIMIT)
    user = await register(client)
    resp = await upload(client, user, b"x" * (LIMIT + extra), "big.txt")
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")
    assert nothing_stored(client)
    assert await rows_of(client, user) == []


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(client, user):
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.bin\"\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"POST /api/files HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {user.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n\r\n".encode()
        + head + b"x" * 300_000
    )
    await writer.drain()
    await wait_until(lambda: stored_files(client)["tmp"] != [])
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: nothing_stored(client))
    assert await rows_of(client, user) == []
    # the server goes on serving
    assert (await upload(client, user, b"after", "after.txt")).status == 201


# -- names ----------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system.ini", "system.ini"),
    ("/absolute/path.txt", "path.txt"),
    ("invoice\u202etxt.exe", "invoicetxt.exe"),
    ("\u200fnotes\u200e.txt", "notes.txt"),
    ("..", "upload"),
    ("", "upload"),
    ("résumé 日本.txt", "résumé 日本.txt"),
])
async def test_hostile_names_are_kept_only_as_clean_metadata(client, user, tmp_path, raw, expected):
    body = await uploaded(client, user, b"content", raw)
    assert body["name"] == expected
    [row] = await rows_of(client, user)
    assert re.fullmatch(r"[0-9a-f]{32}", row["storage_name"])
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize("raw", [b"evil\x00.txt", b"escape\x1b.txt", b"n" * 10_000 + b".txt"])
async def test_part_headers_with_nul_bytes_or_over_8_kib_are_422_and_leave_nothing(client, user, raw):
    body, content_type = raw_multipart([
        (b'Content-Disposition: form-data; name="file"; filename="' + raw + b'"', b"text" * 1000)])
    resp = await client.post("/api/files", data=body, headers=user.headers | {"Content-Type": content_type})
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_multipart")
    assert nothing_stored(client) and await rows_of(client, user) == []


@pytest.mark.parametrize("encoded, expected", [
    ("evil%00.txt%00.png", "evil.txt.png"),
    ("tab%09and%1Bescape%0D%0A.txt", "tabandescape.txt"),
    ("caf%C3%A9%E2%80%AE.txt", "caf\u00e9.txt"),
    ("..%2F..%2Fetc%2Fpasswd", "passwd"),
])
async def test_nul_and_control_characters_in_an_encoded_name_are_stripped(client, user, encoded, expected):
    body, content_type = raw_multipart([
        (b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''" + encoded.encode(), b"text")])
    resp = await client.post("/api/files", data=body, headers=user.headers | {"Content-Type": content_type})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["name"] == expected and body["content_type"] == "text/plain"


async def test_a_long_name_is_cut_to_255_characters_keeping_its_extension(client, user):
    body = await uploaded(client, user, b"content", "n" * 5000 + ".md")
    assert len(body["name"]) == 255 and body["name"].endswith(".md")
    assert body["content_type"] == "text/markdown"


async def test_download_names_non_ascii_files_per_rfc_5987(client, user):
    name = 'résumé "final"; 日本.txt'
    body, content_type = raw_multipart([(
        b"Content-Disposition: form-data; name=\"file\"; "
        b"filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20%E6%97%A5%E6%9C%AC.txt", b"cv")])
    resp = await client.post("/api/files", data=body, headers=user.headers | {"Content-Type": content_type})
    file = await resp.json()
    assert file["name"] == name
    resp = await client.get(f"/api/files/{file['id']}/content", headers=user.headers)
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="resume _final__ .txt"; ')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20%E6%97%A5%E6%9C%AC.txt" in disposition
    assert resp.content_disposition.filename == name


# -- content types --------------------------------------------------------

@pytest.mark.parametrize("data, name, claimed, expected", [
    (image_bytes((4, 4)), "photo.txt", "text/plain", "image/png"),
    (b"just text", "evil.png", "image/png", "text/plain"),
    (b"#!/usr/bin/env python\nprint(1)\n", "tool.py", None, "text/x-python"),
    (b'{"a": 1}', "data.json", None, "application/json"),
    (b"a,b\n1,2\n", "table.csv", None, "text/csv"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "page", None, "text/html"),
    (b"\x00\x01\x02binary", "blob.txt", "text/plain", "application/octet-stream"),
    (b"export const a: number = 1;\n", "mod.ts", None, "text/x-typescript"),
])
async def test_the_content_type_is_sniffed_from_the_bytes(client, user, data, name, claimed, expected):
    body = await uploaded(client, user, data, name, content_type=claimed)
    assert body["content_type"] == expected


# -- reading --------------------------------------------------------------

async def test_download_streams_the_original_bytes_safely(client, user):
    data = b"<html><script>alert(1)</script></html>"
    body = await uploaded(client, user, data, "page.html")
    resp = await client.get(f"/api/files/{body['id']}/content", headers=user.headers)
    assert resp.status == 200
    assert await resp.read() == data
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["Content-Disposition"].startswith("attachment;")


async def test_an_empty_file_is_accepted_and_reads_as_empty_text(client, user):
    body = await uploaded(client, user, b"", "empty.txt")
    assert body["size"] == 0
    body = await processed(client, user, body)
    assert (body["status"], body["text_content"], body["preview_text"]) == ("ready", "", "")
    resp = await client.get(f"/api/files/{body['id']}/content", headers=user.headers)
    assert resp.status == 200 and await resp.read() == b""


async def test_preview_is_404_until_it_exists_then_text(make_client):
    client = await make_client(start_workers=False)
    user = await register(client)
    body = await uploaded(client, user, b"some words to preview", "a.txt")
    resp = await client.get(f"/api/files/{body['id']}/preview", headers=user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    await app_of(client)[appkeys.WORKER].start()
    await app_of(client)[appkeys.QUEUE].wait_idle()
    resp = await client.get(f"/api/files/{body['id']}/preview", headers=user.headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await resp.text() == "some words to preview"


async def test_preview_of_an_image_is_its_thumbnail(client, user):
    body = await processed(client, user, await uploaded(client, user, image_bytes((40, 20)), "dot.png"))
    assert body["has_preview_image"] is True
    resp = await client.get(f"/api/files/{body['id']}/preview", headers=user.headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert (await resp.read()).startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize("path", ["", "/content", "/preview"])
@pytest.mark.parametrize("method", ["get", "delete"])
async def test_another_users_file_is_404_everywhere(client, user, other_user, path, method):
    if method == "delete" and path:
        return
    body = await processed(client, user, await uploaded(client, user, b"private", "secret.txt"))
    resp = await getattr(client, method)(f"/api/files/{body['id']}{path}", headers=other_user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    listing = await client.get("/api/files", headers=other_user.headers)
    assert (await listing.json())["items"] == []
    assert (await client.get(f"/api/files/{body['id']}/content", headers=user.headers)).status == 200


@pytest.mark.parametrize("file_id", [random_id(), "not-a-uuid"])
async def test_a_missing_or_malformed_file_id_is_404(client, user, file_id):
    resp = await client.get(f"/api/files/{file_id}", headers=user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


# -- deleting -------------------------------------------------------------

async def test_delete_removes_the_row_the_bytes_and_the_thumbnail(client, user):
    body = await processed(client, user, await uploaded(client, user, image_bytes((600, 600)), "big.png"))
    assert stored_files(client)["previews"] != []
    resp = await client.delete(f"/api/files/{body['id']}", headers=user.headers)
    assert resp.status == 204
    assert nothing_stored(client) and await rows_of(client, user) == []
    assert (await client.get(f"/api/files/{body['id']}", headers=user.headers)).status == 404
    assert (await client.delete(f"/api/files/{body['id']}", headers=user.headers)).status == 404


async def test_deleting_a_chat_deletes_its_files_and_keeps_the_others(client, user, chat):
    await processed(client, user, await uploaded(client, user, image_bytes((30, 30)), "a.png", chat_id=chat["id"]))
    loose = await processed(client, user, await uploaded(client, user, b"keep me", "keep.txt"))
    resp = await client.delete(f"/api/chats/{chat['id']}", headers=user.headers)
    assert resp.status == 204
    [row] = await rows_of(client, user)
    assert str(row["id"]) == loose["id"]
    assert stored_files(client) == {"tmp": [], "files": [row["storage_name"]], "previews": []}


# -- housekeeping ---------------------------------------------------------

async def test_housekeeping_removes_crash_leftovers_and_orphans_only_when_stale(client, user):
    kept = await processed(client, user, await uploaded(client, user, image_bytes((50, 50)), "kept.png"))
    storage = app_of(client)[appkeys.STORAGE]
    old = time.time() - 2 * app_of(client)[appkeys.SETTINGS].UPLOAD_ORPHAN_AGE_SECONDS
    for path in (storage.tmp / "crashed.part", storage.path("0" * 32), storage.preview_path("0" * 32 + ".png")):
        path.write_bytes(b"left behind")
        os.utime(path, (old, old))
    (storage.tmp / "arriving.part").write_bytes(b"an upload in progress")
    (storage.files / ("1" * 32)).write_bytes(b"moved into place, row not yet written")
    for path in [*storage.files.iterdir(), *storage.previews.iterdir()]:
        if not path.name.startswith("1"):
            os.utime(path, (old, old))

    await housekeep(app_of(client))

    [row] = await rows_of(client, user)
    assert stored_files(client) == {"tmp": ["arriving.part"], "files": sorted([row["storage_name"], "1" * 32]),
                                    "previews": [row["preview_image"]]}
    resp = await client.get(f"/api/files/{kept['id']}/preview", headers=user.headers)
    assert resp.status == 200


async def test_housekeeping_runs_as_a_periodic_task(make_client):
    client = await make_client(start_workers=False, UPLOAD_ORPHAN_AGE_SECONDS=60)
    storage = app_of(client)[appkeys.STORAGE]
    crashed = storage.tmp / "crashed.part"
    crashed.write_bytes(b"left behind")
    os.utime(crashed, (time.time() - 120,) * 2)
    await app_of(client)[appkeys.WORKER].start()
    await wait_until(lambda: not crashed.exists())


async def test_openapi_documents_the_file_routes(client):
    spec = await (await client.get("/openapi.json")).json()
    upload_op = spec["paths"]["/api/files"]["post"]
    assert "file" in upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"201", "404", "413"} <= set(upload_op["responses"])
    for path in ("/api/files/{file_id}", "/api/files/{file_id}/content", "/api/files/{file_id}/preview"):
        assert "get" in spec["paths"][path]
    assert "delete" in spec["paths"]["/api/files/{file_id}"]


async def test_housekeeping_queues_again_a_preview_whose_job_was_lost(make_client):
    client = await make_client(start_workers=False, UPLOAD_ORPHAN_AGE_SECONDS=60)
    user = await register(client)
    app = app_of(client)
    file = await uploaded(client, user, b"plain words to extract\n", "lost.txt")
    queue = app[appkeys.QUEUE]
    # the process died after writing the row and before its job reached Redis
    await app[appkeys.REDIS].delete(app[appkeys.KEYS].queue("preview"))
    await db_of(client).execute("UPDATE files SET created_at = created_at - interval '5 minutes' WHERE id = %s",
                                (file["id"],))
    await housekeep(app)
    await app[appkeys.WORKER].start()
    await queue.wait_idle(20)
    resp = await client.get(f"/api/files/{file['id']}", headers=user.headers)
    body = await resp.json()
    assert body["status"] == "ready" and "plain words to extract" in body["text_content"]


async def test_housekeeping_leaves_a_queued_preview_alone(make_client):
    client = await make_client(start_workers=False, UPLOAD_ORPHAN_AGE_SECONDS=60)
    user = await register(client)
    app = app_of(client)
    file = await uploaded(client, user, b"waiting its turn\n", "queued.txt")
    await db_of(client).execute("UPDATE files SET created_at = created_at - interval '5 minutes' WHERE id = %s",
                                (file["id"],))
    await housekeep(app)
    # this file's job only: housekeeping also queues earlier tests' files of the shared database
    payloads = await app[appkeys.QUEUE].payloads(PREVIEW_TASK)
    assert [p for p in payloads if p["file_id"] == file["id"]] == [{"file_id": file["id"]}]
