"""End to end against a real model: llama-cpp-python's OpenAI-compatible
server running Gemma 3 270M (`--chat_format gemma`, 1024 tokens of context).

The model server lives in a virtual environment of its own that
`.ci/realmodel-env` builds (llama-cpp-python compiles from source); these
tests skip, saying so, when it is absent. Answers are kept short with
`max_tokens`, so each run is bounded. The tool tests print what the model
server was sent and answered (`pytest -s`): docs/tools.md, "Model servers",
says what it did."""

import asyncio
import glob
import itertools
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import openai
import pytest
import requests
from support.accounts import create_chat, register
from support.databases import admin_sql, with_database
from support.messages import get_message, idle, post_message
from support.net import free_port
from support.recording_proxy import RecordingProxy, summary
from support.served_app import db_of
from support.uploads import processed, uploaded
from support.ws_frames import open_ws, read_to_end, receive, streamed_text

from chatserver.migrate import apply_migrations

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def own_database(servers):
    """A database of this module's own. In the session's shared one, an app's
    sweep queues again every unfinished answer of an earlier test, whose job
    lived under another Redis prefix; here each would wait its turn at a model
    server that generates one answer at a time (found by a shuffled run)."""
    name = f"chatserver_realmodel_{uuid.uuid4().hex[:8]}"
    admin_sql(servers["admin_dsn"], f'CREATE DATABASE "{name}"')
    dsn = with_database(servers["admin_dsn"], name)
    apply_migrations(dsn)
    yield dsn
    admin_sql(servers["admin_dsn"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(settings, own_database):
    return settings.replace(DATABASE_URL=own_database)


def _environment() -> Path | None:
    given = os.environ.get("CHATSERVER_REALMODEL_ENV")
    if given:
        return Path(given) if (Path(given) / "ready").exists() else None
    root = Path(os.environ.get("CHATSERVER_REALMODEL_ROOT", Path.home() / ".cache" / "chatserver-realmodel"))
    found = sorted(glob.glob(str(root / "*" / "ready")))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def model_server():
    env = _environment()
    if env is None:
        pytest.skip("no real-model environment: run .ci/realmodel-env (builds llama-cpp-python and "
                    "assembles Gemma 3 270M under ~/.cache/chatserver-realmodel)")
    port = free_port()
    process = subprocess.Popen(
        [str(env / "bin" / "python"), "-m", "llama_cpp.server", "--model", str(env / "model.gguf"),
         "--chat_format", "gemma", "--n_ctx", "1024", "--host", "127.0.0.1", "--port", str(port),
         "--model_alias", "gemma3-270m"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/models", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the llama-cpp-python server did not start")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


async def start(make_client, model_server, **settings):
    client = await make_client(OPENAI_BASE_URL=model_server, OPENAI_MODEL="gemma3-270m", AI_CONTEXT_TOKENS=600,
                               STREAM_TIMEOUT_SECONDS=60, DEFAULT_SYSTEM_PROMPT="Answer in one short sentence.",
                               **settings)
    account = await register(client)
    resp = await client.post("/api/chats", json={"max_tokens": 24, "temperature": 0}, headers=account.headers)
    return client, account, await resp.json()


async def ask(client, account, chat, question, **extra):
    answer = (await post_message(client, account, chat["id"], question, **extra))["assistant_message"]
    await idle(client)
    return await get_message(client, account, answer["id"])


@pytest.mark.timeout(300)
async def test_an_answer_streams_and_ends_complete_with_usage(make_client, model_server):
    client, account, chat = await start(make_client, model_server)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "What colour is the sky?"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = await read_to_end(ws, timeout=120)
    await idle(client)
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"]
    assert streamed_text(frames) == stored["content"]
    assert stored["finish_reason"] in ("stop", "length")
    assert stored["model"]
    assert frames[-1]["type"] == "complete"


@pytest.mark.timeout(300)
async def test_three_turns_carry_the_history(make_client, model_server):
    client, account, chat = await start(make_client, model_server)
    for question in ("My name is Ada.", "I live in Paris.", "What is my name?"):
        stored = await ask(client, account, chat, question)
        assert stored["status"] == "complete"
    assert "ada" in stored["content"].lower()


@pytest.mark.timeout(300)
async def test_a_files_text_reaches_the_model_through_the_gemma_template(make_client, model_server):
    client, account, chat = await start(make_client, model_server)
    marker = "The secret word is PELICAN."
    file_id = await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, 'secret.txt', %s, 1, 'x', 'text/plain', 'ready', %s) RETURNING id
        """, (account.id, uuid.uuid4().hex, marker))
    with_file = await ask(client, account, chat, "What is the secret word?", file_ids=[str(file_id)])
    assert with_file["status"] == "complete"
    # as a second system message (as before) the gemma template dropped it
    assert "pelican" in with_file["content"].lower()


@pytest.mark.timeout(300)
async def test_cancel_stops_the_answer_and_the_server_answers_the_next(make_client, model_server):
    client, account, chat = await start(make_client, model_server)
    await client.patch(f"/api/chats/{chat['id']}", json={"max_tokens": 400}, headers=account.headers)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Write a long story about a cat."))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frame = await receive(ws, timeout=120)
    while not frame.get("content"):
        frame = await receive(ws, timeout=120)
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert (await resp.json())["status"] == "cancelled"
    await idle(client)
    await client.patch(f"/api/chats/{chat['id']}", json={"max_tokens": 8}, headers=account.headers)
    # llama-cpp-python serves one generation at a time: the next answer
    # completes only because the cancelled one's generation was stopped
    following = await ask(client, account, chat, "Say hi.")
    assert following["status"] == "complete"
    cancelled = await get_message(client, account, answer["id"])
    assert cancelled["status"] == "cancelled"


async def test_the_responses_api_answers_and_continues_with_the_real_model(make_client, model_server):
    client, account, _ = await start(make_client, model_server)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    api = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
    try:
        first = await api.responses.create(model="gemma3-270m", input="Name a herb.", max_output_tokens=24,
                                           temperature=0)
        assert first.status in ("completed", "incomplete") and first.output_text.strip()
        events = [e async for e in await api.responses.create(
            model="gemma3-270m", input="Name another one.", previous_response_id=first.id, max_output_tokens=24,
            temperature=0, stream=True)]
        final = events[-1]
        assert final.type in ("response.completed", "response.incomplete")
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == final.response.output_text and final.response.usage.input_tokens > 0
    finally:
        await api.close()


@pytest.mark.timeout(300)
async def test_a_long_attached_file_reaches_the_model_as_the_passage_that_answers(make_client, model_server):
    client, account, chat = await start(make_client, model_server)
    filler = [f"Section {n}. The weather on day {n} was mild and the garden needed no work." for n in range(400)]
    filler.insert(217, "The gardener's dog is called BISCUIT.")
    long = await processed(client, account, await uploaded(client, account, "\n\n".join(filler).encode(), "log.txt"))
    stored = await ask(client, account, chat, "What is the gardener's dog called?", file_ids=[long["id"]])
    assert stored["status"] == "complete"
    # the file is far past AI_CONTEXT_TOKENS: only its passages went, the right one among them
    assert any("BISCUIT" in s["content"] for s in stored["sources"])
    # what a 270M model makes of the passage is its own affair: the test holds what the server
    # controls (the right passage went, and the answer completed), not the model's reading


async def finished(client, account, message_id: str, seconds: float = 300) -> dict:
    """The answer once it ended, however long a busy machine takes to generate it."""
    deadline = time.monotonic() + seconds
    while (stored := await get_message(client, account, message_id))["status"] in ("pending", "streaming"):
        assert time.monotonic() < deadline, stored
        await asyncio.sleep(0.2)
    return stored


def _seen_steps(frames: list[dict]) -> dict[str, str]:
    """The last state of each step a socket was told of (late-join snapshot, then frames)."""
    states: dict[str, str] = {}
    for frame in frames:
        steps = frame.get("steps", []) if frame.get("type") == "stream_content" else (
            [frame["step"]] if frame.get("type") == "tool_call" else [])
        for step in steps:
            states[step["id"]] = step["status"]
    return states


@pytest.mark.timeout(600)
async def test_a_question_for_a_chat_tool_ends_and_any_call_is_run_recorded_and_streamed(
        make_client, model_server, fake_service):
    # what the model server is sent and answers is kept by a proxy, and printed (pytest -s) for the record
    proxy = RecordingProxy(model_server)
    client, account, chat = await start(make_client, str((await fake_service(proxy.app)).make_url("/v1")),
                                        TOOL_MAX_STEPS=3)
    earlier = await create_chat(client, account)
    said = await post_message(client, account, earlier["id"], "Remember: my zanzibar trip starts on 3 May.")
    await finished(client, account, said["assistant_message"]["id"])
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["builtin:search_chats"], "max_tokens": 64},
                              headers=account.headers)
    assert resp.status == 200, await resp.text()
    ws = await open_ws(client, account, chat["id"])
    question = "Use the search_chats tool to find when my zanzibar trip starts."
    answer = (await post_message(client, account, chat["id"], question))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = await read_to_end(ws, timeout=500)
    stored = await finished(client, account, answer["id"])
    exchanges = [summary(e) for e in proxy.exchanges if e["request"].get("tools")]
    print("\nreal model and a chat tool:", json.dumps(
        {"model_requests": exchanges, "steps": stored["steps"], "status": stored["status"],
         "content": stored["content"]}, indent=1, default=str))

    assert stored["status"] == "complete" and frames[-1]["type"] == "complete"
    assert streamed_text(frames) == stored["content"]
    assert exchanges[0]["tools"] == ["search_chats"]
    # every call the model asked for is a step that ran to an end, told to the socket as it ended
    asked = [call for exchange in exchanges for call in exchange["tool_calls"]]
    assert len(stored["steps"]) == len(asked)
    for step, call in zip(stored["steps"], asked, strict=True):
        assert step["tool"] == ("builtin:search_chats" if call["name"] == "search_chats" else call["name"])
        assert step["status"] in ("done", "failed")
    assert _seen_steps(frames) == {step["id"]: step["status"] for step in stored["steps"]}
    # each round of calls but a last one cut by TOOL_MAX_STEPS went back to the model with its results
    for number, (before, after) in enumerate(itertools.pairwise(exchanges), start=1):
        assert before["tool_calls"]
        results = [m for m in after["messages"] if m[0] == "tool"]
        assert len(results) == sum(len(e["tool_calls"]) for e in exchanges[:number])


@pytest.mark.timeout(300)
async def test_v1_a_tool_the_client_forces_comes_back_from_the_real_model_as_a_call(make_client, model_server):
    client, account, _ = await start(make_client, model_server)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    api = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
                       "required": ["city"]}}}
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    options = {"model": "gemma3-270m", "tools": [weather], "max_tokens": 64, "temperature": 0,
               "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    try:
        whole = await api.chat.completions.create(messages=asked, **options)
        [call] = whole.choices[0].message.tool_calls
        chunks = [c async for c in await api.chat.completions.create(messages=asked, stream=True, **options)]
        pieces = [d for c in chunks for choice in c.choices for d in choice.delta.tool_calls or []]
        finish = [choice.finish_reason for c in chunks for choice in c.choices if choice.finish_reason]
        # the client runs its tool and sends the result back; the model answers in text
        answered = await api.chat.completions.create(model="gemma3-270m", max_tokens=24, temperature=0, messages=[
            # content "", not null: llama-cpp-python's server refuses a null content
            *asked, {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees."}])
    finally:
        await api.close()
    print("\nreal model and a forced client tool on /v1:", json.dumps({
        "whole": whole.choices[0].model_dump(), "streamed_calls": [p.model_dump() for p in pieces],
        "streamed_finish": finish, "after_the_result": answered.choices[0].model_dump()}, indent=1))

    assert whole.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert finish == ["tool_calls"]
    assert {p.function.name for p in pieces if p.function and p.function.name} == {"get_weather"}
    assert json.loads("".join(p.function.arguments or "" for p in pieces if p.function)) == json.loads(
        call.function.arguments)
    assert answered.choices[0].finish_reason in ("stop", "length")
    assert not answered.choices[0].message.tool_calls
