"""Messages: post (which queues an answer), list the shown branch, read,
cancel, regenerate, edit; and switching the branch a chat shows.

Messages form a tree (docs/rest.md, Branches): a post continues the chat's shown
leaf, an edit starts a sibling of the edited question, a regeneration a
sibling of the old answer; each makes its new answer the shown leaf."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.answer_job import queue_answer
from chatserver.api.access import owned, owned_chat, owned_message
from chatserver.api.chat_shapes import Chat, chat_updated, title_from
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_json, read_query, shaped
from chatserver.api.message_shapes import MAX_CONTENT, Message, message_out
from chatserver.api.pagination import decode_cursor, encode_cursor, page_query
from chatserver.api.quota_check import check_quota
from chatserver.api.ratelimit import TOO_MANY_REQUESTS, check_message_limit
from chatserver.data import chats, files, messages
from chatserver.errors import InvalidCursor, MessageFinished, NotAnAnswer, NotAQuestion, NotFound, UnknownFiles
from chatserver.live.answers import ANSWERS, AlreadyFinished
from chatserver.live.chat_events import CHAT_EVENTS
from chatserver.live.reads import live_content
from chatserver.live.state import ANSWER_STATE

MAX_FILES_PER_MESSAGE = 20


class MessageIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    content: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=MAX_CONTENT)]
    file_ids: Annotated[list[Annotated[uuid.UUID, pydantic.Strict(False)]],
                        pydantic.Field(max_length=MAX_FILES_PER_MESSAGE)] = []

    @pydantic.field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class BranchIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    message_id: uuid.UUID


class PostedMessages(pydantic.BaseModel):
    user_message: Message
    assistant_message: Message


class MessagePage(pydantic.BaseModel):
    items: list[Message]
    next_cursor: str | None


MessagesPage = page_query(50)


async def _check_files(request: web.Request, file_ids: list[uuid.UUID]) -> None:
    if not file_ids:
        return
    missing = set(file_ids) - await files.owned_ids(request.app[appkeys.DB], current_user_id(request), file_ids)
    if missing:
        raise UnknownFiles(sorted(map(str, missing)))


@endpoint("Post a message; the answer is queued as a pending assistant message", tag="messages",
          body=MessageIn, responses={201: PostedMessages, 404: "no such chat", 422: "invalid input or files",
                                     429: TOO_MANY_REQUESTS})
async def post_message(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    chat = await owned_chat(request)
    body = await read_json(request, MessageIn)
    file_ids = list(dict.fromkeys(body.file_ids))
    await _check_files(request, file_ids)
    await check_message_limit(request)
    await check_quota(request)
    async with db.transaction() as cur:
        leaf = await chats.lock_leaf(cur, chat["id"])
        posted, _ = await _ask(cur, chat["id"], user_id, body.content, file_ids, leaf)
        titled = await chats.take_auto_title(cur, chat["id"], title_from(body.content))
    if titled is not None:
        await chat_updated(request, titled)
    return await _posted(request, posted)


async def _ask(cur, chat_id: uuid.UUID, user_id: uuid.UUID, content: str, file_ids: list[uuid.UUID],
               parent_id: uuid.UUID | None) -> tuple[tuple[uuid.UUID, uuid.UUID], dict | None]:
    """A question under `parent_id` and its pending answer, shown, with the chat
    as it is now; inside the caller's transaction."""
    question = await messages.insert_question(cur, chat_id, user_id, content, file_ids, parent_id)
    answer = await messages.insert_answer(cur, chat_id, user_id, question["id"])
    shown = await chats.show(cur, chat_id, answer["id"])
    return (question["id"], answer["id"]), shown


async def _posted(request: web.Request, ids: tuple[uuid.UUID, uuid.UUID], switched: dict | None = None
                  ) -> web.Response:
    """Queue the answer, tell subscribed sockets (`switched`: the chat, when
    the shown branch changed), answer 201 with both messages."""
    # told before the answer is queued, so that no tab hears of its end first
    await request.app[CHAT_EVENTS].message_event("message_created", list(ids))
    if switched is not None:
        await chat_updated(request, switched)
    await queue_answer(request.app, ids[1])
    question, answer = await messages.get_many(request.app[appkeys.DB], list(ids))
    return json_response({"user_message": message_out(question), "assistant_message": message_out(answer)}, 201)


@endpoint("List a chat's messages; oldest first within a page, the cursor walks back in time",
          tag="messages", query=MessagesPage, checks_account=True,
          responses={200: MessagePage, 404: "no such chat", 422: "invalid limit or cursor"})
