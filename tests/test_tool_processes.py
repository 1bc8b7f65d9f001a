"""A `run.py` process killed (SIGKILL) in the middle of an answer's tool
loop: another process ends the answer honestly, keeping the step that ran,
and runs no call again."""

import asyncio
import json
import time

import aiohttp
import pytest
from support.run_process import start_run_py
from support.tool_models import FakeToolModel, calls, tool_results

from chatserver.ai.answer_job import INTERRUPTED


@pytest.mark.timeout(120)
async def test_a_kill_mid_loop_ends_the_answer_and_keeps_the_step(tmp_path, servers, redis_prefix, fake_service):
    held = asyncio.Event()

    class HangingSecondRound(FakeToolModel):
        async def handle(self, request):
            if tool_results(await request.json()):
                self.requests.append(await request.json())
                held.set()
                await asyncio.Event().wait()  # the model never answers the second round
            return await super().handle(request)

    model = HangingSecondRound(lambda body: calls(("search_chats", {"query": "kill"})))
    model_url = str((await fake_service(model.app)).make_url("/v1"))
    settings = {"AI_BACKEND": "openai", "OPENAI_BASE_URL": model_url, "OPENAI_MODEL": "m",
                "JOB_LEASE_SECONDS": "2", "SWEEP_INTERVAL_SECONDS": "0.5"}
    a, a_url = await start_run_py(tmp_path, servers, redis_prefix, **settings)
    b = None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{a_url}/api/auth/register",
                                 json={"email": f"kill-{redis_prefix[-8:]}@example.com",
                                       "password": "password123"}) as r:
                headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
            async with http.post(f"{a_url}/api/chats", json={"tools": ["builtin:search_chats"]}, headers=headers) as r:
                chat = await r.json()
            async with http.post(f"{a_url}/api/chats/{chat['id']}/messages", json={"content": "kill me"},
                                 headers=headers) as r:
                answer = (await r.json())["assistant_message"]
            await asyncio.wait_for(held.wait(), 30)
            a.kill()
            a.wait()
            b, b_url = await start_run_py(tmp_path, servers, redis_prefix, **settings)
            deadline = time.monotonic() + 60
            while True:
                async with http.get(f"{b_url}/api/messages/{answer['id']}", headers=headers) as r:
                    stored = await r.json()
                if stored["status"] not in ("pending", "streaming"):
                    break
                assert time.monotonic() < deadline, stored
                await asyncio.sleep(0.2)
        assert (stored["status"], stored["error"]) == ("failed", INTERRUPTED)
        [step] = stored["steps"]
        assert (step["tool"], step["status"]) == ("builtin:search_chats", "done")
        # the first round ran once and the call was not run again (the database is shared: other
        # tests' unfinished answers may reach this model through b's sweep, so count only this one's)
        assert sum(1 for r in model.requests if not tool_results(r) and "kill me" in json.dumps(r["messages"])) == 1
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
