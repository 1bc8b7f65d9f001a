"""OpenAI's Responses API: `/v1/responses` and its `{id}`, `cancel` and `input_items`.

A response is an answer in a chat of the key's user, queued and followed like
every other (api/v1.py does the same for chat completions); the `responses`
table keeps what the call asked. `previous_response_id` continues that
response's chat from it. Its events are shaped from what `Followers.follow`
yields (api/responses_shapes.py numbers them), so a stream resumed with
`starting_after` in any process carries on exactly. A foreground answer is
cancelled when its client leaves; a background one goes on, in the job queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.answer_job import queue_answer
from chatserver.ai.models import is_known_model
from chatserver.api import responses_shapes as shapes
from chatserver.api.endpoint import endpoint
from chatserver.api.openai_access import SSE_HEADERS, api_user, openai_errors, while_connected
from chatserver.api.quota_check import check_quota
from chatserver.api.ratelimit import check_message_limit
from chatserver.data import chats, messages, responses
from chatserver.errors import InvalidValue, ModelNotFound, ResponseNotFound
from chatserver.live.answers import ANSWERS, AlreadyFinished
from chatserver.live.follow import FOLLOWERS
from chatserver.live.reads import live_content
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import End, Text

# how long a continuation waits for an ended answer's final write to land (10 s at most)
FINAL_WRITE_POLLS = 200
FINAL_WRITE_POLL_SECONDS = 0.05

DISCONNECTED = "the API client disconnected"
CANCELLED = "cancelled through the API"
MAX_ITEMS_PAGE = 100
ERRORS = {400: {"description": "malformed request (OpenAI's error shape)"},
          401: {"description": "missing or invalid key (OpenAI's error shape)"},
          404: {"description": "no such response, or an unknown model (OpenAI's error shape)"}}
DESCRIPTION = "OpenAI's Responses API; send `Authorization: Bearer <API key>`. See docs/openai.md."


@endpoint("OpenAI-compatible response, streamed (server-sent events) or not, or in the background",
          tag="openai", public=True, body=shapes.ResponseRequest, description=DESCRIPTION,
          responses={200: {"description": "a response object, or with `stream: true` its events"},
                     **ERRORS, 429: {"description": "rate limited, with Retry-After (OpenAI's error shape)"}})
@openai_errors
async def create_response(request: web.Request) -> web.StreamResponse:
    app = request.app
    user_id = await api_user(request)
    body = shapes.parse_request(await request.read())
    given = shapes.conversation(body)
    if not await is_known_model(app, body.model):
        raise ModelNotFound(body.model)
    previous = await _previous(app, user_id, body.previous_response_id)
    await check_message_limit(request)
    await check_quota(request, openai=True)
    row = await _start(app, user_id, body, given, previous)
    passed = {k: v for k, v in shapes.tools_for_model(body).items() if v}
    await queue_answer(app, row["message_id"], {"user": body.user, "client_tools": passed})
    shape = shapes.Shape(row)
    if body.background:
        if body.stream:
            return await _stream(request, shape, -1, cancel_when_gone=False)
        return web.json_response(shape.response(shapes.Outcome("queued")))
    try:
        if body.stream:
            return await _stream(request, shape, -1, cancel_when_gone=True)
        return await _whole(request, shape)
    finally:
        if not body.store:
            await _forget(app, row)


@endpoint("OpenAI-compatible: a response, or with `stream=true&starting_after=N` its events after N",
          tag="openai", public=True, description=DESCRIPTION,
          responses={200: {"description": "the response object, or its events"}, **ERRORS})
@openai_errors
async def get_response(request: web.Request) -> web.StreamResponse:
    row = await _owned(request)
    shape = shapes.Shape(row)
    if request.query.get("stream", "").lower() == "true":
        raw = request.query.get("starting_after", "-1")
        try:
            after = int(raw)
        except ValueError:
            raise InvalidValue("starting_after: must be an integer", param="starting_after") from None
        return await _stream(request, shape, after, cancel_when_gone=False)
    return web.json_response(await _current(request.app, shape))


@endpoint("OpenAI-compatible: cancel a background response", tag="openai", public=True,
          description=DESCRIPTION, responses={200: {"description": "the response, cancelled"}, **ERRORS})
@openai_errors
async def cancel_response(request: web.Request) -> web.Response:
    row = await _owned(request)
    if not row["request"]["background"]:
        raise InvalidValue("Only responses created with background=true can be cancelled", param="response_id")
    await _cancel(request.app, row["message_id"], CANCELLED)
    return web.json_response(await _current(request.app, shapes.Shape(row)))


@endpoint("OpenAI-compatible: delete a response (its turn and the turns after it)", tag="openai",
          public=True, description=DESCRIPTION,
          responses={200: {"description": '{"id", "object": "response.deleted", "deleted": true}'}, **ERRORS})
@openai_errors
async def delete_response(request: web.Request) -> web.Response:
    row = await _owned(request)
    await _cancel(request.app, row["message_id"], CANCELLED)
    await _forget(request.app, row)
    return web.json_response({"id": shapes.response_id(row["message_id"]), "object": "response.deleted",
                              "deleted": True})


@endpoint("OpenAI-compatible: the input items of a response", tag="openai", public=True,
          description=DESCRIPTION + " Query: `order` (`asc` or `desc`, the default), `limit` (1-100, "
                                    "default 20), `after` (an item id).",
          responses={200: {"description": '{"object": "list", "data": [...], "first_id", "last_id", '
                                          '"has_more"}'}, **ERRORS})
@openai_errors
async def response_input_items(request: web.Request) -> web.Response:
    row = await _owned(request)
    items = list(row["input_items"])
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidValue("order: must be asc or desc", param="order")
    if order == "desc":
        items.reverse()
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_ITEMS_PAGE:
        raise InvalidValue(f"limit: must be an integer from 1 to {MAX_ITEMS_PAGE}", param="limit")
    after = request.query.get("after")
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise InvalidValue("after: no such item in this response", param="after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return web.json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                              "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})


async def _owned(request: web.Request) -> dict:
    user_id = await api_user(request)
    message_id = shapes.message_id_of(request.match_info["response_id"])
    row = await responses.get_owned(request.app[appkeys.DB], message_id, user_id)
    if row is None:
        raise ResponseNotFound()
    return row


async def _previous(app: web.Application, user_id: uuid.UUID, value: str | None) -> dict | None:
    """The stored response a request continues, finished."""
    if value is None:
        return None
    db = app[appkeys.DB]
    row = await responses.get_owned(db, shapes.message_id_of(value, "previous_response_id"), user_id)
    state = None if row is None else await messages.get_state(db, row["message_id"])
    if row is None or state is None:
        raise ResponseNotFound(param="previous_response_id")
    if state["status"] in messages.UNFINISHED and not await _stored_soon(app, row["message_id"]):
        raise InvalidValue("previous_response_id: that response is still in progress",
                           param="previous_response_id")
    return row


async def _stored_soon(app: web.Application, message_id: uuid.UUID) -> bool:
    """Whether an answer PostgreSQL calls unfinished has in fact ended, and its
    final write has landed. Redis hears of the end a moment before PostgreSQL,
    and a client continues as soon as it has read the end: that moment must not
    be "still in progress", nor may the next turn be built from a text whose
    end is not stored yet."""
    db = app[appkeys.DB]
    (live,) = await live_content(app[ANSWER_STATE], [{"id": message_id, "status": "streaming"}])
    if live["status"] in messages.UNFINISHED:
        return False
    for _ in range(FINAL_WRITE_POLLS):
        state = await messages.get_state(db, message_id)
        if state is not None and state["status"] not in messages.UNFINISHED:
            return True
        await asyncio.sleep(FINAL_WRITE_POLL_SECONDS)
    return False


async def _start(app: web.Application, user_id: uuid.UUID, body: shapes.ResponseRequest, given: shapes.Input,
                 previous: dict | None) -> dict:
    """Store the call's turns and a pending answer (in a new chat, or after
    `previous` in its chat) with what it asked. The chat's settings are this
    turn's: its instructions are the system prompt the answer is written with."""
    db = app[appkeys.DB]
    talk = given.talk
    settings = {"model": body.model, "system_prompt": talk.system_prompt, "temperature": body.temperature,
                "max_tokens": body.max_output_tokens}
    if previous is None:
        chat_id, parent = (await chats.insert(db, user_id, talk.title, settings))["id"], None
    else:
        chat_id, parent = previous["chat_id"], previous["message_id"]
        await chats.update(db, chat_id, settings)
    try:
        async with db.transaction() as cur:
            added = []
            for role, text in talk.turns:
                if role == "user":
                    parent = (await messages.insert_question(cur, chat_id, user_id, text, [], parent))["id"]
                else:
                    parent = (await messages.insert_past_answer(cur, chat_id, user_id, parent, text))["id"]
                added.append(parent)
            question = await messages.insert_question(cur, chat_id, user_id, talk.question, [], parent)
            answer = await messages.insert_answer(cur, chat_id, user_id, question["id"])
            await chats.show(cur, chat_id, answer["id"])
            return await responses.insert(cur, answer["id"], user_id, chat_id, (added or [question["id"]])[0],
                                          previous["message_id"] if previous else None, shapes.stored_request(body),
                                          given.items)
    except BaseException:
        if previous is None:
            await chats.delete(db, chat_id)
        raise