async def list_messages(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    query = read_query(request, MessagesPage)
    start = None
    if query.cursor:
        (raw,) = decode_cursor(query.cursor, 1)
        try:
            start = uuid.UUID(raw)
        except ValueError:
            raise InvalidCursor() from None
    chat_id = uuid.UUID(request.match_info["chat_id"]) if _is_id(request.match_info["chat_id"]) else None
    # messages carry their owner, so a page needs no read of the chat first (the
    # first page starts from the chat's shown leaf in the same statement); an
    # empty one still has to tell "your empty chat" from "not your chat"
    rows = await messages.branch_page(db, chat_id, user_id, start, query.limit + 1) if chat_id else []
    if not rows:
        await owned_chat(request)
    more = len(rows) > query.limit
    cursor = encode_cursor(rows[query.limit]["id"]) if more else None
    rows = rows[: query.limit][::-1]
    items = await live_content(request.app[ANSWER_STATE], rows)
    return json_response({"items": [message_out(r) for r in items], "next_cursor": cursor})


def _is_id(raw: str) -> bool:
    with contextlib.suppress(ValueError):
        return bool(uuid.UUID(raw))
    return False


@endpoint("Read a message", tag="messages", responses={200: Message, 404: "no such message"}, checks_account=True)
async def get_message(request: web.Request) -> web.Response:
    row = await owned(request, messages.read_owned, request.match_info["message_id"], "message")
    (row,) = await live_content(request.app[ANSWER_STATE], [row])
    return json_response(message_out(row))


@endpoint("Cancel an answer; the text received so far is kept", tag="messages",
          responses={200: Message, 404: "no such message", 409: "the message is already finished"})
async def cancel_message(request: web.Request) -> web.Response:
    row = await owned_message(request)
    try:
        done = await request.app[ANSWERS].cancel(row)
    except AlreadyFinished:
        raise MessageFinished() from None
    return json_response(message_out(done))


@endpoint("Answer the same user message again: a sibling of the old answer, now shown",
          tag="messages",
          responses={201: Message, 404: "no such message", 422: "not an assistant message",
                     429: TOO_MANY_REQUESTS})
async def regenerate_message(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    old = await owned_message(request)
    if old["role"] != "assistant" or old["reply_to"] is None:
        raise NotAnAnswer()
    await check_message_limit(request)
    await check_quota(request)
    with contextlib.suppress(AlreadyFinished):
        await app[ANSWERS].cancel(old, "regenerated")
    async with app[appkeys.DB].transaction() as cur:
        await chats.lock_leaf(cur, old["chat_id"])
        answer = await messages.insert_answer(cur, old["chat_id"], user_id, old["reply_to"])
        shown = await chats.show(cur, old["chat_id"], answer["id"])
    await app[CHAT_EVENTS].message_event("message_created", [answer["id"]])
    if shown is not None:
        await chat_updated(request, shown)
    await queue_answer(app, answer["id"])
    (answer,) = await messages.get_many(app[appkeys.DB], [answer["id"]])
    return json_response(message_out(answer), 201)


@endpoint("Edit a question: a new user message beside it (same parent) with a pending answer; "
          "the chat shows this branch", tag="messages", body=MessageIn,
          responses={201: PostedMessages, 404: "no such message", 422: "not a user message, or invalid input"})
async def edit_message(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    old = await owned_message(request)
    if old["role"] != "user":
        raise NotAQuestion()
    body = await read_json(request, MessageIn)
    file_ids = list(dict.fromkeys(body.file_ids))
    await _check_files(request, file_ids)
    async with db.transaction() as cur:
        await chats.lock_leaf(cur, old["chat_id"])
        posted, shown = await _ask(cur, old["chat_id"], user_id, body.content, file_ids, old["parent_id"])
    return await _posted(request, posted, switched=shown)


@endpoint("Show the branch through a message, down to its newest descendant", tag="chats", body=BranchIn,
          responses={200: Chat, 404: "no such chat or no such message in it", 422: "invalid input"})
async def switch_branch(request: web.Request) -> web.Response:
    db = request.app[appkeys.DB]
    chat = await owned_chat(request)
    body = await read_json(request, BranchIn)
    leaf = await messages.newest_descendant(db, chat["id"], body.message_id)
    if leaf is None:
        raise NotFound("message")
    async with db.transaction() as cur:
        row = await chats.show(cur, chat["id"], leaf)
    if row is None:
        raise NotFound("chat")
    return json_response(shaped(Chat, await chat_updated(request, row)))
