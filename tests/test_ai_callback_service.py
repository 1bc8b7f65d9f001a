"""The callback backend's request to the AI service: context, retries, failures."""

import uuid

from support.accounts import create_chat, register
from support.fake_ai_service import FakeAIService, callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import db_of
from support.ws_frames import follow, open_ws


async def setup(fake_service, make_client, service=None, **settings):
    service, client = await start_callback_service(fake_service, make_client, service, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    return service, client, account, chat


async def insert_file(client, account, chat_id, name, status, text):
    return await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, chat_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, %s, %s, %s, 10, 'x', 'text/plain', %s, %s) RETURNING id
        """,
        (account.id, chat_id, name, uuid.uuid4().hex, status, text))


async def test_attached_ready_file_reaches_the_service_in_files(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    file_id = await insert_file(client, account, chat["id"], "report.txt", "ready", "Quarterly revenue grew 12%.")
    posted = await post_message(client, account, chat["id"], "Summarise the report", file_ids=[str(file_id)])
    body = await service.request_for(posted["assistant_message"]["id"])
    assert body["files"] == [{"id": str(file_id), "name": "report.txt", "content": "Quarterly revenue grew 12%."}]


async def test_files_beyond_the_budget_are_cut_and_unfinished_ones_sent_with_a_note(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client, FILE_CONTEXT_CHAR_BUDGET=100,
                                                 FILE_WAIT_SECONDS=0.2)
    big = await insert_file(client, account, chat["id"], "big.txt", "ready", "word " * 100)
    late = await insert_file(client, account, chat["id"], "late.pdf", "processing", None)
    rest = await insert_file(client, account, chat["id"], "rest.txt", "ready", "never fits")
    posted = await post_message(client, account, chat["id"], "Read these", file_ids=[str(big), str(late), str(rest)])
    files = (await service.request_for(posted["assistant_message"]["id"]))["files"]
    assert [f["name"] for f in files] == ["big.txt", "late.pdf", "rest.txt"]
    assert len(files[0]["content"]) == 100 and files[0]["content"].endswith("[... truncated to fit the context budget]")
    assert files[1]["content"] == "" and "still being processed" in files[1]["note"]
    assert files[2]["content"] == "" and "budget" in files[2]["note"]


async def test_history_is_oldest_first_without_failed_cancelled_or_superseded_answers(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)

    async def turn(question, finish):
        answer = (await post_message(client, account, chat["id"], question))["assistant_message"]
        path = callback_path(await service.request_for(answer["id"]))
        await idle(client)
        await finish(answer, path)
        return answer

    async def complete(text):
        async def finish(answer, path):
            await client.post(path, json={"type": "complete", "content": text})
        return finish

    async def fail(answer, path):
        await client.post(path, json={"type": "error", "error": "boom"})

    async def cancel(answer, path):
        await client.post(path, json={"type": "chunk", "content": "half"})
        await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)

    await turn("q1", await complete("a1"))
    await turn("q2", fail)
    await turn("q3", cancel)
    replaced = await turn("q4", await complete("old a4"))
    resp = await client.post(f"/api/messages/{replaced['id']}/regenerate", headers=account.headers)
    assert resp.status == 201
    regenerated = await service.request_for((await resp.json())["id"])
    assert regenerated["message"] == "q4"
    assert regenerated["conversation_history"] == [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "user", "content": "q3"}]
    await client.post(callback_path(regenerated), json={"type": "complete", "content": "new a4"})
    last = (await post_message(client, account, chat["id"], "q5"))["assistant_message"]
    history = (await service.request_for(last["id"]))["conversation_history"]
    assert history[-2:] == [{"role": "user", "content": "q4"}, {"role": "assistant", "content": "new a4"}]
    assert {"role": "assistant", "content": "old a4"} not in history


async def test_history_is_bounded_by_its_budget_keeping_the_newest(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client, HISTORY_CHAR_BUDGET=25)
    for question in ("first question", "second q", "third q"):
        posted = await post_message(client, account, chat["id"], question)
        await service.request_for(posted["assistant_message"]["id"])
    last = (await post_message(client, account, chat["id"], "now"))["assistant_message"]
    history = (await service.request_for(last["id"]))["conversation_history"]
    assert history == [{"role": "user", "content": "second q"}, {"role": "user", "content": "third q"}]


async def test_5xx_and_timeouts_are_retried_then_accepted(fake_service, make_client):
    service = FakeAIService(statuses=(500, 503, 202))
    service, client, account, chat = await setup(fake_service, make_client, service)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    await idle(client)
    assert len(service.requests_for(answer["id"])) == 3
    assert len({r["callback_url"] for r in service.requests_for(answer["id"])}) == 1
    assert (await get_message(client, account, answer["id"]))["status"] == "streaming"


async def test_a_slow_service_times_out_and_is_retried(fake_service, make_client):
    # a time-out the service's requests reach well within, and an answer well past it
    service = FakeAIService(delay=3)
    service, client, account, chat = await setup(fake_service, make_client, service,
                                                 AI_SERVICE_TIMEOUT_SECONDS=1, JOB_MAX_ATTEMPTS=2)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    await idle(client)
    assert len(service.requests_for(answer["id"])) == 2
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["error"]) == ("failed", "the AI service did not answer in time")


async def test_a_service_that_keeps_failing_fails_the_message_and_tells_watchers(fake_service, make_client):
    service = FakeAIService(statuses=(500,))
    service, client, account, chat = await setup(fake_service, make_client, service, JOB_MAX_ATTEMPTS=3)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    frames = await follow(ws, answer["id"])
    await idle(client)
    assert len(service.requests_for(answer["id"])) == 3
    assert frames[0] == {"type": "stream_content", "message_id": answer["id"], "content": ""}
    assert frames[-1] == {"error": "the AI service answered HTTP 500: Internal Server Error",
                          "message_id": answer["id"], "status": "failed"}
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["error"]) == ("failed", "the AI service answered HTTP 500: Internal Server Error")


async def test_a_4xx_fails_the_message_at_once(fake_service, make_client):
    service = FakeAIService(statuses=(400,))
    service, client, account, chat = await setup(fake_service, make_client, service)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    await idle(client)
    assert len(service.requests_for(answer["id"])) == 1
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["error"]) == ("failed", "the AI service answered HTTP 400: Bad Request")
    assert stored["completed_at"] is not None


async def test_the_chats_model_settings_reach_the_service(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client, OPENAI_MODEL="house-model",
                                                 OPENAI_MODELS="big-model")
    resp = await client.patch(f"/api/chats/{chat['id']}", headers=account.headers,
                              json={"model": "big-model", "system_prompt": "Be terse.", "max_tokens": 99})
    assert resp.status == 200
    posted = await post_message(client, account, chat["id"], "Hi")
    body = await service.request_for(posted["assistant_message"]["id"])
    assert {k: body[k] for k in ("model", "system_prompt", "temperature", "max_tokens")} == {
        "model": "big-model", "system_prompt": "Be terse.", "temperature": None, "max_tokens": 99}


async def test_a_chat_without_settings_sends_nulls(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    posted = await post_message(client, account, chat["id"], "Hi")
    body = await service.request_for(posted["assistant_message"]["id"])
    assert [body[k] for k in ("model", "system_prompt", "temperature", "max_tokens")] == [None] * 4