async def _forget(app: web.Application, row: dict) -> None:
    """Delete a response's turn (with every turn after it); its chat too when the response began it."""
    db = app[appkeys.DB]
    if row["previous_id"] is None:
        await chats.delete(db, row["chat_id"])
        return
    async with db.transaction() as cur:
        await messages.delete_turn(cur, row["first_id"])
        await chats.show(cur, row["chat_id"], row["previous_id"])


async def _cancel(app: web.Application, message_id: uuid.UUID, reason: str) -> None:
    row = await messages.get_unfinished(app[appkeys.DB], message_id)
    if row is not None:
        with contextlib.suppress(AlreadyFinished):
            await app[ANSWERS].cancel(row, reason)


async def _current(app: web.Application, shape: shapes.Shape) -> dict:
    """The response as it is now (live text merged in)."""
    message_id = shape.row["message_id"]
    state = await messages.get_state(app[appkeys.DB], message_id)
    if state is None:
        raise ResponseNotFound()
    (message,) = await live_content(app[ANSWER_STATE], [{**state, "id": message_id}])
    return shape.response(shape.outcome_of_row(message))


async def _outcome(app: web.Application, message_id: uuid.UUID) -> shapes.Outcome:
    """The answer's outcome once it ended, read through follow()."""
    reasoning, text = "", ""
    async for item in app[FOLLOWERS].follow(message_id):
        if isinstance(item, Text):
            if item.kind == "content":
                reasoning, text = item.reasoning, item.text
            elif item.kind == "reasoning":
                reasoning += item.text
            else:
                text += item.text
        elif isinstance(item, End):
            return shapes.Outcome(shapes.status_of(item.status, item.finish_reason), reasoning,
                                  text if item.content is None else item.content, item.error, item.usage,
                                  item.tool_calls)
    raise AssertionError("follow ended without an End")


