"""The WebSocket `/ws/chat/{chat_id}?token=...` of API.md.

`stream_request` is answered exactly: the follower registers with the
fan-out first, then reads the snapshot (text so far and its piece number),
then forwards only the pieces numbered above it. A gap in the numbers (the
pub/sub connection was lost) is filled from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from aiohttp import WSMsgType, web

from . import appkeys
from .answers import cancel_answer
from .auth import current_user_id
from .chats import get_owned_chat
from .endpoint import endpoint
from .errors import ApiError
from .fanout import FANOUT, RESYNC
from .streams import FINISHED, STREAMS, Snapshot

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024
# answers one socket may follow at once; each costs a task and a queue
MAX_FOLLOWED = 100


class _Text:
    """What one follower has sent of an answer so far."""

    def __init__(self, text: str):
        self.parts = [text]
        self.length = len(text)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def value(self) -> str:
        joined = "".join(self.parts)
        self.parts = [joined]
        return joined


async def _snapshot(app: web.Application, message_id: uuid.UUID) -> Snapshot:
    """The answer's state from Redis, else from PostgreSQL (not started yet, or long finished)."""
    streams = app[STREAMS]
    snap = await streams.snapshot(message_id)
    if snap is not None:
        return snap
    row = await app[appkeys.DB].fetchrow(
        "SELECT content, status, sources, error FROM messages WHERE id = %s", (message_id,))
    if row is None:
        return Snapshot("", 0, {"status": "failed", "sources": [], "error": "the message was deleted"})
    if row["status"] in FINISHED:
        return Snapshot(row["content"], 0, {k: row[k] for k in ("status", "sources", "error")})
    # the stream may have opened between the two reads; if not, the stored
    # text is all there is (a pending answer's is empty)
    snap = await streams.snapshot(message_id)
    return snap if snap is not None else Snapshot(row["content"], 0, None)


class Follower:
    def __init__(self, ws: web.WebSocketResponse, message_id: uuid.UUID):
        self.ws = ws
        self.message_id = message_id
        self.id = str(message_id)

    async def send_final(self, final: dict, sent: _Text, content: str) -> None:
        so_far = sent.value()
        extends = content.startswith(so_far)
        if extends and len(content) > len(so_far):
            await self.ws.send_json({"type": "chunk", "message_id": self.id, "content": content[len(so_far):]})
        if final["status"] != "complete":
            await self.ws.send_json({"error": final["error"] or f"the answer was {final['status']}",
                                     "message_id": self.id, "status": final["status"]})
            return
        frame = {"type": "complete", "message_id": self.id, "sources": final["sources"]}
        if not extends:
            # the service's authoritative text differs from what it streamed
            frame["content"] = content
        await self.ws.send_json(frame)

    async def run(self, app: web.Application) -> None:
        fanout = app[FANOUT]
        queue = fanout.watch(self.id)
        try:
            snap = await _snapshot(app, self.message_id)
            await self.ws.send_json({"type": "stream_content", "message_id": self.id, "content": snap.content})
            sent = _Text(snap.content)
            if snap.final is not None:
                await self.send_final(snap.final, sent, snap.content)
                return
            last = snap.pieces
            while True:
                piece = await queue.get()
                if piece is RESYNC or piece.n > last + 1:
                    last = await self.resync(app, sent)
                    if last is None:
                        return
                    continue
                if piece.n <= last:
                    continue
                last = piece.n
                if piece.kind == "c":
                    sent.add(piece.body)
                    await self.ws.send_json({"type": "chunk", "message_id": self.id, "content": piece.body})
                else:
                    final = json.loads(piece.body)
                    await self.send_final(final, sent, final.pop("content"))
                    return
        finally:
            fanout.unwatch(self.id, queue)

    async def resync(self, app: web.Application, sent: _Text) -> int | None:
        """Catch up from a fresh snapshot; None once the answer is finished."""
        snap = await _snapshot(app, self.message_id)
        so_far = sent.value()
        if snap.final is not None:
            await self.send_final(snap.final, sent, snap.content)
            return None
        if snap.content.startswith(so_far) and len(snap.content) > len(so_far):
            missing = snap.content[len(so_far):]
            sent.add(missing)
            await self.ws.send_json({"type": "chunk", "message_id": self.id, "content": missing})
        return snap.pieces


