"""Steering answers: cancel and regenerate, and cancelling a deleted chat's answers."""

from __future__ import annotations

import uuid

from aiohttp import web

from . import appkeys
from .auth import current_user_id
from .chats import CHAT_DELETED
from .endpoint import endpoint, json_response
from .errors import ApiError
from .messages import LIVE_CONTENT, Message, get_owned_message, insert_answer, queue_answer, touch_chat
from .streams import STREAMS

CANCELLED = "cancelled"


def _already_finished() -> ApiError:
    return ApiError(409, "the message is already finished", "message_finished")


async def cancel_answer(app: web.Application, row: dict, reason: str = CANCELLED) -> dict:
    """Stop an unfinished answer, keeping its text so far; the stored message."""
    if row["status"] not in ("pending", "streaming"):
        raise _already_finished()
    done = await app[STREAMS].finish(row["id"], row["chat_id"], "cancelled", error=reason,
                                     create_with=row["content"])
    if done is None:
        raise _already_finished()
    return done


@endpoint("Cancel an answer; the text received so far is kept", tag="messages",
          responses={200: Message, 404: "no such message", 409: "the message is already finished"})
async def cancel_message(request: web.Request) -> web.Response:
    row = await get_owned_message(request.app[appkeys.DB], request.match_info["message_id"],
                                  current_user_id(request))
    return json_response(Message(**await cancel_answer(request.app, row)))


@endpoint("Answer the same user message again; the old answer stays but leaves the AI history",
          tag="messages",
          responses={201: Message, 404: "no such message", 422: "not an assistant message"})
async def regenerate_message(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    db = app[appkeys.DB]
    old = await get_owned_message(db, request.match_info["message_id"], user_id)
    if old["role"] != "assistant" or old["reply_to"] is None:
        raise ApiError(422, "only an assistant message can be regenerated", "not_an_answer")
    if old["status"] in ("pending", "streaming"):
        await app[STREAMS].finish(old["id"], old["chat_id"], "cancelled", error="regenerated",
                                  create_with=old["content"])
    async with db.transaction() as cur:
        await cur.execute("UPDATE messages SET superseded = true WHERE id = %s", (old["id"],))
        answer = await insert_answer(cur, old["chat_id"], user_id, old["reply_to"])
        await touch_chat(cur, old["chat_id"])
    await queue_answer(app, answer["id"])
    return json_response(Message(**answer), 201)


async def cancel_chat_answers(app: web.Application, chat_id: uuid.UUID) -> None:
    rows = await app[appkeys.DB].fetch(
        "SELECT id, chat_id, status, content FROM messages WHERE chat_id = %s AND status IN ('pending', 'streaming')",
        (chat_id,))
    for row in rows:
        await app[STREAMS].finish(row["id"], row["chat_id"], "cancelled", error="the chat was deleted",
                                  create_with=row["content"])


async def live_content(app: web.Application, rows: list[dict]) -> list[dict]:
    return await app[STREAMS].live_content(app, rows)


def setup_routes(app: web.Application) -> None:
    app[LIVE_CONTENT] = live_content
    app.setdefault(CHAT_DELETED, []).append(cancel_chat_answers)
    app.router.add_post("/api/messages/{message_id}/cancel", cancel_message)
    app.router.add_post("/api/messages/{message_id}/regenerate", regenerate_message)
