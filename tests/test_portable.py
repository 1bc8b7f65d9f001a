"""Export (Markdown, one conversation, everything streamed) and import of
ChatGPT's conversations.json layout: branches, nodes without text, ZIPs,
garbage, the same file twice, and a round trip between accounts."""

import asyncio
import io
import json
import tracemalloc
import zipfile

from support.accounts import create_chat, register
from support.chatgpt_import import chatgpt_file, chats_of, node, upload
from support.error_shape import assert_error
from support.message_tree import answer, edit, setup, shown, switch, turn
from support.messages import post_message


async def test_a_chatgpt_file_imports_every_branch_and_shows_the_current_node(client, user):
    resp = await upload(client, user, json.dumps(chatgpt_file()).encode())
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"imported": 1, "skipped": 0}
    (chat,) = await chats_of(client, user)
    assert chat["title"] == "From ChatGPT"
    listed = await shown(client, user, chat["id"])
    assert [m["content"] for m in listed] == ["First question, edited", "Answer to the edit"]
    assert all(m["status"] == "complete" for m in listed)
    assert listed[1]["created_at"].startswith("2023-11-14T22:13:25")
    assert len(listed[0]["siblings"]) == 2 and listed[0]["parent_id"] is None
    await switch(client, user, chat["id"], listed[0]["siblings"][0])
    assert [m["content"] for m in await shown(client, user, chat["id"])] == ["First question", "First answer"]


async def test_the_same_file_twice_imports_nothing_the_second_time(client, user):
    data = json.dumps(chatgpt_file()).encode()
    assert await (await upload(client, user, data)).json() == {"imported": 1, "skipped": 0}
    assert await (await upload(client, user, data)).json() == {"imported": 0, "skipped": 1}
    assert len(await chats_of(client, user)) == 1


async def test_a_chatgpt_zip_is_read(client, user):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chat.html", "<html></html>")
        archive.writestr("conversations.json", json.dumps(chatgpt_file()))
    resp = await upload(client, user, buffer.getvalue(), "export.zip")
    assert await resp.json() == {"imported": 1, "skipped": 0}


async def test_garbage_is_422_and_imports_nothing(client, user):
    good = chatgpt_file()[0]
    for data in (b"\x00\x01 not json", b'{"no": "mapping"}', json.dumps([good, {"mapping": 5}]).encode(),
                 b"PK\x03\x04 broken zip", json.dumps("text").encode()):
        resp = await upload(client, user, data)
        assert resp.status == 422, data
        assert_error(await resp.json(), "unreadable_import")
    assert await chats_of(client, user) == []


async def test_a_file_over_the_upload_limit_is_413(make_client):
    client = await make_client(MAX_UPLOAD_SIZE=1000)
    account = await register(client)
    resp = await upload(client, account, json.dumps(chatgpt_file() * 5).encode())
    assert resp.status == 413
    assert await chats_of(client, account) == []


async def test_markdown_export_is_the_shown_branch(client, user):
    chat = await create_chat(client, user, "Garden notes")
    posted = await post_message(client, user, chat["id"], "What grows next to tomatoes?")
    await edit(client, user, posted["user_message"]["id"], "What grows next to basil?")
    resp = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "markdown"}, headers=user.headers)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="Garden notes.md"')
    text = await resp.text()
    assert text.startswith("# Garden notes\n") and "What grows next to basil?" in text
    assert "tomatoes" not in text


async def test_export_of_a_foreign_chat_is_404_and_an_unknown_format_422(client, user, other_user, chat):
    resp = await client.get(f"/api/chats/{chat['id']}/export", headers=other_user.headers)
    assert resp.status == 404
    resp = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "pdf"}, headers=user.headers)
    assert resp.status == 422


async def test_round_trip_into_another_account_keeps_texts_and_branches(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    second = await turn(client, service, account, chat["id"], "q2", "a2")
    edited = await edit(client, account, second["user_message"]["id"], "q2 edited")
    await answer(client, service, edited["assistant_message"]["id"], "a2 edited")
    await create_chat(client, account, "Empty one")
    resp = await client.get("/api/export", headers=account.headers)
    assert resp.status == 200
    assert 'filename="conversations.json"' in resp.headers["Content-Disposition"]
    exported = json.loads(await resp.read())
    assert len(exported) == 2
    one = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "json"}, headers=account.headers)
    assert json.loads(await one.read())[0]["mapping"].keys() == next(
        c for c in exported if c["id"] == chat["id"])["mapping"].keys()

    # back into the same account: those chats are already there
    resp = await upload(client, account, json.dumps(exported).encode())
    assert await resp.json() == {"imported": 0, "skipped": 2}

    other = await register(client)
    resp = await upload(client, other, json.dumps(exported).encode())
    assert await resp.json() == {"imported": 2, "skipped": 0}
    copy = next(c for c in await chats_of(client, other) if c["title"] == chat["title"])
    listed = await shown(client, other, copy["id"])
    assert [m["content"] for m in listed] == ["q1", "a1", "q2 edited", "a2 edited"]
    await switch(client, other, copy["id"], listed[2]["siblings"][0])
    assert [m["content"] for m in await shown(client, other, copy["id"])] == ["q1", "a1", "q2", "a2"]


def deeply_nested(depth: int) -> bytes:
    return ('[{"id":"d","title":"d","mapping":{},"x":' + "[" * depth + "]" * depth + "}]").encode()


