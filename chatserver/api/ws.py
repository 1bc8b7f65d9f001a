"""The WebSockets `/ws/chat/{chat_id}?token=...` and `/ws/chats?token=...` (docs/websocket.md).

Each `stream_request` starts a task that turns what `Followers.follow` yields
into frames; the exactness of resume is follow's (live/follow.py). A
`subscribe` starts one task forwarding the chat's events (`ChatEvents.watch`).
The socket closes with 4401 when its credential stops being good (disabled
account, deleted API key, expired token: live/revocation.py).

The chat list's socket, one per tab whichever chat it shows (or none),
forwards after `subscribe` the user's chat-list events (`ChatEvents.watch_user`:
every chat's `chat_updated` and `chat_deleted`, folder changes), so every
tab's list follows what the others do.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import WSMsgType, web

from chatserver import appkeys, outage
from chatserver.api.access import owned_chat
from chatserver.api.authentication import credential_of
from chatserver.api.endpoint import BadJson, current_user_id, dumps, endpoint, parse_json
from chatserver.api.ws_sockets import OPEN_SOCKETS
from chatserver.data import messages
from chatserver.errors import MessageFinished, ServiceUnavailable
from chatserver.live.answers import ANSWERS, AlreadyFinished
from chatserver.live.chat_events import CHAT_EVENTS
from chatserver.live.follow import FOLLOWERS
from chatserver.live.revocation import REVOCATIONS
from chatserver.live.wire import Item, Status, Step, Text

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024
UNAVAILABLE = ServiceUnavailable.message
# answers one socket may follow at once; each costs a task and a queue
MAX_FOLLOWED = 100


def _socket(max_frame: int) -> web.WebSocketResponse:
    """autoping off: pings and pongs come to the receive loops, for the process's
    one heartbeat (ws_sockets.py). compress off: a socket that has sent and
    received a frame with permessage-deflate (every browser offers it) holds
    zlib's state for both directions, about 106 KiB, for as long as it is open,
    six times all the rest of an idle socket; frames are small JSON, sent as they are."""
    return web.WebSocketResponse(max_msg_size=max_frame, autoping=False, compress=False)


# closes of sockets whose credential was revoked, held until done (the loop keeps only weak references)
_CLOSING: set[asyncio.Task] = set()


async def send(ws: web.WebSocketResponse, frame: dict) -> None:
    """A JSON text frame, written by the encoder every answer uses."""
    await ws.send_frame(dumps(frame), WSMsgType.TEXT)


class _LastFrame:
    """The frame encoded last, by what it was encoded from. Every follower of
    an answer receives the same piece right after the others, so one slot is
    enough for a piece watched by a thousand sockets to be encoded once."""

    def __init__(self) -> None:
        self.source: tuple[str, Item] | None = None
        self.data = b""

    def encode(self, message_id: str, item: Item) -> bytes:
        source = (message_id, item)
        if source != self.source:
            self.source, self.data = source, dumps(_frame(message_id, item))
        return self.data


_LAST_FRAME = _LastFrame()


def _frame(message_id: str, item: Item) -> dict:
    """What `follow` yields, as the frame docs/websocket.md names for it."""
    if isinstance(item, Text):
        frame: dict[str, object] = {"type": "stream_content" if item.kind == "content" else item.kind,
                                    "message_id": message_id, "content": item.text}
        if item.reasoning:
            frame["reasoning"] = item.reasoning
        if item.steps:
            frame["steps"] = list(item.steps)
        return frame
    if isinstance(item, Step):
        return {"type": "tool_call", "message_id": message_id, "step": item.step}
    if isinstance(item, Status):
        return {"type": "status", "message_id": message_id, "status": item.status, "attempt": item.attempt}
    if item.status != "complete":
        return {"error": item.error or f"the answer was {item.status}", "message_id": message_id,
                "status": item.status}
    frame = {"type": "complete", "message_id": message_id, "sources": item.sources}
    # how the model ended, when a model server said so
    frame.update({k: v for k, v in (("finish_reason", item.finish_reason), ("usage", item.usage)) if v is not None})
    if item.content is not None:
        # the service's authoritative text differs from what it streamed
        frame["content"] = item.content
    return frame


async def _forward(ws: web.WebSocketResponse, app: web.Application, message_id: uuid.UUID) -> None:
    key = str(message_id)
    try:
        async for item in app[FOLLOWERS].follow(message_id):
            await ws.send_frame(_LAST_FRAME.encode(key, item), WSMsgType.TEXT)
    except Exception as exc:
        if not outage.report(app, exc):
            raise
        await send(ws, {"error": UNAVAILABLE, "code": ServiceUnavailable.code, "message_id": key})


def _close_revoked(ws: web.WebSocketResponse, reason: str) -> None:
    # a task of its own: close() wakes the socket's loop, which then ends
    task = asyncio.create_task(ws.close(code=4401, message=f"{reason}; sign in again".encode()))
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


def _message_id(frame: dict) -> uuid.UUID:
    raw = frame.get("message_id")
    if not isinstance(raw, str):
        raise ValueError("message_id is missing")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError("message_id is not a valid id") from None


class ChatSocket:
    # one per open socket: no instance dict
    __slots__ = ("app", "user_id", "chat_id", "ws", "followers", "events")

    def __init__(self, request: web.Request, chat_id: uuid.UUID, ws: web.WebSocketResponse):
        self.app = request.app
        self.user_id = current_user_id(request)
        self.chat_id = chat_id
        self.ws = ws
        self.followers: dict[uuid.UUID, asyncio.Task] = {}
        self.events: asyncio.Task | None = None

    async def error(self, text: str, message_id: object = None, *, code: str | None = None) -> None:
        frame = {"error": text}
        if code is not None:
            frame["code"] = code
        if message_id is not None:
            frame["message_id"] = str(message_id)
        await send(self.ws, frame)

    async def handle(self, raw: str) -> None:
        try:
            frame = parse_json(raw)
        except BadJson as exc:
            await self.error(f"invalid frame: {exc}")
            return
        if not isinstance(frame, dict):
            await self.error("a frame must be a JSON object")
            return
        kind = frame.get("type")
        if kind == "ping":
            await send(self.ws, {"type": "pong", "timestamp": frame.get("timestamp")})
            return
        if kind == "subscribe":
            if self.events is None:
                self.events = asyncio.create_task(self._forward_events())
            else:
                await send(self.ws, {"type": "subscribed"})
            return
        if kind not in ("stream_request", "cancel"):
            await self.error(f"unknown type {kind!r}" if isinstance(kind, str) else "type is missing")
            return
        try:
            message_id = _message_id(frame)
        except ValueError as exc:
            await self.error(str(exc))
            return
        row = await messages.get_in_chat(self.app[appkeys.DB], message_id, self.chat_id)
        if row is None:
            await self.error("no such message in this chat", message_id)
        elif kind == "stream_request":
            if len(self.followers) >= MAX_FOLLOWED and message_id not in self.followers:
                await self.error(f"this socket already follows {MAX_FOLLOWED} answers", message_id)
                return
            self.follow(message_id)
        else:
            try:
                await self.app[ANSWERS].cancel(row)
            except AlreadyFinished:
                await self.error(MessageFinished.message, message_id)

    async def _forward_events(self) -> None:
        async with self.app[CHAT_EVENTS].watch(self.chat_id) as events:
            await send(self.ws, {"type": "subscribed"})
            async for event in events:
                await send(self.ws, event)
                if event["type"] == "chat_deleted":
                    await self.ws.close(code=4404, message=b"the chat was deleted")
                    return

    def follow(self, message_id: uuid.UUID) -> None:
        """A repeated request restarts the answer from its snapshot."""
        previous = self.followers.pop(message_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(_forward(self.ws, self.app, message_id))
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
        tasks = [*self.followers.values(), *([self.events] if self.events else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@endpoint("WebSocket of one chat: live answers, cancel, ping, chat events", tag="websocket",
          description="Upgrade with `?token=<jwt>`. Frames are JSON text; see docs/websocket.md.",
          responses={101: "switching protocols", 404: "no such chat"})
async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    # only the id is kept: an idle socket's every byte counts, times thousands
    chat_id = (await owned_chat(request))["id"]
    ws = _socket(MAX_FRAME)
    await ws.prepare(request)
    socket = ChatSocket(request, chat_id, ws)
    gauge = app[appkeys.METRICS].websockets
    gauge.inc()
    revocations = app[REVOCATIONS]
    hold = revocations.hold(credential_of(request), _close_revoked, ws)
    open_sockets = app[OPEN_SOCKETS]
    open_sockets.add(ws)
    try:
        async for message in ws:
            if await open_sockets.heard(ws, message):
                continue
            if message.type == WSMsgType.TEXT:
                try:
                    await socket.handle(message.data)
                except (ConnectionError, RuntimeError):
                    raise
                except Exception as exc:
                    # an outage or a bug must not end the socket
                    if outage.report(app, exc):
                        await socket.error(UNAVAILABLE, code=ServiceUnavailable.code)
                    else:
                        log.exception("WebSocket frame of chat %s failed", chat_id)
                        await socket.error("internal error; try again")
            elif message.type == WSMsgType.BINARY:
                await socket.error("frames must be JSON text")
    finally:
        open_sockets.discard(ws)
        revocations.release(hold)
        gauge.dec()
        await socket.close()
    return ws


# the chat list's socket is sent only ping and subscribe
MAX_LIST_FRAME = 4 * 1024


@endpoint("WebSocket of your chat list: changes to your chats and folders, from any tab or device",
          tag="websocket", description="Upgrade with `?token=<jwt>`. See docs/websocket.md, The chat list.",
          responses={101: "switching protocols"})
async def chat_list_socket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    user_id = current_user_id(request)
    ws = _socket(MAX_LIST_FRAME)
    await ws.prepare(request)
    hold = app[REVOCATIONS].hold(credential_of(request), _close_revoked, ws)
    open_sockets = app[OPEN_SOCKETS]
    open_sockets.add(ws)
    forwarding: asyncio.Task | None = None
    try:
        async for message in ws:
            if await open_sockets.heard(ws, message):
                continue
            frame = _list_frame(message.data) if message.type == WSMsgType.TEXT else {}
            kind = frame.get("type")
            if kind == "ping":
                await send(ws, {"type": "pong", "timestamp": frame.get("timestamp")})
            elif kind == "subscribe" and forwarding is None:
                forwarding = asyncio.create_task(_forward_list_events(app, ws, user_id))
            elif kind == "subscribe":
                await send(ws, {"type": "subscribed"})
            else:
                await send(ws, {"error": "this socket takes only ping and subscribe frames (JSON text)"})
    finally:
        open_sockets.discard(ws)
        app[REVOCATIONS].release(hold)
        if forwarding is not None:
            forwarding.cancel()
            await asyncio.gather(forwarding, return_exceptions=True)
    return ws


def _list_frame(raw: str) -> dict:
    """The frame as a dict; {} for anything else (answered with an error, never a close)."""
    try:
        frame = parse_json(raw)
    except BadJson:
        return {}
    return frame if isinstance(frame, dict) else {}


async def _forward_list_events(app: web.Application, ws: web.WebSocketResponse, user_id: uuid.UUID) -> None:
    async with app[CHAT_EVENTS].watch_user(user_id) as events:
        await send(ws, {"type": "subscribed"})
        async for event in events:
            await send(ws, event)
