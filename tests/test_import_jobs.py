"""Import as a background job (`Prefer: respond-async`): 202 with a Location,
progress while it runs, the same result as the synchronous answer, failure
of a garbage file with nothing stored, owner-only status, and a job that
runs twice storing nothing twice, and housekeeping of lost imports."""

import asyncio
import datetime as dt
import json
import os
import uuid

import aiohttp
import pytest
from support.accounts import register
from support.chatgpt_import import chatgpt_file, chats_of, node, upload
from support.error_shape import assert_error
from support.served_app import app_of, db_of

from chatserver import appkeys
from chatserver.data import chats, imports
from chatserver.portable.import_job import LOST, housekeep_imports, run_import
from chatserver.portable.importer import PROGRESS_EVERY

ASYNC = {"Prefer": "respond-async"}


async def upload_async(client, account, data: bytes, prefer="respond-async"):
    form = aiohttp.FormData()
    form.add_field("file", data, filename="conversations.json", content_type="application/json")
    return await client.post("/api/import", data=form, headers={**account.headers, "Prefer": prefer})


async def status_of(client, account, location: str) -> dict:
    resp = await client.get(location, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def finished(client, account, location: str) -> dict:
    await app_of(client)[appkeys.QUEUE].wait_idle()
    return await status_of(client, account, location)


def many(count: int) -> list[dict]:
    """`count` small conversations, each one question."""
    return [{"id": str(uuid.UUID(int=i + 1)), "title": f"Chat {i}", "create_time": 1700000000.0,
             "current_node": "q", "mapping": {"q": node("q", None, [], "user", f"Question {i}")}}
            for i in range(count)]


class Rollback(Exception):
    """Leaves a test's transaction without committing it."""


async def test_an_async_import_answers_202_and_ends_with_the_synchronous_counts(client, user):
    data = json.dumps(chatgpt_file() + many(3)).encode()
    resp = await upload_async(client, user, data)
    assert resp.status == 202, await resp.text()
    assert resp.headers["Preference-Applied"] == "respond-async"
    body = await resp.json()
    assert resp.headers["Location"] == f"/api/imports/{body['id']}"
    assert body["status"] in ("queued", "running") and body["imported"] is None and body["error"] is None

    result = await finished(client, user, resp.headers["Location"])
    assert result["status"] == "done"
    assert (result["imported"], result["skipped"], result["total"], result["done"]) == (4, 0, 4, 4)
    assert result["finished_at"] is not None
    assert len(await chats_of(client, user)) == 4

    other = await register(client)
    assert await (await upload(client, other, data)).json() == {"imported": 4, "skipped": 0}
    again = await upload_async(client, user, data)
    assert (await finished(client, user, again.headers["Location"]))["skipped"] == 4


async def test_progress_is_reported_while_the_import_runs(client, user):
    conversations = many(PROGRESS_EVERY * 2 + 50)
    blocked = conversations[PROGRESS_EVERY + 10]
    # an uncommitted chat with the same source holds the import at that conversation
    with pytest.raises(Rollback):
        async with db_of(client).transaction() as cur:
            now = dt.datetime.now(dt.UTC)
            await chats.insert_imported(cur, uuid.UUID(user.id), "held", now, now, None,
                                        f"conversation:{blocked['id']}")
            resp = await upload_async(client, user, json.dumps(conversations).encode())
            location = resp.headers["Location"]
            for _ in range(1500):  # 30 s
                status = await status_of(client, user, location)
                if status["done"]:
                    break
                await asyncio.sleep(0.02)
            assert status["status"] == "running"
            assert (status["total"], status["done"]) == (len(conversations), PROGRESS_EVERY)
            assert await chats_of(client, user) == []
            raise Rollback
    result = await finished(client, user, location)
    assert (result["status"], result["done"], result["imported"]) == ("done", len(conversations), len(conversations))


async def test_a_garbage_file_fails_the_import_and_stores_nothing(client, user):
    good = chatgpt_file()[0]
    resp = await upload_async(client, user, json.dumps([good, {"mapping": 5}]).encode())
    assert resp.status == 202
    result = await finished(client, user, resp.headers["Location"])
    assert result["status"] == "failed"
    assert result["error"].startswith("file: conversation 2")
    assert result["imported"] is None
    assert await chats_of(client, user) == []
    storage = app_of(client)[appkeys.STORAGE]
    assert list(storage.imports.iterdir()) == []


async def test_another_users_import_is_404(client, user, other_user):
    resp = await upload_async(client, user, json.dumps(chatgpt_file()).encode())
    location = resp.headers["Location"]
    for account, path in ((other_user, location), (user, f"/api/imports/{uuid.uuid4()}"), (user, "/api/imports/x")):
        answer = await client.get(path, headers=account.headers)
        assert answer.status == 404
        assert_error(await answer.json(), "not_found")
    await finished(client, user, location)


async def test_a_job_run_twice_imports_nothing_twice(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    resp = await upload_async(client, account, json.dumps(chatgpt_file() + many(2)).encode())
    body = await resp.json()
    assert body["status"] == "queued"
    app = app_of(client)
    await run_import(app, body["id"])
    first = await status_of(client, account, resp.headers["Location"])
    await run_import(app, body["id"])
    assert await status_of(client, account, resp.headers["Location"]) == first
    assert (first["status"], first["imported"]) == ("done", 3)
    assert len(await chats_of(client, account)) == 3
    assert list(app[appkeys.STORAGE].imports.iterdir()) == []


async def test_other_preferences_get_the_synchronous_answer(client, user):
    resp = await upload_async(client, user, json.dumps(chatgpt_file()).encode(), prefer="return=minimal")
    assert resp.status == 200
    assert "Preference-Applied" not in resp.headers
    assert await resp.json() == {"imported": 1, "skipped": 0}


async def test_respond_async_is_found_among_other_preferences(client, user):
    resp = await upload_async(client, user, json.dumps(chatgpt_file()).encode(),
                              prefer='return=minimal, Respond-Async; x="1", wait=10')
    assert resp.status == 202
    assert (await finished(client, user, resp.headers["Location"]))["imported"] == 1


async def test_openapi_documents_the_async_answer_and_the_status(client):
    document = await (await client.get("/openapi.json")).json()
    accepted = document["paths"]["/api/import"]["post"]["responses"]["202"]
    assert set(accepted["headers"]) == {"Location", "Preference-Applied"}
    status = document["paths"]["/api/imports/{import_id}"]["get"]
    assert status["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImportStatus")
    assert "404" in status["responses"]


async def test_housekeeping_fails_an_import_whose_job_was_lost_and_removes_stray_files(make_client):
    client = await make_client(start_workers=False, UPLOAD_ORPHAN_AGE_SECONDS=60)
    account = await register(client)
    app, storage = app_of(client), app_of(client)[appkeys.STORAGE]
    waiting = await (await upload_async(client, account, json.dumps(chatgpt_file()).encode())).json()
    # the process died between recording the import and queuing its job
    lost = await imports.insert(db_of(client), uuid.UUID(account.id))
    # both old enough by construction, not by racing the clock
    await db_of(client).execute("UPDATE imports SET created_at = created_at - interval '1 hour' WHERE id = ANY(%s)",
                                ([lost["id"], uuid.UUID(waiting["id"])],))
    storage.import_path(lost["id"]).write_bytes(b"[]")
    stray = storage.import_path(uuid.uuid4())
    stray.write_bytes(b"[]")
    for path in storage.imports.iterdir():
        os.utime(path, (0, 0))

    await housekeep_imports(app)

    failed = await status_of(client, account, f"/api/imports/{lost['id']}")
    assert (failed["status"], failed["error"]) == ("failed", LOST)
    assert (await status_of(client, account, f"/api/imports/{waiting['id']}"))["status"] == "queued"
    assert list(storage.imports.iterdir()) == [storage.import_path(waiting["id"])]


async def test_a_file_nested_too_deeply_fails_at_once_and_is_never_retried(client, user):
    data = ('[{"id":"d","title":"d","mapping":{},"x":' + "[" * 100_000 + "]" * 100_000 + "}]").encode()
    resp = await upload_async(client, user, data)
    assert resp.status == 202, await resp.text()
    result = await finished(client, user, resp.headers["Location"])
    assert result["status"] == "failed"
    # a failure the job retried and gave up on says "did not complete"; this one is the file's
    assert result["error"].startswith("file: ") and "nested" in result["error"], result["error"]
    stats = app_of(client)[appkeys.QUEUE].stats["import"]
    assert (stats.failed, stats.retried, stats.dead) == (0, 0, 0)
    assert await chats_of(client, user) == []
