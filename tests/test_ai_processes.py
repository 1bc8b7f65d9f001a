"""Two `run.py` processes sharing PostgreSQL and Redis behave as one server,
also when one of them is killed (SIGKILL) mid-stream."""


import aiohttp
import pytest
from support.fake_ai_service import FakeAIService, callback_path
from support.run_process import start_run_py
from support.ws_frames import read_to_end, streamed_text


@pytest.mark.timeout(120)
async def test_a_socket_on_one_process_gets_chunks_posted_to_another_even_after_a_kill(
        tmp_path, servers, redis_prefix, fake_service):
    service = FakeAIService()
    service_url = str((await fake_service(service.app)).make_url("/generate"))
    a, a_url = await start_run_py(tmp_path, servers, redis_prefix, AI_SERVICE_URL=service_url)
    b, b_url = await start_run_py(tmp_path, servers, redis_prefix, AI_SERVICE_URL=service_url)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{a_url}/api/auth/register",
                                 json={"email": f"two-{redis_prefix[-8:]}@example.com",
                                       "password": "password123"}) as r:
                token = (await r.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(f"{a_url}/api/chats", json={"title": "two"}, headers=headers) as r:
                chat = await r.json()
            async with http.post(f"{a_url}/api/chats/{chat['id']}/messages", json={"content": "hi"},
                                 headers=headers) as r:
                answer = (await r.json())["assistant_message"]
            path = callback_path(await service.request_for(answer["id"]))
            ws = await http.ws_connect(f"{b_url}/ws/chat/{chat['id']}?token={token}")
            await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
            frames = [await ws.receive_json(timeout=30)]
            for seq, text in enumerate(["one", " two"]):
                async with http.post(f"{a_url}{path}", json={"type": "chunk", "content": text, "seq": seq}) as r:
                    assert r.status == 200
            a.kill()
            a.wait()
            for seq, text in ((3, " four"), (2, " three")):
                async with http.post(f"{b_url}{path}", json={"type": "chunk", "content": text, "seq": seq}) as r:
                    assert r.status == 200
            async with http.post(f"{b_url}{path}", json={"type": "complete"}) as r:
                assert r.status == 200
            frames += await read_to_end(ws)
            assert frames[0] == {"type": "stream_content", "message_id": answer["id"], "content": ""}
            assert streamed_text(frames) == "one two three four"
            assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": []}
            async with http.get(f"{b_url}/api/messages/{answer['id']}", headers=headers) as r:
                stored = await r.json()
            assert (stored["status"], stored["content"]) == ("complete", "one two three four")
            assert len(service.requests_for(answer["id"])) == 1  # the job ran on exactly one process
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