def _message_id(frame: dict) -> uuid.UUID:
    raw = frame.get("message_id")
    if not isinstance(raw, str):
        raise ValueError("message_id is missing")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError("message_id is not a valid id") from None


class ChatSocket:
    def __init__(self, request: web.Request, chat: dict, ws: web.WebSocketResponse):
        self.app = request.app
        self.user_id = current_user_id(request)
        self.chat = chat
        self.ws = ws
        self.followers: dict[uuid.UUID, asyncio.Task] = {}

    async def error(self, text: str, message_id: object = None) -> None:
        frame = {"error": text}
        if message_id is not None:
            frame["message_id"] = str(message_id)
        await self.ws.send_json(frame)

    async def handle(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            await self.error("invalid JSON")
            return
        if not isinstance(frame, dict):
            await self.error("a frame must be a JSON object")
            return
        kind = frame.get("type")
        if kind == "ping":
            await self.ws.send_json({"type": "pong", "timestamp": frame.get("timestamp")})
            return
        if kind not in ("stream_request", "cancel"):
            await self.error(f"unknown type {kind!r}" if isinstance(kind, str) else "type is missing")
            return
        try:
            message_id = _message_id(frame)
        except ValueError as exc:
            await self.error(str(exc))
            return
        row = await self.app[appkeys.DB].fetchrow(
            "SELECT id, chat_id, status, content FROM messages WHERE id = %s AND chat_id = %s",
            (message_id, self.chat["id"]))
        if row is None:
            await self.error("no such message in this chat", message_id)
        elif kind == "stream_request":
            if len(self.followers) >= MAX_FOLLOWED and message_id not in self.followers:
                await self.error(f"this socket already follows {MAX_FOLLOWED} answers", message_id)
                return
            self.follow(message_id)
        else:
            try:
                await cancel_answer(self.app, row)
            except ApiError as exc:
                await self.error(exc.message, message_id)

    def follow(self, message_id: uuid.UUID) -> None:
        """A repeated request restarts the answer from its snapshot."""
        previous = self.followers.pop(message_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(Follower(self.ws, message_id).run(self.app))
        self.followers[message_id] = task
        task.add_done_callback(lambda t: self._done(message_id, t))

    def _done(self, message_id: uuid.UUID, task: asyncio.Task) -> None:
        if self.followers.get(message_id) is task:
            del self.followers[message_id]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, (ConnectionError, RuntimeError)):
                log.error("stream follower of %s failed", message_id, exc_info=exc)

    async def close(self) -> None:
        for task in self.followers.values():
            task.cancel()
        await asyncio.gather(*self.followers.values(), return_exceptions=True)


@endpoint("WebSocket of one chat: live answers, cancel, ping", tag="websocket",
          description="Upgrade with `?token=<jwt>`. Frames are JSON text; see API.md \"WebSocket\".",
          responses={101: "switching protocols", 404: "no such chat"})
async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    chat = await get_owned_chat(app[appkeys.DB], request.match_info["chat_id"], current_user_id(request))
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=app[appkeys.SETTINGS].WS_HEARTBEAT_SECONDS)
    await ws.prepare(request)
    socket = ChatSocket(request, chat, ws)
    gauge = app[appkeys.METRICS].websockets
    gauge.inc()
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                try:
                    await socket.handle(message.data)
                except (ConnectionError, RuntimeError):
                    raise
                except Exception:
                    # a database hiccup must not end the socket
                    log.exception("WebSocket frame of chat %s failed", chat["id"])
                    await socket.error("internal error; try again")
            elif message.type == WSMsgType.BINARY:
                await socket.error("frames must be JSON text")
    finally:
        gauge.dec()
        await socket.close()
    return ws


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ws/chat/{chat_id}", chat_socket)
