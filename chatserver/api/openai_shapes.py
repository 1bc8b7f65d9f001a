"""OpenAI's Chat Completions shapes for /v1: the request, what becomes of its
`messages`, the answer objects and chunks, and OpenAI's error body.

The app's middleware renders chatserver's `{error, code}`; /v1 clients
(the official SDKs among them) read `{"error": {message, type, param, code}}`
and pick their exception class by status, so /v1 answers the errors of the
catalogue (chatserver/errors.py, OpenAI's own codes among them) in that
shape, and a `422` as OpenAI's `400`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Annotated, Any, Literal

import pydantic
from aiohttp import web

from chatserver.api.endpoint import BadJson, parse_json, utf8_declared
from chatserver.api.function_tools import call_objects, check_tools, passing
from chatserver.api.message_shapes import MAX_CONTENT
from chatserver.errors import (
    ApiError,
    InvalidInput,
    InvalidJson,
    InvalidValue,
    OpenAIError,
    StringAboveMaxLength,
    UnsupportedContent,
    UnsupportedRole,
)

TITLE_LENGTH = 80
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
          404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
          415: "invalid_request_error", 429: "rate_limit_error"}


def error_status(error: ApiError) -> int:
    return 400 if error.status == 422 else error.status


def error_body(error: ApiError) -> dict:
    param = error.param if isinstance(error, OpenAIError) else None
    kind = (isinstance(error, OpenAIError) and error.error_type) or _TYPES.get(error_status(error), "server_error")
    return {"error": {"message": error.message, "type": kind, "param": param, "code": error.code}}


def error_response(error: ApiError) -> web.Response:
    return web.Response(status=error_status(error), text=json.dumps(error_body(error)),
                        content_type="application/json", headers=error.headers)


# what a REST error answer keeps when it becomes OpenAI's shape
_KEPT_HEADERS = ("Allow", "Retry-After")


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def from_rest(response: web.Response) -> web.Response:
    """A REST error answer (`{error, code}`: unknown path, wrong method, an
    outage) in OpenAI's shape, for a /v1 path no /v1 handler answered."""
    body = json.loads(response.text or "{}")
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    status = 400 if response.status == 422 else response.status
    payload = {"error": {"message": body.get("error", ""), "type": _TYPES.get(status, "server_error"),
                         "param": None, "code": body.get("code")}}
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json", headers=headers)


class ImageUrl(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    url: str


class TextPart(pydantic.BaseModel):
    """A text part, or an image_url part (data URLs only: docs/openai.md)."""
    model_config = pydantic.ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    image_url: ImageUrl | None = None


class ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    # an assistant message's calls, and the call a tool message answers (api/function_tools.py)
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def as_sent(self) -> dict:
        """The message for the model server, as OpenAI's shape has it."""
        sent: dict = {"role": self.role, "content": self.text() if self.content is not None else None}
        sent.update({k: v for k, v in (("tool_calls", self.tool_calls), ("tool_call_id", self.tool_call_id),
                                       ("name", self.name)) if v is not None})
        return sent

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type not in ("text", "image_url") for part in self.content):
            raise UnsupportedContent("only text and image_url content parts are supported")
        return "".join(part.text or "" for part in self.content if part.type == "text")

    def images(self) -> list[str]:
        """The URLs of the message's image_url parts."""
        if not isinstance(self.content, list):
            return []
        if any(part.type == "image_url" and part.image_url is None for part in self.content):
            raise InvalidValue("messages: an image_url part has no image_url", param="messages")
        return [part.image_url.url for part in self.content if part.type == "image_url" and part.image_url]


class StreamOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    include_usage: pydantic.StrictBool = False


class CompletionRequest(pydantic.BaseModel):
    """OpenAI's request; fields it names that chatserver has no use for are ignored.
    Values of the wrong JSON type are refused, not coerced (`"stream": "yes"`,
    `"temperature": false`): strict, but an integer is a number."""
    model_config = pydantic.ConfigDict(extra="ignore")
    model: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessage], pydantic.Field(min_length=1, max_length=1000)]
    stream: pydantic.StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, pydantic.Strict(), pydantic.Field(ge=0, le=2, allow_inf_nan=False)] | None = None
    max_tokens: Annotated[int, pydantic.Strict(), pydantic.Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, pydantic.Strict(), pydantic.Field(ge=1)] | None = None
    stop: str | Annotated[list[str], pydantic.Field(max_length=4)] | None = None
    n: Annotated[int, pydantic.Strict(), pydantic.Field(ge=1, le=1)] | None = None
    user: Annotated[str, pydantic.StringConstraints(max_length=256)] | None = None
    store: pydantic.StrictBool | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None

    @property
    def uses_tools(self) -> bool:
        return bool(self.tools) or any(m.role == "tool" or m.tool_calls for m in self.messages)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [s for s in ([self.stop] if isinstance(self.stop, str) else self.stop) if s]


