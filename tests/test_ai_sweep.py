"""Nothing hangs: stream time-out, crashes between steps, lost jobs, dead processes."""

import time

from support.accounts import create_chat, register
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import app_of, db_of
from support.ws_frames import open_ws, read_to_end, receive, streamed_text

from chatserver import appkeys
from chatserver.ai.answer_job import INTERRUPTED, generate
from chatserver.ai.sweep import LOST, sweep_answers
from chatserver.live.answers import ANSWERS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event


async def streaming(fake_service, make_client, **settings):
    service, client = await start_callback_service(fake_service, make_client, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Explain"))["assistant_message"]
    path = callback_path(await service.request_for(answer["id"]))
    await idle(client)
    await client.post(path, json={"type": "chunk", "content": "Partial", "seq": 0})
    return client, account, chat, answer, path


async def pending_answer(make_client):
    """An app without workers and one posted question whose answer is still pending."""
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    return client, app_of(client), account, chat, answer


async def test_no_activity_for_the_stream_timeout_fails_keeping_the_text(fake_service, make_client):
    client, account, chat, answer, path = await streaming(fake_service, make_client, STREAM_TIMEOUT_SECONDS=30)
    app = app_of(client)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(ws))["content"] == "Partial"
    await sweep_answers(app)
    assert (await get_message(client, account, answer["id"]))["status"] == "streaming"
    # the last activity was 31 s ago
    await app[appkeys.REDIS].zadd(app[appkeys.KEYS].streams_active, {answer["id"]: time.time() - 31})
    await sweep_answers(app)
    reason = "no activity from the AI backend for 30 s"
    assert await read_to_end(ws) == [{"error": reason, "message_id": answer["id"], "status": "failed"}]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("failed", "Partial", reason)
    assert (await client.post(path, json={"type": "chunk", "content": "late", "seq": 1})).status == 409


async def test_an_answer_finished_in_redis_but_not_in_postgresql_is_stored(fake_service, make_client):
    client, account, chat, answer, path = await streaming(fake_service, make_client)
    await client.post(path, json={"type": "complete", "seq": 1, "sources": [{"title": "s"}]})
    # as if the process died between the Redis script and the PostgreSQL write
    await db_of(client).execute("UPDATE messages SET status = 'streaming', content = '', completed_at = NULL "
                                "WHERE id = %s", (answer["id"],))
    await sweep_answers(app_of(client))
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "Partial")
    assert stored["sources"] == [{"title": "s", "url": "", "content": ""}]


async def test_a_streaming_answer_whose_live_state_is_lost_fails(fake_service, make_client):
    client, account, chat, answer, path = await streaming(fake_service, make_client, STREAM_CHECKPOINT_SECONDS=0)
    app = app_of(client)
    keys = app[appkeys.KEYS]
    await app[appkeys.REDIS].delete(keys.stream(answer["id"]), keys.stream_content(answer["id"]))
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert await receive(ws) == {"type": "stream_content", "message_id": answer["id"], "content": "Partial"}
    await sweep_answers(app)
    assert await read_to_end(ws) == [{"error": LOST, "message_id": answer["id"], "status": "failed"}]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("failed", "Partial", LOST)


async def test_a_pending_answer_whose_job_was_lost_is_queued_again(make_client):
    client, app, account, chat, answer = await pending_answer(make_client)
    queue_key = app[appkeys.KEYS].queue("ai")
    await db_of(client).execute("UPDATE messages SET created_at = created_at - interval '1 hour' WHERE id = %s",
                                (answer["id"],))

    async def its_jobs() -> list[str]:
        """The answer's own: the sweep also queues earlier tests' pending answers of the shared database."""
        return [job for job in await app[appkeys.REDIS].lrange(queue_key, 0, -1) if answer["id"] in job]

    await sweep_answers(app)
    assert len(await its_jobs()) == 1  # its job is still queued
    await app[appkeys.REDIS].delete(queue_key)
    await sweep_answers(app)
    assert len(await its_jobs()) == 1


async def test_a_local_generation_of_a_dead_process_fails_at_the_next_sweep(make_client):
    client, app, account, chat, answer = await pending_answer(make_client)
    await app[ANSWER_STATE].open(answer["id"], owner="a-process-that-died")
    await app[ANSWERS].add(answer["id"], chat["id"], Event.chunk("Half an ans"))
    await db_of(client).execute("UPDATE messages SET status = 'streaming' WHERE id = %s", (answer["id"],))
    await sweep_answers(app)
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("failed", "Half an ans", INTERRUPTED)


async def test_a_rerun_job_fails_a_half_written_local_answer_instead_of_writing_it_twice(make_client):
    client, app, account, chat, answer = await pending_answer(make_client)
    await app[ANSWER_STATE].open(answer["id"], owner="a-process-that-died")
    await app[ANSWERS].add(answer["id"], chat["id"], Event.chunk("Half"))
    await generate(app, answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["error"]) == ("failed", "Half", INTERRUPTED)


async def test_killing_the_instance_that_took_the_callbacks_loses_nothing(fake_service, make_client):
    client, account, chat, answer, path = await streaming(fake_service, make_client)
    survivor = await make_client()
    ws = await open_ws(survivor, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)
    await client.close()
    for seq, text in ((2, " three"), (1, " two")):
        assert (await survivor.post(path, json={"type": "chunk", "content": text, "seq": seq})).status == 200
    assert (await survivor.post(path, json={"type": "complete"})).status == 200
    frames = [first] + await read_to_end(ws)
    assert streamed_text(frames) == "Partial two three"
    stored = await get_message(survivor, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "Partial two three")
