"""Clients that read one answer to its end as an outside client would (tests
and bench/ use them): over the WebSocket and over server-sent events, each
resuming the contract's way whenever its connection drops (a new socket and
`stream_request`; `Last-Event-ID`), and over `/v1/chat/completions`, which
has no resume and reads one stream to whatever ends it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import aiohttp

# what ended a reading: "complete", "failed" or "cancelled" (the answer's end on the
# WebSocket or SSE), "done" (/v1's [DONE]), "error" (/v1's error chunk), "cut" (/v1's
# connection broke: no end at all), "silent" (/v1's stream stopped cleanly without one) or
# "refused" (an SSE stream whose credential stopped being good)


@dataclasses.dataclass
class Reading:
    text: str = ""
    end: str = ""
    # /v1: the id of the stored answer (its chunks' id is chatcmpl-<hex of it>)
    answer_id: str = ""
    error: str = ""
    # pieces of text received, and connections that broke before the end
    chunks: int = 0
    reconnects: int = 0

    def add(self, piece: str) -> None:
        self.text += piece
        self.chunks += 1

    def finish(self, frame: dict) -> None:
        """Take an answer's end (WebSocket `complete` or error frame, SSE `complete` or `error`)."""
        self.end = frame["status"] if "status" in frame else "refused" if "error" in frame else "complete"
        self.error = frame.get("error", "")
        if self.end == "complete" and "content" in frame:
            self.text = frame["content"]


async def _patient_post(http: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> aiohttp.ClientResponse:
    """POST as a patient client: a `503` (a server swamped for a moment) is tried again after its Retry-After."""
    while True:
        resp = await http.post(url, json=body, headers=headers)
        if resp.status != 503:
            return resp
        resp.release()
        await asyncio.sleep(min(float(resp.headers.get("Retry-After", 1)), 1.0))


async def post_json(http: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> dict:
    async with await _patient_post(http, url, body, headers) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


async def _again(reading: Reading) -> None:
    reading.reconnects += 1
    await asyncio.sleep(0.1)  # a client's pause before it reconnects, not a wait for a condition


async def read_by_websocket(http: aiohttp.ClientSession, base: str, token: str, chat_id: str, answer_id: str,
                            reading: Reading) -> Reading:
    while True:
        try:
            async with http.ws_connect(f"{base}/ws/chat/{chat_id}?token={token}") as ws:
                await ws.send_json({"type": "stream_request", "message_id": answer_id})
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    frame = json.loads(message.data)
                    if frame.get("type") == "stream_content":
                        reading.text = frame["content"]
                    elif frame.get("type") == "chunk":
                        reading.add(frame["content"])
                    elif frame.get("type") == "complete" or ("error" in frame and "status" in frame):
                        reading.finish(frame)
                        return reading
                    elif frame.get("code") == "service_unavailable":
                        await ws.send_json({"type": "stream_request", "message_id": answer_id})
                    elif "error" in frame:
                        raise AssertionError(f"the socket refused stream_request: {frame}")
        except aiohttp.ClientError:
            pass
        await _again(reading)


async def read_by_sse(http: aiohttp.ClientSession, base: str, headers: dict, answer_id: str,
                      reading: Reading) -> Reading:
    last_id: str | None = None
    while True:
        try:
            resume = {"Last-Event-ID": last_id} if last_id is not None else {}
            async with http.get(f"{base}/api/messages/{answer_id}/stream", headers=headers | resume) as resp:
                if resp.status == 200:
                    event: dict[str, str] = {}
                    async for raw in resp.content:
                        line = raw.decode().rstrip("\n")
                        if line:
                            field, _, value = line.partition(": ")
                            event[field] = value
                            continue
                        if "data" in event:
                            data = json.loads(event["data"])
                            if event["event"] == "content":
                                reading.text = data["content"]
                            elif event["event"] == "chunk":
                                reading.add(data["content"])
                            elif event["event"] in ("complete", "error"):
                                reading.finish(data)
                                return reading
                            last_id = event["id"]
                        event = {}
        except aiohttp.ClientError:
            pass
        await _again(reading)


async def read_by_v1(http: aiohttp.ClientSession, base: str, key: str, question: str, reading: Reading,
                     model: str = "test-model") -> Reading:
    body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True}
    try:
        async with await _patient_post(http, f"{base}/v1/chat/completions", body,
                                       {"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200, await resp.text()
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    reading.end = "done"
                    return reading
                data = json.loads(line[len("data: "):])
                if "id" in data:
                    reading.answer_id = str(uuid.UUID(data["id"].removeprefix("chatcmpl-")))
                if "error" in data:
                    reading.end, reading.error = "error", data["error"]["message"]
                    return reading
                content = data["choices"][0]["delta"].get("content") if data["choices"] else None
                if content:
                    reading.add(content)
        reading.end = "silent"
    except aiohttp.ClientPayloadError:
        reading.end = "cut"
    return reading
