"""The WebSocket `/ws/chats?token=...` (docs/websocket.md, The chat list).

One per tab, whichever chat it shows (or none): after `subscribe` it carries
the user's chat-list events (`ChatEvents.watch_user`): `chat_updated` and
`chat_deleted` of every chat of theirs, and folder changes, so every tab's
list follows what the others do. It closes with 4401 when its credential
stops being good, as a chat's socket does.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import WSMsgType, web

from chatserver import appkeys
from chatserver.api.authentication import credential_of
from chatserver.api.endpoint import BadJson, current_user_id, endpoint, parse_json
from chatserver.api.ws import OPEN_SOCKETS, close_revoked, send
from chatserver.live.chat_events import CHAT_EVENTS
from chatserver.live.revocation import REVOCATIONS

# the client sends only ping and subscribe
MAX_FRAME = 4 * 1024


@endpoint("WebSocket of your chat list: changes to your chats and folders, from any tab or device",
          tag="websocket", description="Upgrade with `?token=<jwt>`. See docs/websocket.md, The chat list.",
          responses={101: "switching protocols"})
async def chat_list_socket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    user_id = current_user_id(request)
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=app[appkeys.SETTINGS].WS_HEARTBEAT_SECONDS)
    await ws.prepare(request)
    hold = app[REVOCATIONS].hold(credential_of(request), close_revoked, ws)
    app[OPEN_SOCKETS].add(ws)
    forwarding: asyncio.Task | None = None
    try:
        async for message in ws:
            frame = _frame(message.data) if message.type == WSMsgType.TEXT else {}
            kind = frame.get("type")
            if kind == "ping":
                await send(ws, {"type": "pong", "timestamp": frame.get("timestamp")})
            elif kind == "subscribe" and forwarding is None:
                forwarding = asyncio.create_task(_forward(app, ws, user_id))
            elif kind == "subscribe":
                await send(ws, {"type": "subscribed"})
            else:
                await send(ws, {"error": "this socket takes only ping and subscribe frames (JSON text)"})
    finally:
        app[OPEN_SOCKETS].discard(ws)
        app[REVOCATIONS].release(hold)
        if forwarding is not None:
            forwarding.cancel()
            await asyncio.gather(forwarding, return_exceptions=True)
    return ws


def _frame(raw: str) -> dict:
    """The frame as a dict; {} for anything else (answered with an error, never a close)."""
    try:
        frame = parse_json(raw)
    except BadJson:
        return {}
    return frame if isinstance(frame, dict) else {}


async def _forward(app: web.Application, ws: web.WebSocketResponse, user_id: uuid.UUID) -> None:
    async with app[CHAT_EVENTS].watch_user(user_id) as events:
        await send(ws, {"type": "subscribed"})
        async for event in events:
            await send(ws, event)
