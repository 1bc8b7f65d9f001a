"""The OpenAI-compatible backend against llmock, a third-party mock model
server: every way an answer can end, the server's errors in its own words,
retries, and the request shape the model server receives."""

import uuid

import pytest
import requests
from support.accounts import create_chat, register
from support.llmock import REPLY, LLMock
from support.messages import get_message, idle, post_message
from support.served_app import db_of
from support.ws_frames import follow, open_ws, read_to_end

ENDED_EARLY = "the model's answer ended early"


@pytest.fixture(scope="module")
def llmock():
    server = LLMock()
    yield server
    server.stop()


async def start(make_client, llmock, *behaviors, **settings):
    llmock.script(*behaviors)
    settings = {"OPENAI_BASE_URL": llmock.url + "/v1", "OPENAI_MODEL": "gpt-4o-mini", **settings}
    client = await make_client(**settings)
    account = await register(client)
    chat = await create_chat(client, account)
    return client, account, chat


async def answer_to(client, account, chat, question="Hello there"):
    answer = (await post_message(client, account, chat["id"], question))["assistant_message"]
    await idle(client)
    return await get_message(client, account, answer["id"])


async def test_a_finished_answer_is_complete_with_finish_reason_usage_and_model(make_client, llmock):
    client, account, chat = await start(make_client, llmock)
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["finish_reason"], stored["model"]) == ("complete", "stop", "gpt-4o-mini")
    assert stored["content"] == REPLY
    assert stored["usage"]["completion_tokens"] > 0
    [body] = llmock.bodies()
    assert body["stream_options"] == {"include_usage": True}


async def test_an_answer_cut_by_the_token_limit_is_complete_with_finish_reason_length(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "reply", "text": "Once upon a", "finish_reason": "length"})
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["content"], stored["finish_reason"]) == ("complete", "Once upon a", "length")


async def test_a_connection_cut_mid_stream_fails_keeping_the_text(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "stream_fault", "kind": "disconnect", "after_chunks": 3})
    stored = await answer_to(client, account, chat)
    assert stored["status"] == "failed" and stored["error"].startswith(ENDED_EARLY)
    # what arrived before the cut is kept; how much of it got through the
    # socket before the server dropped it is up to the two kernels
    assert stored["content"] in ("One ", "One two ")
    assert stored["finish_reason"] is None


async def test_a_stream_that_ends_without_a_finish_is_failed(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "stream_fault", "kind": "truncate", "after_chunks": 3})
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["content"]) == ("failed", "One two ")
    assert stored["error"] == f"{ENDED_EARLY}: the model server ended the stream without saying it finished"


async def test_an_empty_stream_is_failed(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "stream_fault", "kind": "truncate", "after_chunks": 0})
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["content"]) == ("failed", "")
    assert stored["error"] == f"{ENDED_EARLY}: the model server sent no answer"


@pytest.mark.parametrize("status, message", [
    (400, "This model's maximum context length is 4096 tokens."),
    (401, "Incorrect API key provided."),
    (404, "The model `no-such-model` does not exist."),
])
async def test_a_refusal_fails_at_once_in_the_servers_words(make_client, llmock, status, message):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "fail", "status": status, "message": message})
    ws = await open_ws(client, account, chat["id"])
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["error"]) == ("failed", f"HTTP {status}: {message}")
    assert len(llmock.bodies()) == 1
    frames = await follow(ws, stored["id"])
    assert frames[-1] == {"error": f"HTTP {status}: {message}", "message_id": stored["id"], "status": "failed"}


async def test_a_429_is_retried_after_retry_after_and_watchers_see_the_wait(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "fail", "status": 429, "retry_after": 1, "times": 2})
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Busy?"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = await read_to_end(ws, timeout=20)
    await idle(client)
    assert {"type": "status", "message_id": answer["id"], "status": "retrying", "attempt": 3} in frames
    assert frames[-1]["type"] == "complete"
    assert len(llmock.bodies()) == 3
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete"


async def test_a_500_then_success_completes(make_client, llmock):
    client, account, chat = await start(make_client, llmock, {"type": "fail", "status": 500})
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["finish_reason"]) == ("complete", "stop")
    assert len(llmock.bodies()) == 2


async def test_a_server_that_keeps_failing_fails_the_answer_in_its_words(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "fail", "status": 503, "message": "overloaded", "times": None},
                                        JOB_MAX_ATTEMPTS=2)
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["error"]) == ("failed", "HTTP 503: overloaded")


async def test_a_slow_first_token_still_completes(make_client, llmock):
    client, account, chat = await start(make_client, llmock, {"type": "slow_first_token", "seconds": 1})
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["content"]) == ("complete", REPLY)


async def test_a_stall_mid_stream_fails_after_the_stream_timeout(make_client, llmock):
    client, account, chat = await start(make_client, llmock,
                                        {"type": "stream_fault", "kind": "stall", "after_chunks": 3,
                                         "stall_seconds": 30}, STREAM_TIMEOUT_SECONDS=3)
    stored = await answer_to(client, account, chat)
    assert (stored["status"], stored["content"]) == ("failed", "One two ")
    assert stored["error"] == f"{ENDED_EARLY}: the model server sent nothing for 3 s"


