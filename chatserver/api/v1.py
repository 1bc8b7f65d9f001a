"""The OpenAI-compatible API: `GET /v1/models` and `POST /v1/chat/completions`.

A completion is an ordinary chat: the request's messages are stored as the
chat's turns, the answer is queued like `POST /api/chats/{id}/messages`
queues one, and it is read through `Followers.follow` like the WebSocket reads
it. So every backend, the cancel that stops a model, and the stored chat the
user can reopen are the same as everywhere else. A client that goes away
mid-answer cancels it; `"store": false` deletes the chat once the answer ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.answer_job import queue_answer
from chatserver.ai.models import is_known_model, model_items
from chatserver.api import openai_shapes as shapes
from chatserver.api.authentication import credential_of
from chatserver.api.endpoint import endpoint
from chatserver.api.function_tools import call_deltas
from chatserver.api.openai_access import SSE_HEADERS, api_user, openai_errors, while_connected
from chatserver.api.quota_check import check_quota
from chatserver.api.ratelimit import check_message_limit
from chatserver.data import chats, messages
from chatserver.errors import AnswerCancelled, AnswerFailed, InvalidApiKey, InvalidImageUrl, ModelNotFound
from chatserver.files.inline_images import BadImage, decode, keep_image
from chatserver.live.answers import ANSWERS, AlreadyFinished
from chatserver.live.follow import FOLLOWERS
from chatserver.live.revocation import REVOCATIONS, settle
from chatserver.live.wire import End, Text

log = logging.getLogger(__name__)

DISCONNECTED = "the API client disconnected"


@endpoint("OpenAI-compatible: the models (the same as GET /api/models)", tag="openai", public=True,
          description="Send `Authorization: Bearer <API key>`. Errors have OpenAI's shape. See docs/openai.md.",
          responses={200: {"description": '{"object": "list", "data": [{"id", "object": "model", "created", '
                                          '"owned_by"}]}'},
                     401: {"description": "missing or invalid key (OpenAI's error shape)"}})
@openai_errors
async def openai_models(request: web.Request) -> web.Response:
    await api_user(request)
    items = await model_items(request.app)
    data = [{"id": m["id"], "object": "model", "created": 0, "owned_by": m["backend"]} for m in items]
    return web.json_response({"object": "list", "data": data})


@endpoint("OpenAI-compatible chat completion, streamed (server-sent events) or not", tag="openai",
          public=True, body=shapes.CompletionRequest,
          description="OpenAI's Chat Completions request and answer; each call is kept as a chat unless "
                      "`store` is false. Send `Authorization: Bearer <API key>`. See docs/openai.md.",
          responses={200: {"description": "a chat.completion object, or with `stream: true` "
                                          "`text/event-stream` lines `data: {chat.completion.chunk}` ending "
                                          "with `data: [DONE]` (or an error chunk)"},
                     400: {"description": "malformed request (OpenAI's error shape)"},
                     401: {"description": "missing or invalid key (OpenAI's error shape)"},
                     404: {"description": "unknown model, code model_not_found (OpenAI's error shape)"},
                     429: {"description": "rate limited, with Retry-After (OpenAI's error shape)"}})
@openai_errors
async def chat_completions(request: web.Request) -> web.StreamResponse:
    user_id = await api_user(request)
    body = shapes.parse_request(request, await request.read())
    talk = shapes.conversation(body)
    if not await is_known_model(request.app, body.model):
        raise ModelNotFound(body.model)
    await check_message_limit(request)
    await check_quota(request, openai=True)
    answer = await _start(request.app, user_id, body, talk)
    call = Completion(request, answer, body, talk)
    try:
        return await (call.stream() if body.stream else call.whole())
    finally:
        await call.forget()


async def _start(app: web.Application, user_id: uuid.UUID, body: shapes.CompletionRequest,
                 talk: shapes.Conversation) -> dict:
    """Store the call as a chat with its turns and a pending answer, and queue the answer."""
    db = app[appkeys.DB]
    try:
        images = [decode(url, app[appkeys.SETTINGS].MAX_UPLOAD_SIZE) for url in talk.images]
    except BadImage as exc:
        raise InvalidImageUrl(str(exc)) from None
    settings = {"model": body.model, "system_prompt": talk.system_prompt, "temperature": body.temperature,
                "max_tokens": body.max_completion_tokens or body.max_tokens}
    asked = await chats.insert_asked(db, user_id, talk.title, settings, talk.turns, talk.question)
    if images:
        try:
            file_ids = [await keep_image(app, user_id, asked["chat_id"], data, n) for n, data in enumerate(images, 1)]
            await messages.set_files(db, asked["question_id"], file_ids)
        except BaseException:
            await chats.delete(db, asked["chat_id"])
            raise
    answer = {"id": asked["answer_id"], "chat_id": asked["chat_id"]}
    await queue_answer(app, answer["id"], {"stop": body.stops, "user": body.user, "client_tools": talk.passed})
    return answer


class Completion:
    """One call's answer, read through `Followers.follow` while its client is there."""

    def __init__(self, request: web.Request, answer: dict, body: shapes.CompletionRequest,
                 talk: shapes.Conversation):
        self.request = request
        self.app = request.app
        self.answer = answer
        self.body = body
        self.prompt = "\n".join([talk.system_prompt or "", *(t for _, t in talk.turns), talk.question])
        self.stopped = False  # a stop sequence was reached: the rest is not the client's
        self.unwanted = body.store is False  # the chat goes once the answer has ended
        # the client's text as pieces, joined only when read (growing one string
        # would copy it whole with every piece), and its end where a stop
        # sequence may begin: as long as the longest one, less a character
        self.parts: list[str] = []
        self.tail = ""
        self.reach = max((len(s) for s in body.stops), default=1) - 1

    @property
    def text(self) -> str:
        joined = "".join(self.parts)
        self.parts = [joined]
        return joined

    async def forget(self) -> None:
        """With `"store": false`, delete the call's chat (the first call does)."""
        if self.unwanted:
            self.unwanted = False
            await chats.delete(self.app[appkeys.DB], self.answer["chat_id"])

    def add(self, piece: str) -> str:
        """The part of `piece` the client gets, honouring `stop`."""
        if self.stopped or not piece:
            return ""
        window, before = self.tail + piece, len(self.tail)
        cut = min((i for i in (window.find(s, max(0, before - len(s) + 1)) for s in self.body.stops) if i >= 0),
                  default=-1)
        if cut < 0:
            self.parts.append(piece)
            self.tail = window[max(0, len(window) - self.reach):]
            return piece
        self.stopped = True
        if cut >= before:
            self.parts.append(piece[:cut - before])
            return piece[:cut - before]
        # the stop sequence began in text already given: the answer ends before it
        text = self.text
        self.parts = [text[:len(text) - (before - cut)]]
        return ""

    async def _follow(self, on_text: Callable[[str], Awaitable[None]]) -> End:
        async for item in self.app[FOLLOWERS].follow(self.answer["id"], fresh=True):
            if isinstance(item, End):
                return item
            # the answer's text only: reasoning and passing statuses have no place in OpenAI's shape
            if isinstance(item, Text) and item.kind != "reasoning":
                shown = self.add(item.text)
                if shown:
                    await on_text(shown)
        raise AssertionError("follow ended without an End")

    async def _watched(self, on_text: Callable[[str], Awaitable[None]],
                       revoked: asyncio.Future | None = None) -> End | None:
        """The answer's End, or None when the client left first or its
        credential was `revoked` (then the answer is cancelled)."""
        try:
            there, end = await while_connected(self.request, self._follow(on_text), revoked)
        except asyncio.CancelledError:
            await self._cancel()
            raise
        if not there:
            await self._cancel()
        return end

    async def _cancel(self) -> None:
        row = await messages.get_unfinished(self.app[appkeys.DB], self.answer["id"])
        if row is not None:
            with contextlib.suppress(AlreadyFinished):
                await self.app[ANSWERS].cancel(row, DISCONNECTED)

    async def _ending(self, end: End) -> tuple[str, dict]:
        """The finish_reason and usage of a complete answer, as the model server gave them."""
        reason = "stop" if self.stopped else (end.finish_reason or "stop")
        return reason, shapes.usage(end.usage, self.prompt, self.text)

    @staticmethod
    def failure(end: End) -> AnswerFailed | AnswerCancelled:
        kind = AnswerCancelled if end.status == "cancelled" else AnswerFailed
        return kind(end.error or f"the answer was {end.status}")

    async def whole(self) -> web.Response:
        async def nothing(_: str) -> None:
            return None

        end = await self._watched(nothing)
        if end is None:
            return web.Response(status=499)
        if end.status != "complete":
            raise self.failure(end)
        if end.content is not None and not self.stopped:
            self.parts, self.tail = [], ""
            self.add(end.content)
        reason, counts = await self._ending(end)
        return web.json_response(shapes.completion(self.answer["id"], self.body.model, self.text, reason, counts,
                                                   end.tool_calls))

    async def stream(self) -> web.StreamResponse:
        resp = web.StreamResponse(headers=SSE_HEADERS)
        await resp.prepare(self.request)
        chunks = shapes.Chunks(self.answer["id"], self.body.model)
        await resp.write(chunks.delta({"role": "assistant", "content": ""}))

        async def send(text: str) -> None:
            await resp.write(chunks.delta({"content": text}))

        revoked: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        hold = self.app[REVOCATIONS].hold(credential_of(self.request), settle, revoked)
        try:
            end = await self._watched(send, revoked)
        finally:
            self.app[REVOCATIONS].release(hold)
        if end is None:
            if revoked.done():
                with contextlib.suppress(ConnectionError):
                    await resp.write(shapes.error_line(InvalidApiKey(revoked.result())))
                    await resp.write_eof()
            return resp
        # before the last line: a client that has read [DONE] finds no chat left behind
        await self.forget()
        with contextlib.suppress(ConnectionError):
            if end.status != "complete":
                await resp.write(shapes.error_line(self.failure(end)))
            else:
                reason, counts = await self._ending(end)
                if end.tool_calls:
                    await resp.write(chunks.delta({"tool_calls": call_deltas(end.tool_calls)}))
                await resp.write(chunks.delta({}, reason))
                if self.body.include_usage:
                    await resp.write(chunks.usage(counts))
                await resp.write(shapes.DONE)
            await resp.write_eof()
        return resp