async def test_a_file_nested_too_deeply_is_422_and_imports_nothing(client, user):
    for depth in (100, 5_000, 100_000):
        resp = await upload(client, user, deeply_nested(depth))
        assert resp.status == 422, (depth, await resp.text())
        body = await resp.json()
        assert_error(body, "unreadable_import")
        assert "nested" in body["error"]
    assert await chats_of(client, user) == []


async def test_a_conversation_nested_64_levels_deep_is_read(client, user):
    conversation = chatgpt_file()[0]
    conversation["extra"] = json.loads("[" * 60 + "]" * 60)
    resp = await upload(client, user, json.dumps([conversation]).encode())
    assert await resp.json() == {"imported": 1, "skipped": 0}


async def test_a_cyclic_mapping_is_refused_not_stored_as_an_empty_chat(client, user):
    good = chatgpt_file()[0]
    cyclic = {"id": "c0ffee00-0000-4000-8000-0000000000cc", "title": "Loop", "create_time": 1700000000.0,
              "current_node": "a", "mapping": {"a": node("a", "b", ["b"], "user", "A"),
                                               "b": node("b", "a", ["a"], "assistant", "B")}}
    resp = await upload(client, user, json.dumps([good, cyclic]).encode())
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert_error(body, "unreadable_import")
    assert "conversation 2" in body["error"] and "cycle" in body["error"]
    assert await chats_of(client, user) == []


def long_chain(count: int, conversation_id: str = "c0ffee00-0000-4000-8000-00000000beef") -> bytes:
    """One conversation of `count` messages, each answering the one before."""
    mapping = {}
    for i in range(count):
        key = f"m{i}"
        mapping[key] = node(key, f"m{i - 1}" if i else None, [f"m{i + 1}"] if i + 1 < count else [],
                            "user" if i % 2 == 0 else "assistant", f"message {i} " + "lorem ipsum " * 25,
                            at=1700000000.0 + i)
    return json.dumps([{"id": conversation_id, "title": "Long", "create_time": 1700000000.0,
                        "current_node": f"m{count - 1}", "mapping": mapping}]).encode()


async def exported_size(client, account) -> tuple[int, int]:
    """(bytes of GET /api/export, the most memory allocated at once while it ran)."""
    tracemalloc.start()
    try:
        resp = await client.get("/api/export", headers=account.headers)
        assert resp.status == 200, await resp.text()
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_the_export_of_everything_streams_in_memory_flat_in_its_size(client, user):
    resp = await upload(client, user, io.BytesIO(long_chain(20_000)))
    assert await resp.json() == {"imported": 1, "skipped": 0}
    size, peak = await exported_size(client, user)
    assert size > 8_000_000
    assert peak < size / 5, (size, peak)


async def test_the_streamed_export_keeps_every_message_and_the_tree(client, user):
    await upload(client, user, long_chain(1_200))
    await upload(client, user, json.dumps(chatgpt_file()).encode())
    exported = json.loads(await (await client.get("/api/export", headers=user.headers)).read())
    long = next(c for c in exported if c["title"] == "Long")
    messages = [n for n in long["mapping"].values() if n["message"]]
    assert len(messages) == 1_200
    by_text = {n["message"]["content"]["parts"][0].split(" ")[1]: n for n in messages}
    assert long["mapping"][by_text["1"]["parent"]] is by_text["0"]
    assert by_text["0"]["children"] == [by_text["1"]["id"]] and by_text["1199"]["children"] == []
    assert long["current_node"] == by_text["1199"]["id"]
    root = long["mapping"][by_text["0"]["parent"]]
    assert root["message"] is None and root["children"] == [by_text["0"]["id"]]
    other = await register(client)
    assert await (await upload(client, other, json.dumps(exported).encode())).json() == {"imported": 2,
                                                                                          "skipped": 0}


async def test_concurrent_exports_past_the_limit_are_429_with_retry_after(make_client):
    client = await make_client(EXPORT_CONCURRENCY=1)
    holder, other = await register(client), await register(client)
    await upload(client, holder, io.BytesIO(long_chain(20_000)))
    held = await client.get("/api/export", headers=holder.headers)
    assert held.status == 200
    await held.content.read(1)  # started, and stalled: nobody reads the rest
    resp = await client.get("/api/export", headers=other.headers)
    assert resp.status == 429, await resp.text()
    assert int(resp.headers["Retry-After"]) >= 1
    assert_error(await resp.json(), "too_many_exports")
    held.close()
    async with asyncio.timeout(10):
        while (resp := await client.get("/api/export", headers=other.headers)).status == 429:
            await asyncio.sleep(0.05)
    assert resp.status == 200 and json.loads(await resp.read()) == []


async def test_one_user_runs_one_export_at_a_time(make_client):
    client = await make_client(EXPORT_CONCURRENCY=4)
    account = await register(client)
    await upload(client, account, io.BytesIO(long_chain(20_000)))
    held = await client.get("/api/export", headers=account.headers)
    await held.content.read(1)
    resp = await client.get("/api/export", headers=account.headers)
    assert resp.status == 429
    assert_error(await resp.json(), "too_many_exports")
    assert (await client.get("/api/export", headers=(await register(client)).headers)).status == 200
    held.close()