async def test_an_unreachable_server_fails_in_plain_words(make_client, llmock):
    client = await make_client(OPENAI_BASE_URL="http://127.0.0.1:9/v1", JOB_MAX_ATTEMPTS=2)
    account = await register(client)
    chat = await create_chat(client, account)
    stored = await answer_to(client, account, chat)
    assert stored["status"] == "failed"
    assert stored["error"].startswith("could not connect to the model server at 127.0.0.1:9")
    assert "Error" not in stored["error"]


async def test_the_request_has_one_system_message_and_alternating_turns(make_client, llmock):
    client, account, chat = await start(make_client, llmock, DEFAULT_SYSTEM_PROMPT="Be brief.")
    await answer_to(client, account, chat, "First question")
    llmock.script({"type": "fail", "status": 500, "times": None})
    await answer_to(client, account, chat, "Second question")
    llmock.script()
    await answer_to(client, account, chat, "Third question")
    [body] = llmock.bodies()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": REPLY},
        {"role": "user", "content": "Second question\n\nThird question"},
    ]


async def test_files_go_inside_the_last_user_message(make_client, llmock):
    client, account, chat = await start(make_client, llmock)
    file_id = await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, 'notes.txt', %s, 1, 'x', 'text/plain', 'ready', 'The password is PELICAN.') RETURNING id
        """, (account.id, uuid.uuid4().hex))
    await post_message(client, account, chat["id"], "What is the password?", file_ids=[str(file_id)])
    await idle(client)
    [body] = llmock.bodies()
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][-1]["content"] == ("Attached files:\n--- notes.txt ---\nThe password is PELICAN.\n"
                                               "--- end of files ---\n\nWhat is the password?")


async def test_the_chats_settings_reach_the_model_server(make_client, llmock):
    client, account, chat = await start(make_client, llmock)
    resp = await client.patch(f"/api/chats/{chat['id']}", headers=account.headers, json={
        "model": "gpt-4o", "system_prompt": "", "temperature": 0.3, "max_tokens": 50})
    assert resp.status == 200
    stored = await answer_to(client, account, chat)
    [body] = llmock.bodies()
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o", 0.3, 50)
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert stored["model"] == "gpt-4o"


async def test_without_settings_the_model_server_decides(make_client, llmock):
    client, account, chat = await start(make_client, llmock)
    await answer_to(client, account, chat)
    [body] = llmock.bodies()
    assert "temperature" not in body and "max_tokens" not in body
    assert body["model"] == "gpt-4o-mini"


async def test_history_is_cut_to_the_token_budget_newest_first(make_client, llmock):
    client, account, chat = await start(make_client, llmock, AI_CONTEXT_TOKENS=200, DEFAULT_SYSTEM_PROMPT="")
    for word in ("alpha", "bravo", "charlie"):
        await answer_to(client, account, chat, " ".join([word] * 30))
    llmock.script()
    await answer_to(client, account, chat, "Which words did I repeat?")
    [body] = llmock.bodies()
    sent = " ".join(m["content"] for m in body["messages"])
    assert "charlie" in sent and "alpha" not in sent
    assert body["messages"][0]["role"] == "user"
    assert body["messages"][-1] == {"role": "user", "content": "Which words did I repeat?"}


async def test_extra_headers_and_a_full_chat_url_are_used(make_client, llmock):
    client, account, chat = await start(make_client, llmock, OPENAI_BASE_URL="http://127.0.0.1:9/unused",
                                        OPENAI_CHAT_URL=llmock.url + "/v1/chat/completions",
                                        OPENAI_HEADERS='{"api-key": "azure-key"}')
    stored = await answer_to(client, account, chat)
    assert stored["status"] == "complete"
    [record] = [r for r in requests.get(llmock.url + "/_llmock/requests", timeout=10).json()["requests"]]
    assert record["path"] == "/v1/chat/completions"


async def test_models_lists_the_servers_models_plus_configured_ones(make_client, llmock):
    client, account, chat = await start(make_client, llmock, OPENAI_MODELS="my-fine-tune")
    resp = await client.get("/api/models", headers=account.headers)
    body = await resp.json()
    ids = [m["id"] for m in body["items"]]
    assert "gpt-4o" in ids and "my-fine-tune" in ids and body["default"] == "gpt-4o-mini"
    assert {m["backend"] for m in body["items"]} == {"openai"}
    bad = await client.patch(f"/api/chats/{chat['id']}", json={"model": "nope"}, headers=account.headers)
    assert bad.status == 422 and (await bad.json())["code"] == "unknown_model"


async def test_usage_is_reported_by_day_and_model_and_counted_in_metrics(make_client, llmock):
    client, account, chat = await start(make_client, llmock)
    stored = await answer_to(client, account, chat)
    resp = await client.get("/api/users/me/usage?days=7", headers=account.headers)
    [row] = (await resp.json())["items"]
    assert (row["model"], row["messages"]) == ("gpt-4o-mini", 1)
    assert row["completion_tokens"] == stored["usage"]["completion_tokens"]
    metrics = await (await client.get("/metrics")).text()
    assert 'ai_tokens_total{kind="completion",model="gpt-4o-mini"}' in metrics
