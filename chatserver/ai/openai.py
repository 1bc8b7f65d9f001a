"""Any OpenAI-compatible `/chat/completions` server (OpenAI, Ollama, llama.cpp,
vLLM), streamed: every server-sent delta goes out as soon as it arrives.

An answer is complete only when the model says it finished (a `finish_reason`
or `data: [DONE]`); anything else that ends the stream fails the answer with
what arrived. `429` and `503` (and connection failures and other 5xx) are
tried again after the server's `Retry-After`, within STREAM_TIMEOUT_SECONDS
of the first try; watchers are told of each wait.

What it is sent fits in AI_CONTEXT_TOKENS (context.py). The models a chat may
name are the server's own `GET /models` (kept for OPENAI_MODELS_CACHE_SECONDS;
when the server cannot be asked, the last list it gave) plus OPENAI_MODELS and
the default OPENAI_MODEL.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time

import aiohttp

from chatserver.ai.base import Backend, BackendFailed, BackendRejected, Result, Write, describe, error_text, origin
from chatserver.ai.context import Context, passage_sources, system_prompt
from chatserver.config import Settings
from chatserver.db import Database

log = logging.getLogger(__name__)

ENDED_EARLY = "the model's answer ended early"
SERVER = "the model server"
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_WAIT = 30.0


def chat_messages(context: Context, default_prompt: str) -> list[dict]:
    """At most one system message, first; then strictly alternating turns
    starting with the user and ending with the new user message, which holds
    the attached files' text before the question (many chat templates drop or
    reject other system messages and non-alternating roles)."""
    prompt = system_prompt_text(context, default_prompt)
    turns: list[dict] = []
    for turn in context.history:
        if not turns and turn["role"] != "user":
            continue
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] += "\n\n" + turn["content"]
        else:
            turns.append({"role": turn["role"], "content": turn["content"]})
    last = _with_files(context)
    if turns and turns[-1]["role"] == "user":
        # the answer to it failed or was cancelled: both questions go as one turn
        last = turns.pop()["content"] + "\n\n" + last
    turns.append({"role": "user", "content": last})
    if context.image_urls:
        # a vision model sees the attached images as pictures besides the text
        turns[-1]["content"] = [{"type": "text", "text": last},
                                *({"type": "image_url", "image_url": {"url": url}} for url in context.image_urls)]
    return ([{"role": "system", "content": prompt}] if prompt else []) + turns


def system_prompt_text(context: Context, default_prompt: str) -> str:
    return default_prompt if context.system_prompt is None else context.system_prompt


CITE = ("Passages from the user's files follow, numbered. Answer from them where they help, and cite "
        "each passage you use by its number in square brackets, like [1] or [2][3].")


def _with_files(context: Context) -> str:
    parts = []
    if context.files:
        parts.append("Attached files:")
        for f in context.files:
            parts.append(f"--- {f['name']} ---")
            parts.append(f["content"] if f["content"] else f"({f.get('note') or 'no text'})")
        parts.append("--- end of files ---")
        parts.append("")
    if context.passages:
        parts.append(CITE)
        for p in context.passages:
            page = f", page {p['page']}" if p["page"] else ""
            parts.append(f"[{p['number']}] {p['file_name']}{page}:\n{p['text']}")
        parts.append("--- end of passages ---")
        parts.append("")
    parts.append(context.message)
    return "\n".join(parts)


def request_body(context: Context, settings) -> dict:
    body: dict = {
        "model": context.model or settings.OPENAI_MODEL,
        "messages": chat_messages(context, system_prompt(settings, None)) + context.tool_turns,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if context.temperature is not None:
        body["temperature"] = context.temperature
    if context.max_tokens is not None:
        body["max_tokens"] = context.max_tokens
    if context.tool_specs:
        body["tools"] = context.tool_specs
    body.update(context.options)
    body.update(context.client_tools)
    return body


def chat_url(settings) -> str:
    return settings.OPENAI_CHAT_URL or settings.OPENAI_BASE_URL.rstrip("/") + "/chat/completions"


def headers(settings) -> dict[str, str]:
    found = {"Authorization": f"Bearer {settings.OPENAI_API_KEY}"} if settings.OPENAI_API_KEY else {}
    found.update(settings.openai_headers)
    return found


def retry_after(resp: aiohttp.ClientResponse, attempt: int) -> float:
    """The server's Retry-After (seconds or an HTTP date), else 1, 2, 4... seconds."""
    raw = resp.headers.get("Retry-After", "").strip()
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return float(2 ** (attempt - 1))