async def _whole(request: web.Request, shape: shapes.Shape) -> web.Response:
    message_id = shape.row["message_id"]
    try:
        there, outcome = await while_connected(request, _outcome(request.app, message_id))
    except asyncio.CancelledError:
        await _cancel(request.app, message_id, DISCONNECTED)
        raise
    if not there or outcome is None:
        await _cancel(request.app, message_id, DISCONNECTED)
        return web.Response(status=499)
    return web.json_response(shape.response(outcome))


async def _stream(request: web.Request, shape: shapes.Shape, after: int, *,
                  cancel_when_gone: bool) -> web.StreamResponse:
    app = request.app
    message_id = shape.row["message_id"]
    resp = web.StreamResponse(headers=SSE_HEADERS)
    await resp.prepare(request)
    events = shapes.Events(shape, after)

    async def pump() -> None:
        await resp.write(b"".join(events.start()))
        async for item in app[FOLLOWERS].follow(message_id):
            if isinstance(item, Text):
                if item.kind == "content":
                    out = events.add_reasoning(item.reasoning) + events.add_text(item.text)
                elif item.kind == "reasoning":
                    out = events.add_reasoning(item.text)
                else:
                    out = events.add_text(item.text)
            elif isinstance(item, End):
                out = events.end(item)
            else:
                continue
            if out:
                await resp.write(b"".join(out))

    try:
        there, _ = await while_connected(request, pump())
    except asyncio.CancelledError:
        if cancel_when_gone:
            await _cancel(app, message_id, DISCONNECTED)
        raise
    if not there:
        if cancel_when_gone:
            await _cancel(app, message_id, DISCONNECTED)
        return resp
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp
