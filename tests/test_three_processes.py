"""Three `run.py` processes sharing one PostgreSQL and one Redis behind
Debian's nginx, configured by deploy/nginx.conf: 100 clients follow answers
through nginx over the WebSocket, server-sent events and /v1 streams while
one process is killed with SIGKILL in the middle of them. Every client ends
with the exact stored text and an honest end: the WebSocket and SSE clients
by resuming through nginx, the /v1 streams with [DONE] after the whole text,
an error chunk, or (served by the dead process) a broken connection, never
[DONE] after a cut text nor a clean end without either.

The model is a real HTTP server streaming slowly. The answers the dead
process was generating end `failed` (interrupted, their text kept) once its
lease expires and the sweep finds them: the test runs with a short lease and
sweep interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from urllib.parse import urlsplit

import aiohttp
import pytest
from support.nginx_proxy import NGINX, NginxProxy
from support.paced_model import PacedModel
from support.run_process import start_run_py
from support.stream_readers import Reading, post_json, read_by_sse, read_by_v1, read_by_websocket

from chatserver.ai.answer_job import INTERRUPTED

pytestmark = [pytest.mark.nginx,
              pytest.mark.skipif(not NGINX.exists(), reason=f"{NGINX} is missing: install Debian's nginx package "
                                                            "(.ci/run does)")]

PROCESSES = 3
CLIENTS = {"websocket": 34, "sse": 33, "v1": 33}
SETTINGS = {"OPENAI_MODEL": "test-model", "OPENAI_API_KEY": "sk-test",
            # every answer starts at once (each slot's worker loop holds a Redis connection of the
            # process's pool of 100 while it waits)
            "QUEUE_AI_CONCURRENCY": "40",
            # a dead process's answers are found within seconds
            "JOB_LEASE_SECONDS": "3", "SWEEP_INTERVAL_SECONDS": "1",
            # every client comes from nginx's address and posts far faster than a person
            "RATE_LIMIT_MESSAGES": "0", "RATE_LIMIT_REGISTER": "0",
            # three processes share the session's PostgreSQL with the other tests
            "DB_POOL_MAX": "12"}


async def _start_processes(tmp_path, servers, redis_prefix, model_url: str) -> list[tuple]:
    started = await asyncio.gather(
        *(start_run_py(tmp_path, servers, redis_prefix, OPENAI_BASE_URL=model_url,
                       OPENAI_HEADERS=json.dumps({"X-Process": str(n)}), **SETTINGS) for n in range(PROCESSES)),
        return_exceptions=True)
    failed = [result for result in started if isinstance(result, BaseException)]
    if failed:
        _stop([result[0] for result in started if not isinstance(result, BaseException)])
        raise failed[0]
    return [result for result in started if not isinstance(result, BaseException)]


def _stop(processes) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


async def _stored(http, base: str, headers: dict, answer_id: str) -> dict:
    async with http.get(f"{base}/api/messages/{answer_id}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.mark.timeout(180)
async def test_a_process_killed_mid_stream_behind_nginx_leaves_every_client_an_exact_text_and_an_honest_end(
        tmp_path, servers, redis_prefix, fake_service):
    model = PacedModel()
    model_url = str((await fake_service(model.app)).make_url("/v1"))
    started = await _start_processes(tmp_path, servers, redis_prefix, model_url)
    processes = [proc for proc, _ in started]
    proxy = NginxProxy(tmp_path / "nginx", [urlsplit(url).port for _, url in started])
    tasks: list[asyncio.Task] = []
    try:
        await proxy.start()
        base = proxy.url
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
            async with http.post(f"{base}/api/auth/register",
                                 json={"email": f"nginx-{redis_prefix[-8:]}@example.com",
                                       "password": "password123"}) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(f"{base}/api/keys", json={"name": "v1"}, headers=headers) as resp:
                key = (await resp.json())["key"]

            readings: dict[str, tuple[str, Reading]] = {}  # question -> (surface, reading)
            answer_ids: dict[str, str] = {}  # question -> answer id (WebSocket and SSE)

            async def follow(surface: str, question: str) -> Reading:
                reading = readings[question][1]
                if surface == "v1":
                    return await read_by_v1(http, base, key, question, reading)
                chat_id = (await post_json(http, f"{base}/api/chats", {"title": question}, headers))["id"]
                posted = await post_json(http, f"{base}/api/chats/{chat_id}/messages", {"content": question}, headers)
                answer_ids[question] = posted["assistant_message"]["id"]
                if surface == "websocket":
                    return await read_by_websocket(http, base, token, chat_id, answer_ids[question], reading)
                return await read_by_sse(http, base, headers, answer_ids[question], reading)

            for surface, count in CLIENTS.items():
                for n in range(count):
                    question = f"{surface} question {n}"
                    readings[question] = (surface, Reading())
                    tasks.append(asyncio.create_task(follow(surface, question)))

            # the kill comes once every client holds part of its answer
            async with asyncio.timeout(90):
                while not all(reading.text or reading.end for _, reading in readings.values()):
                    for task in tasks:
                        if task.done():
                            task.result()  # a client that failed says why
                    await asyncio.sleep(0.05)
            victim = max(model.streaming, key=lambda asker: model.streaming[asker])
            assert model.streaming[victim] > 0, "every answer ended before the kill"
            processes[int(victim)].send_signal(signal.SIGKILL)
            processes[int(victim)].wait()

            async with asyncio.timeout(120):
                await asyncio.gather(*tasks)

            for question, (surface, reading) in readings.items():
                full = model.answer_for(question)
                answer_id = answer_ids.get(question) or reading.answer_id
                stored = await _stored(http, base, headers, answer_id)
                said = f"{surface} client of {question!r}: {reading}, stored {stored['status']}"
                if stored["status"] == "complete":
                    assert stored["content"] == full, said
                else:
                    # only the dead process's generations may end early, and then as the contract says
                    assert (stored["status"], stored["error"]) == ("failed", INTERRUPTED), said
                    assert full.startswith(stored["content"]) and victim in model.askers[question], said
                if surface != "v1":
                    assert (reading.end, reading.text) == (stored["status"], stored["content"]), said
                elif reading.end == "done":
                    assert (stored["status"], reading.text) == ("complete", full), said
                elif reading.end == "error":
                    assert (stored["status"], reading.text) == ("failed", stored["content"]), said
                    assert reading.error == INTERRUPTED, said
                else:
                    # its connection was to the dead process: broken, never ended as if whole
                    assert reading.end == "cut" and full.startswith(reading.text), said

            resumed = [r for surface, r in readings.values() if surface != "v1" and r.reconnects]
            assert resumed, "no WebSocket or SSE client was connected to the killed process"
            assert any(r.end == "failed" for _, r in readings.values()), "the kill interrupted no generation"
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        proxy.stop()
        _stop(processes)
