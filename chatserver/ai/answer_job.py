"""The `ai.generate` job: build the context, open the live state, run the backend.

A job may run more than once (at-least-once queue, retries, a process that
died). The live state tells a re-run what happened: a remote request the
service already accepted is not sent again; a local generation another live
process is driving is left alone; one that died half-way is finished as
failed, since a model would not write the same words twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web

from chatserver import appkeys, outage
from chatserver.ai import tool_loop
from chatserver.ai.base import Backend, BackendFailed, BackendRejected, BackendUnavailable, Result
from chatserver.ai.context import Context, build_context
from chatserver.ai.models import capabilities
from chatserver.ai.pictures import data_urls
from chatserver.ai.registry import BACKEND
from chatserver.data import messages
from chatserver.knowledge.vectors import VECTORS
from chatserver.live.answers import ANSWERS, Answers
from chatserver.live.fanout import FANOUT
from chatserver.live.quotas import QUOTAS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event

log = logging.getLogger(__name__)

INTERRUPTED = "the answer was interrupted (the server generating it stopped)"
GENERATE_TASK = "ai.generate"
# request options a model server may be given for one answer
OPTIONS = ("stop", "user", "client_tools")


class _Stopped(Exception):
    """The answer was finished elsewhere (cancelled, timed out) while it was being written."""


async def queue_answer(app: web.Application, message_id: uuid.UUID, options: dict | None = None) -> None:
    """Queue the generation of an answer, with `options` for the model server
    beyond the chat's settings (OPTIONS). If Redis is down the message stays
    pending and the answer sweep queues it again (without options)."""
    payload: dict = {"message_id": str(message_id)}
    if options:
        payload["options"] = {k: v for k, v in options.items() if k in OPTIONS and v}
    try:
        await app[appkeys.QUEUE].enqueue(GENERATE_TASK, payload)
    except Exception as exc:
        if not outage.report(app, exc):
            log.exception("could not queue the answer %s; the sweep will retry", message_id)


async def generate(app: web.Application, message_id: str, options: dict | None = None) -> None:
    db, answers = app[appkeys.DB], app[ANSWERS]
    backend = app[BACKEND]
    context = await build_context(db, app[appkeys.SETTINGS], message_id, app[VECTORS], backend.token_budget())
    if context is None:
        return  # deleted, cancelled or already answered
    context.options = dict(options or {})
    context.client_tools = context.options.pop("client_tools", None) or {}
    # a remote service decides for itself what to do with pictures
    if context.images and (backend.remote or capabilities(app, context.model or backend.default_model())["vision"]):
        storage = app[appkeys.STORAGE]
        context.image_urls = await data_urls([storage.path(name) for name in context.images],
                                             app[appkeys.SETTINGS].IMAGE_MAX_PIXELS)
    me = app[appkeys.QUEUE].instance
    opened = await app[ANSWER_STATE].open(context.message_id, "" if backend.remote else me)
    if opened.state in messages.FINISHED:
        return
    if opened.state == "streaming" and not await _take_over(app, backend, context, opened):
        return
    await messages.mark_streaming(db, context.message_id, context.model or backend.default_model())
    if backend.remote:
        try:
            await backend.generate(context, _NoWrite())
        except BackendRejected as exc:
            log.warning("answer %s failed: %s", context.message_id, exc)
            await answers.finish(context.message_id, context.chat_id, "failed", error=str(exc))
            return
        await app[ANSWER_STATE].mark_sent(context.message_id)
        return
    await _run_local(app, backend, context)


_REMOTE = "a remote backend answers through the callback endpoint"


class _NoWrite:
    async def __call__(self, text: str) -> None:
        raise RuntimeError(_REMOTE)

    async def reasoning(self, text: str) -> None:
        raise RuntimeError(_REMOTE)

    async def retrying(self, attempt: int) -> None:
        raise RuntimeError(_REMOTE)


async def _take_over(app: web.Application, backend: Backend, context: Context, opened) -> bool:
    """Whether this run should (re)start an answer an earlier run already opened."""
    if backend.remote:
        return not opened.sent
    if str(context.message_id) in app[FANOUT].running:
        return False
    queue = app[appkeys.QUEUE]
    if opened.owner != queue.instance and await queue.is_alive(opened.owner):
        return False
    if opened.pieces:
        log.warning("answer %s failed: %s", context.message_id, INTERRUPTED)
        await app[ANSWERS].finish(context.message_id, context.chat_id, "failed", error=INTERRUPTED)
        return False
    await app[ANSWER_STATE].claim(context.message_id, queue.instance)
    return True


async def _run_local(app: web.Application, backend: Backend, context: Context) -> None:
    answers = app[ANSWERS]
    running = app[FANOUT].running
    message_id, chat_id = context.message_id, context.chat_id
    write = _Writer(answers, message_id, chat_id)

    # its own task, so a cancel published by any process can stop it mid-read
    task = asyncio.create_task(tool_loop.answer(app, backend, context, write))
    running[str(message_id)] = task
    try:
        result = await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        assert current is not None, "a coroutine awaiting a task runs in a task"
        if current.cancelling():
            raise
        return
    except _Stopped:
        return
    except (BackendRejected, BackendFailed) as exc:
        log.warning("answer %s failed: %s", message_id, exc)
        await answers.finish(message_id, chat_id, "failed", error=str(exc))
        return
    except BackendUnavailable as exc:
        if not write.written:
            raise  # nothing shown yet: the queue retries with backoff
        log.warning("answer %s failed half-way: %s", message_id, exc)
        await answers.finish(message_id, chat_id, "failed", error=str(exc))
        return
    finally:
        running.pop(str(message_id), None)
    if not isinstance(result, Result):
        result = Result(sources=result or [])
    done = await answers.finish(message_id, chat_id, "complete", sources=result.sources,
                                finish_reason=result.finish_reason, usage=result.usage, model=result.model,
                                tool_calls=result.tool_calls or None)
    if done is not None and result.usage:
        app[appkeys.METRICS].count_tokens(done["model"] or "", result.usage)
        await app[QUOTAS].count_tokens(context.user_id, _tokens_of(result.usage))


def _tokens_of(usage: dict) -> int:
    counts = (usage.get(name) for name in ("prompt_tokens", "completion_tokens"))
    return sum(count for count in counts if isinstance(count, int) and count > 0)


class _Writer:
    """The `write` a local backend gets (see base.Write); raises _Stopped once
    the answer was finished elsewhere."""

    def __init__(self, answers: Answers, message_id: uuid.UUID, chat_id: uuid.UUID):
        self.answers, self.message_id, self.chat_id = answers, message_id, chat_id
        self.written = False

    async def __call__(self, text: str) -> None:
        self.written = True
        if not await self.answers.add(self.message_id, self.chat_id, Event.chunk(text)):
            raise _Stopped()

    async def reasoning(self, text: str) -> None:
        self.written = True
        if not await self.answers.add(self.message_id, self.chat_id, Event.reasoning(text)):
            raise _Stopped()

    async def retrying(self, attempt: int) -> None:
        if not await self.answers.add(self.message_id, self.chat_id, Event.status("retrying", attempt)):
            raise _Stopped()

    async def step(self, step: dict) -> None:
        self.written = True
        if not await self.answers.add(self.message_id, self.chat_id, Event.tool_step(step)):
            raise _Stopped()