class _Stream:
    """What one streamed answer said so far: how it ended, usage, model."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.done = False
        self.usage: dict | None = None
        self.model: str | None = None
        self.events = 0
        self.text: list[str] = []
        # the tool calls asked for so far, by their index in the stream
        self.calls: dict[int, dict] = {}

    def read(self, line: bytes) -> tuple[str, str]:
        """The (reasoning, content) text of one `data:` line."""
        data = line[len(b"data:"):].strip()
        if data == b"[DONE]":
            self.done = True
            return "", ""
        try:
            event = json.loads(data)
        except ValueError:
            raise BackendFailed(f"{SERVER} sent a malformed event") from None
        if not isinstance(event, dict):
            raise BackendFailed(f"{SERVER} sent a malformed event")
        self.events += 1
        if event.get("error"):
            error = event["error"]
            raise BackendFailed(str(error.get("message", error) if isinstance(error, dict) else error))
        if isinstance(event.get("model"), str) and event["model"]:
            self.model = event["model"]
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")
                          if isinstance(usage.get(k), int)} or None
        thought, text = "", ""
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                for key in ("reasoning_content", "reasoning"):
                    if isinstance(delta.get(key), str):
                        thought += delta[key]
                if isinstance(delta.get("content"), str):
                    text += delta["content"]
                self._add_calls(delta.get("tool_calls"))
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
                self.finish_reason = reason if reason in ("length", "tool_calls") else "stop"
        self.text.append(text)
        return thought, text

    def _add_calls(self, deltas: object) -> None:
        """Tool calls come in pieces: the id and name first, the arguments' text in parts."""
        if not isinstance(deltas, list):
            return
        for delta in deltas:
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", len(self.calls))
            call = self.calls.setdefault(index if isinstance(index, int) else len(self.calls),
                                         {"id": "", "name": "", "arguments": ""})
            function = delta.get("function")
            if not isinstance(function, dict):
                function = {}
            if isinstance(delta.get("id"), str):
                call["id"] = delta["id"]
            # OpenAI sends the name once (some servers in pieces); llama-cpp-python
            # sends it whole again in every piece of the call
            if isinstance(function.get("name"), str) and function["name"] != call["name"]:
                call["name"] += function["name"]
            if isinstance(function.get("arguments"), str):
                call["arguments"] += function["arguments"]

    def tool_calls(self) -> list[dict]:
        return [self.calls[i] for i in sorted(self.calls)]

    @property
    def finished(self) -> bool:
        return self.done or self.finish_reason is not None


class OpenAIBackend(Backend):
    name = "openai"
    needs = ("OPENAI_BASE_URL",)
    remote = False
    calls_tools = True

    def __init__(self, settings: Settings, db: Database, session: aiohttp.ClientSession):
        super().__init__(settings, db, session)
        self._served: list[str] = []
        self._fetched_at = float("-inf")

    @classmethod
    def startup_line(cls, settings: Settings) -> str:
        return f"model {settings.OPENAI_MODEL} at {origin(settings.OPENAI_BASE_URL)}"

    async def models(self) -> list[str]:
        return [*await self._server_models(), self.settings.OPENAI_MODEL, *self.settings.OPENAI_MODELS]

    def default_model(self) -> str:
        return self.settings.OPENAI_MODEL

    def token_budget(self) -> int:
        return self.settings.AI_CONTEXT_TOKENS

    async def _server_models(self) -> list[str]:
        s = self.settings
        if time.monotonic() - self._fetched_at < s.OPENAI_MODELS_CACHE_SECONDS:
            return self._served
        try:
            async with self.session.get(s.OPENAI_BASE_URL.rstrip("/") + "/models", headers=headers(s),
                                        timeout=aiohttp.ClientTimeout(total=s.AI_SERVICE_TIMEOUT_SECONDS)) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("model list: %s", describe(exc, "the model server"))
            body = None
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, list):
            self._served = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        self._fetched_at = time.monotonic()
        return self._served

    async def generate(self, context: Context, write: Write) -> Result:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.AI_SERVICE_TIMEOUT_SECONDS,
                                        sock_read=s.STREAM_TIMEOUT_SECONDS)
        body = request_body(context, s)
        deadline = time.monotonic() + s.STREAM_TIMEOUT_SECONDS
        attempt = 1
        while True:
            try:
                async with self.session.post(chat_url(s), json=body, headers=headers(s), timeout=timeout) as resp:
                    if resp.status == 200:
                        return await self._read(resp, context, body["model"], write)
                    failure = await error_text(resp)
                    if resp.status not in RETRY_STATUSES:
                        raise BackendRejected(failure)
                    wait = retry_after(resp, attempt)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                failure = describe(exc, SERVER)
                wait = float(2 ** (attempt - 1))
            wait = min(wait, MAX_RETRY_WAIT)
            if attempt >= s.JOB_MAX_ATTEMPTS or time.monotonic() + wait > deadline:
                raise BackendFailed(failure)
            attempt += 1
            await write.retrying(attempt)
            await asyncio.sleep(wait)

    async def _read(self, resp: aiohttp.ClientResponse, context: Context, model: str, write: Write) -> Result:
        stream = _Stream()
        try:
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue
                thought, text = stream.read(line)
                if thought:
                    await write.reasoning(thought)
                if text:
                    await write(text)
                if stream.done:
                    break
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            if not stream.finished:
                if isinstance(exc, TimeoutError):
                    raise BackendFailed(f"{ENDED_EARLY}: {SERVER} sent nothing for "
                                        f"{self.settings.STREAM_TIMEOUT_SECONDS:g} s") from None
                raise BackendFailed(f"{ENDED_EARLY}: {describe(exc, SERVER)}") from None
        if not stream.finished:
            said = "sent no answer" if not stream.events else "ended the stream without saying it finished"
            raise BackendFailed(f"{ENDED_EARLY}: {SERVER} {said}")
        return Result(sources=passage_sources(context), finish_reason=stream.finish_reason or "stop",
                      usage=stream.usage, model=stream.model or model, tool_calls=stream.tool_calls(),
                      text="".join(stream.text))
