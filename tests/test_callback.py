"""The callback endpoint (docs/ai-service.md, "Callbacks"): tokens, seq, answers."""

import asyncio
import signal

from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import app_of, db_of
from support.ws_frames import follow, open_ws, read_to_end, receive, streamed_text

from chatserver.data import message_drafts, messages
from chatserver.live.answers import ANSWERS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event


async def started(fake_service, make_client, **settings):
    service, client = await start_callback_service(fake_service, make_client, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    posted = await post_message(client, account, chat["id"], "Say hello")
    body = await service.request_for(posted["assistant_message"]["id"])
    await idle(client)
    return service, client, account, chat, posted["assistant_message"], body


async def test_service_receives_message_history_files_and_signed_callback_url(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    assert service.headers[0]["Authorization"] == "Bearer service-key"
    assert body["message"] == "Say hello"
    assert body["conversation_history"] == []
    assert body["message_id"] == answer["id"] and body["chat_id"] == chat["id"]
    assert body["files"] == []
    assert f"/api/ai/callback/{answer['id']}?token=" in body["callback_url"]
    assert (await get_message(client, account, answer["id"]))["status"] == "streaming"


async def test_chunks_then_complete_store_the_answer(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    for seq, text in enumerate(["Hel", "lo", " world"]):
        resp = await client.post(path, json={"type": "chunk", "content": text, "seq": seq})
        assert resp.status == 200 and await resp.json() == {"ok": True}
    live = await get_message(client, account, answer["id"])
    assert live["status"] == "streaming" and live["content"] == "Hello world"
    source = {"title": "Doc", "url": "https://example.com/doc", "content": "a passage"}
    resp = await client.post(path, json={"type": "complete", "sources": [source]})
    assert resp.status == 200
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"] == "Hello world"
    assert stored["sources"] == [source] and stored["completed_at"] is not None and stored["error"] is None


async def test_forged_token_and_token_of_another_message_are_403(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    first_path = callback_path(body)
    second = (await post_message(client, account, chat["id"], "Second question"))["assistant_message"]
    other = await service.request_for(second["id"])
    other_token = callback_path(other).split("token=")[1]
    for path in (f"/api/ai/callback/{answer['id']}?token=forged",
                 f"/api/ai/callback/{answer['id']}",
                 f"/api/ai/callback/{answer['id']}?token={other_token}"):
        resp = await client.post(path, json={"type": "chunk", "content": "evil"})
        assert resp.status == 403
        assert_error(await resp.json(), "invalid_token")
    assert (await client.post(first_path, json={"type": "chunk", "content": "fine"})).status == 200
    assert (await get_message(client, account, answer["id"]))["content"] == "fine"


async def test_unknown_message_is_404(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    resp = await client.post("/api/ai/callback/not-a-uuid?token=x", json={"type": "chunk", "content": "a"})
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    assert (await client.delete(f"/api/chats/{chat['id']}", headers=account.headers)).status == 204
    resp = await client.post(path, json={"type": "chunk", "content": "late"})
    assert resp.status in (404, 409)  # 409 while the cancelled state lingers in Redis
    app = app_of(client)
    await app[ANSWER_STATE].redis.delete(app[ANSWER_STATE].keys.stream(answer["id"]))
    resp = await client.post(path, json={"type": "chunk", "content": "later"})
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_duplicate_and_out_of_order_seq_are_applied_once_in_order(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)  # the snapshot first, so that every chunk surely comes after it
    deliveries = [(2, "C"), (0, "A"), (0, "A"), (3, "D"), (1, "B"), (2, "C"), (1, "B")]
    for seq, text in deliveries:
        resp = await client.post(path, json={"type": "chunk", "content": text, "seq": seq})
        assert resp.status == 200, await resp.text()
    assert (await get_message(client, account, answer["id"]))["content"] == "ABCD"
    assert (await client.post(path, json={"type": "complete", "seq": 4})).status == 200
    frames = [first, *await read_to_end(ws)]
    assert frames == [
        {"type": "stream_content", "message_id": answer["id"], "content": ""},
        {"type": "chunk", "message_id": answer["id"], "content": "A"},
        {"type": "chunk", "message_id": answer["id"], "content": "BCD"},
        {"type": "complete", "message_id": answer["id"], "sources": []},
    ]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "ABCD")


async def test_a_batch_is_applied_in_order_and_a_parked_complete_waits_for_the_gap(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    batch = [{"type": "chunk", "content": "one ", "seq": 0}, {"type": "complete", "seq": 3},
             {"type": "chunk", "content": "three", "seq": 2}]
    assert (await client.post(path, json=batch)).status == 200
    assert (await get_message(client, account, answer["id"]))["status"] == "streaming"
    assert (await client.post(path, json={"type": "chunk", "content": "two ", "seq": 1})).status == 200
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "one two three")


async def test_callbacks_after_completion_are_409_and_change_nothing(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    assert (await client.post(path, json=[{"type": "chunk", "content": "done"}, {"type": "complete"}])).status == 200
    for event in ({"type": "chunk", "content": "more"}, {"type": "complete", "content": "other"},
                  {"type": "error", "error": "late"}):
        resp = await client.post(path, json=event)
        assert resp.status == 409
        assert_error(await resp.json(), "message_finished")
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("complete", "done", None)


async def test_complete_content_is_authoritative(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    # the snapshot first, so that the chunk surely comes after it
    first = await receive(ws)
    await client.post(path, json={"type": "chunk", "content": "Helo", "seq": 0})
    await client.post(path, json={"type": "complete", "content": "Hello, corrected."})
    frames = [first, *await read_to_end(ws)]
    assert frames[0] == {"type": "stream_content", "message_id": answer["id"], "content": ""}
    assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": [],
                          "content": "Hello, corrected."}
    assert (await get_message(client, account, answer["id"]))["content"] == "Hello, corrected."


async def test_complete_content_extending_the_stream_arrives_as_a_last_chunk(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)  # the snapshot first, so that the chunk surely comes after it
    await client.post(path, json={"type": "chunk", "content": "Hello"})
    await client.post(path, json={"type": "complete", "content": "Hello world"})
    frames = [first, *await read_to_end(ws)]
    assert [f.get("content") for f in frames] == ["", "Hello", " world", None]
    assert streamed_text(frames) == "Hello world"


async def test_error_event_fails_the_answer_keeping_its_text(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    ws = await open_ws(client, account, chat["id"])
    await client.post(path, json={"type": "chunk", "content": "partial"})
    await client.post(path, json={"type": "error", "error": "model overloaded"})
    frames = await follow(ws, answer["id"])
    assert frames == [{"type": "stream_content", "message_id": answer["id"], "content": "partial"},
                      {"error": "model overloaded", "message_id": answer["id"], "status": "failed"}]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("failed", "partial", "model overloaded")
    assert stored["completed_at"] is not None


async def test_malformed_events_are_422_and_store_nothing(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    bad = [b"{not json", b"42", b"[]", b'{"type": "chunk"}', b'{"type": "chunk", "content": 5}',
           b'{"type": "chunk", "content": "a", "seq": -1}', b'{"type": "chunk", "content": "a", "seq": "1"}',
           b'{"type": "shout", "content": "a"}', b'{"content": "a"}',
           b'[{"type": "chunk", "content": "ok"}, {"type": "chunk"}]',
           b'{"type": "complete", "sources": "nope"}', b'{"type": "chunk", "content": "a\\u0000b"}',
           b'{"type": "chunk", "content": "a", "seq": 5000}']
    for raw in bad:
        resp = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 422, raw
        assert_error(await resp.json())
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("streaming", "")
    assert (await client.post(path, json={"type": "chunk", "content": "still fine"})).status == 200


async def test_each_malformed_event_gets_its_own_error_code(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    cases = [
        (b'{"type": "chunk", "content": "a", "seq": true}', "validation_error"),
        (b'{"type": "chunk", "content": "a", "seq": 1.0}', "validation_error"),
        (b'{"type": "chunk", "content": "a", "seq": 1e400}', "invalid_json"),
        (b'{"type": "chunk", "content": "a", "seq": NaN}', "invalid_json"),
        (b'{"type": "chunk", "content": "a\\ud800"}', "invalid_input"),
        (b'{"type": "chunk", "content": "a", "note": "x\\u0000"}', "invalid_input"),
        (b'{"type": "chunk", "content": "a", "note": ' + b"[" * 100 + b"]" * 100 + b"}", "invalid_json"),
        (b"[" + b",".join([b'{"type": "chunk", "content": "a"}'] * 1001) + b"]", "validation_error"),
        (b'{"type": "chunk", "content": "a", "seq": 18446744073709551616}', "seq_too_far"),
    ]
    for raw, code in cases:
        resp = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 422, raw
        assert_error(await resp.json(), code)
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("streaming", "")


async def test_fields_an_event_does_not_name_are_ignored(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    events = [{"type": "chunk", "content": "one ", "seq": 0, "model": "m", "usage": {"tokens": [1, 2]}},
              {"type": "chunk", "content": "two", "seq": None, "at": 1.5}]
    assert (await client.post(path, json=events)).status == 200
    assert (await get_message(client, account, answer["id"]))["content"] == "one two"


async def test_the_token_counts_wherever_it_stands_in_the_query(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    token = callback_path(body).split("token=")[1]
    escaped = "".join(f"%{ord(c):02X}" for c in token)
    base = f"/api/ai/callback/{answer['id']}"
    for n, path in enumerate((f"{base}?attempt=2&token={token}", f"{base}?token={escaped}",
                              f"{base}?token={token}&token=forged",
                              f"/api/ai/callback/{answer['id'].upper()}?token={token}")):
        resp = await client.post(path, json={"type": "chunk", "content": str(n)})
        assert resp.status == 200, (path, await resp.text())
    resp = await client.post(f"{base}?token=forged&token={token}", json={"type": "chunk", "content": "x"})
    assert resp.status == 403
    assert (await get_message(client, account, answer["id"]))["content"] == "0123"


async def stored_text(client, message_id) -> tuple[str, str]:
    """What PostgreSQL holds of an answer: its status and text."""
    state = await messages.get_state(db_of(client), message_id)
    return state["status"], state["content"]


async def stored_pieces(client, message_id, kind="c") -> list[str]:
    rows = await db_of(client).fetch("SELECT piece FROM message_drafts WHERE message_id = %s AND kind = %s "
                                     "ORDER BY at", (message_id, kind))
    return [row["piece"] for row in rows]


async def test_chunks_reach_postgresql_only_at_checkpoints(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=3600)
    path = callback_path(body)
    for seq in range(5):
        assert (await client.post(path, json={"type": "chunk", "content": f"{seq} ", "seq": seq})).status == 200
    assert await stored_text(client, answer["id"]) == ("streaming", "")
    listed = (await (await client.get(f"/api/chats/{chat['id']}/messages", headers=account.headers)).json())["items"]
    assert listed[-1]["content"] == "0 1 2 3 4 " and listed[-1]["status"] == "streaming"


async def test_a_due_checkpoint_saves_the_partial_text(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    await client.post(path, json=[{"type": "chunk", "content": "saved", "seq": 0}])
    assert await stored_text(client, answer["id"]) == ("streaming", "saved")


async def test_each_checkpoint_stores_only_what_is_new_since_the_last(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    for seq, piece in enumerate(["héllo ", "wörld ", "🌍"]):
        await client.post(path, json={"type": "chunk", "content": piece, "seq": seq})
    assert await stored_pieces(client, answer["id"]) == ["héllo ", "wörld ", "🌍"]
    assert await stored_text(client, answer["id"]) == ("streaming", "héllo wörld 🌍")
    await client.post(path, json={"type": "complete", "seq": 3})
    await idle(client)
    assert await stored_text(client, answer["id"]) == ("complete", "héllo wörld 🌍")
    assert await stored_pieces(client, answer["id"]) == []


async def test_a_repeated_or_late_checkpoint_changes_nothing(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    await client.post(path, json={"type": "chunk", "content": "ünï ", "seq": 0})
    await client.post(path, json={"type": "chunk", "content": "two", "seq": 1})
    db, end = db_of(client), len("ünï two".encode())
    assert await message_drafts.add(db, answer["id"], len("ünï ".encode()), "two", 0, "") == (end, 0)
    assert await message_drafts.add(db, answer["id"], 0, "ünï ", 0, "") == (end, 0)
    assert await message_drafts.add(db, answer["id"], 0, "ünï two", 0, "") == (end, 0)
    assert await stored_text(client, answer["id"]) == ("streaming", "ünï two")
    assert await stored_pieces(client, answer["id"]) == ["ünï ", "two"]


async def test_a_checkpoint_that_never_reached_postgresql_is_made_good_by_the_next(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    await client.post(path, json={"type": "chunk", "content": "one ", "seq": 0})
    # the live state took a checkpoint whose process died before writing it to PostgreSQL
    lost = await app_of(client)[ANSWER_STATE].apply(answer["id"], chat["id"], [Event.chunk("lost ", seq=1)])
    assert lost == ["checkpoint", len("one "), "lost ", 0, ""]
    assert await stored_text(client, answer["id"]) == ("streaming", "one ")
    await client.post(path, json={"type": "chunk", "content": "three", "seq": 2})
    assert await stored_text(client, answer["id"]) == ("streaming", "one lost three")
    # the lost one arriving after all changes nothing
    await message_drafts.add(db_of(client), answer["id"], lost[1], lost[2], lost[3], lost[4])
    assert await stored_text(client, answer["id"]) == ("streaming", "one lost three")


async def test_a_checkpoint_arriving_after_the_end_adds_nothing(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    await client.post(path, json={"type": "chunk", "content": "done", "seq": 0})
    await client.post(path, json={"type": "complete", "seq": 1})
    await idle(client)
    assert await message_drafts.add(db_of(client), answer["id"], len("done"), " late", 0, "") is None
    assert await stored_text(client, answer["id"]) == ("complete", "done")
    assert await stored_pieces(client, answer["id"]) == []


async def test_checkpoints_store_the_reasoning_apart_piece_by_piece(make_client):
    client = await make_client(start_workers=False, STREAM_CHECKPOINT_SECONDS=0)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    app = app_of(client)
    await app[ANSWER_STATE].open(answer["id"])
    for event in [Event.reasoning("Think"), Event.chunk("Say"), Event.reasoning("ing."), Event.chunk(" so.")]:
        assert await app[ANSWERS].add(answer["id"], chat["id"], event)
    state = await messages.get_state(db_of(client), answer["id"])
    assert (state["reasoning"], state["content"]) == ("Thinking.", "Say so.")
    assert await stored_pieces(client, answer["id"], "r") == ["Think", "ing."]
    assert await stored_pieces(client, answer["id"], "c") == ["Say", " so."]


async def test_an_answer_is_searchable_once_finished_not_at_its_checkpoints(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 STREAM_CHECKPOINT_SECONDS=0)
    path = callback_path(body)
    await client.post(path, json={"type": "chunk", "content": "the okapi ", "seq": 0})
    assert await stored_text(client, answer["id"]) == ("streaming", "the okapi ")
    search = await db_of(client).fetchval("SELECT search FROM messages WHERE id = %s", (answer["id"],))
    assert search is None
    search = {"q": "okapi"}
    assert (await (await client.get("/api/search", params=search, headers=account.headers)).json())["items"] == []
    await client.post(path, json={"type": "complete", "seq": 1})
    await idle(client)
    (hit,) = (await (await client.get("/api/search", params=search, headers=account.headers)).json())["items"]
    assert hit["message_id"] == answer["id"]


async def test_unicode_and_separators_survive_the_relay(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)  # the snapshot first, so that every chunk surely comes after it
    await client.post(path, json={"type": "chunk", "content": "héllo | wörld ", "seq": 0})
    await client.post(path, json={"type": "chunk", "content": "🌍 \"/\\\n", "seq": 1})
    await client.post(path, json={"type": "complete", "content": "héllo | wörld 🌍 \"/\\\n✓",
                                  "sources": [{"title": "ünï", "content": "🌍"}]})
    frames = [first, *await read_to_end(ws)]
    assert [f.get("content") for f in frames] == ["", "héllo | wörld ", "🌍 \"/\\\n", "✓", None]
    assert frames[-1]["sources"] == [{"title": "ünï", "url": "", "content": "🌍"}]
    assert (await get_message(client, account, answer["id"]))["content"] == "héllo | wörld 🌍 \"/\\\n✓"


async def test_an_answer_over_the_size_cap_fails_keeping_what_came_before(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client, MAX_ANSWER_BYTES=100)
    path = callback_path(body)
    assert (await client.post(path, json={"type": "chunk", "content": "x" * 60, "seq": 0})).status == 200
    resp = await client.post(path, json={"type": "chunk", "content": "y" * 60, "seq": 1})
    assert resp.status == 409
    assert_error(await resp.json(), "message_finished")
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "failed" and stored["content"] == "x" * 60
    assert stored["error"] == "the answer exceeded 100 bytes"


async def test_an_authoritative_final_text_over_the_cap_fails_the_answer(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client, MAX_ANSWER_BYTES=100)
    resp = await client.post(callback_path(body), json={"type": "complete", "content": "z" * 101})
    assert resp.status == 409
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "failed" and stored["content"] == ""


async def test_a_chunk_answered_503_while_redis_stalls_is_never_applied_so_its_retry_is_exact(
        fake_service, make_client, own_redis):
    service, client, account, chat, answer, body = await started(fake_service, make_client,
                                                                 REDIS_URL=own_redis.url)
    path = callback_path(body)
    assert (await client.post(path, json={"type": "chunk", "content": "A"})).status == 200
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        sending = asyncio.ensure_future(client.post(path, json={"type": "chunk", "content": "B"}))
        done, _ = await asyncio.wait({sending}, timeout=20)
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    resp = await sending
    assert done and resp.status == 503, await resp.text()
    assert_error(await resp.json(), "service_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1

    # retried as told, once Redis answers again
    async with asyncio.timeout(30):
        while (resp := await client.post(path, json={"type": "chunk", "content": "B"})).status == 503:
            await asyncio.sleep(0.2)
    assert resp.status == 200, await resp.text()
    assert (await get_message(client, account, answer["id"]))["content"] == "AB"
    assert (await client.post(path, json={"type": "complete"})).status == 200
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "AB")
