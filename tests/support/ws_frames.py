"""A chat's WebSocket as a test reads it: open it, receive frames, follow an
answer to its end, and the text a client would show from them."""

from __future__ import annotations

import json


async def open_ws(client, account, chat_id: str):
    return await client.ws_connect(f"/ws/chat/{chat_id}?token={account.token}")


async def receive(ws, timeout: float = 30) -> dict:
    return json.loads((await ws.receive(timeout=timeout)).data)


async def follow(ws, message_id: str, timeout: float = 30) -> list[dict]:
    """Send stream_request and read frames up to `complete` or an error frame."""
    await ws.send_json({"type": "stream_request", "message_id": message_id})
    return await read_to_end(ws, timeout)


async def read_to_end(ws, timeout: float = 30) -> list[dict]:
    frames = []
    while True:
        frame = await receive(ws, timeout)
        frames.append(frame)
        if frame.get("type") == "complete" or "error" in frame:
            return frames


def streamed_text(frames: list[dict]) -> str:
    """stream_content + chunks, as a client would show them."""
    text = ""
    for frame in frames:
        if frame.get("type") == "stream_content":
            text = frame["content"]
        elif frame.get("type") == "chunk":
            text += frame["content"]
    return text


async def subscribed(client, account, chat_id):
    """A socket on the chat that has subscribed to its events."""
    ws = await open_ws(client, account, chat_id)
    await ws.send_json({"type": "subscribe"})
    assert await receive(ws) == {"type": "subscribed"}
    return ws