def parse_request(request: web.Request, raw: bytes) -> CompletionRequest:
    """The request's body, read by the REST API's rules (UTF-8, at most 64
    levels deep, finite numbers), answered in OpenAI's shape."""
    if not utf8_declared(request):
        raise InvalidInput("the body names a charset other than UTF-8; send UTF-8")
    try:
        data = parse_json(raw) if raw else None
    except BadJson as exc:
        raise InvalidJson(f"the request body: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidJson("the request body must be a JSON object")
    try:
        return CompletionRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidValue(f"{where}: {first['msg']}", param=where) from None


class Conversation(pydantic.BaseModel):
    """What a request's `messages` become: a system prompt, the earlier turns
    (stored as the chat's messages) and the question the answer is for."""
    system_prompt: str | None
    turns: list[tuple[str, str]]
    question: str
    # the question's image_url parts (earlier turns' images are not kept)
    images: list[str] = []
    # a request with tools: what the model server gets instead of the stored turns
    passed: dict | None = None

    @property
    def title(self) -> str:
        first = next((text for role, text in self.turns if role == "user"), self.question)
        line = " ".join(first.split())
        return line[:TITLE_LENGTH - 1] + "\u2026" if len(line) > TITLE_LENGTH else line or "API call"


def conversation(request: CompletionRequest) -> Conversation:
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for message in request.messages:
        text = message.text()
        if "\x00" in text:
            raise InvalidValue("messages: content contains a NUL character", param="messages")
        if len(text) > MAX_CONTENT:
            raise StringAboveMaxLength(f"messages: a message is longer than {MAX_CONTENT} characters")
        if message.role in ("system", "developer"):
            system.append(text)
        elif message.role == "function":
            raise UnsupportedRole("messages: function messages are not supported (use tool messages)")
        elif message.role == "tool" or (message.tool_calls and not text):
            continue  # calls and their results reach the model as they came, not the stored chat
        else:
            turns.append((message.role, text))
    passed = None
    if request.uses_tools:
        check_tools(request.tools, request.tool_choice)
        # the stored chat ends at the last question; the calls after it go to the model as they are
        while turns and turns[-1][0] != "user":
            turns.pop()
        passed = passing(request.tools, request.tool_choice, request.parallel_tool_calls,
                         [m.as_sent() for m in request.messages])
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise InvalidValue("messages: the last message must be a non-empty user message", param="messages")
    return Conversation(system_prompt="\n\n".join(system) or None, turns=turns[:-1], question=turns[-1][1],
                        images=request.messages[-1].images(), passed=passed)


def completion_id(answer_id: uuid.UUID) -> str:
    return f"chatcmpl-{answer_id.hex}"


def estimated_tokens(text: str) -> int:
    """About four characters a token: for backends that report no usage."""
    return math.ceil(len(text) / 4)


def usage(stored: dict | None, prompt: str, answer: str) -> dict:
    """The backend's usage when it reported one, else an estimate."""
    if stored and stored.get("prompt_tokens") is not None:
        prompt_tokens, completion_tokens = stored["prompt_tokens"], stored.get("completion_tokens") or 0
    else:
        prompt_tokens, completion_tokens = estimated_tokens(prompt), estimated_tokens(answer)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class Chunks:
    """The `chat.completion.chunk` lines of one streamed answer."""

    def __init__(self, answer_id: uuid.UUID, model: str):
        self.base = {"id": completion_id(answer_id), "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": model, "system_fingerprint": None}

    def _line(self, extra: dict) -> bytes:
        return b"data: " + json.dumps({**self.base, **extra}).encode() + b"\n\n"

    def delta(self, delta: dict, finish_reason: str | None = None) -> bytes:
        return self._line({"choices": [{"index": 0, "delta": delta, "logprobs": None,
                                        "finish_reason": finish_reason}]})

    def usage(self, counts: dict) -> bytes:
        return self._line({"choices": [], "usage": counts})


DONE = b"data: [DONE]\n\n"


def error_line(error: ApiError) -> bytes:
    return b"data: " + json.dumps(error_body(error)).encode() + b"\n\n"


def completion(answer_id: uuid.UUID, model: str, text: str, finish_reason: str, counts: dict,
               tool_calls: list[dict] | None = None) -> dict:
    message: dict = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message.update(content=text or None, tool_calls=call_objects(tool_calls))
    return {"id": completion_id(answer_id), "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": counts}
