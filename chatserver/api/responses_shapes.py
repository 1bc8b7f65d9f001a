"""OpenAI's Responses shapes for /v1/responses: the request, what its `input`
becomes, the `response` object and its numbered event stream.

The events are derived from the answer's text, never stored: a response's
events are a function of its reasoning and its text, whose pieces every
process reads the same way (live state in Redis, then PostgreSQL). So
`sequence_number` is numbered by character, not by event: a text delta is
numbered by the position of its last character (`B + 1 + offset`, where B
is the number of the message item's `output_item.added`), and each fixed
event takes the next number. Resuming after N then starts at the character
numbered N + 1 exactly, however the text was cut into pieces the first time.
The numbers grow but skip; docs/openai.md says how they are laid out.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Literal

import pydantic

from chatserver.api import openai_shapes
from chatserver.api.message_shapes import MAX_CONTENT
from chatserver.errors import (
    AnswerFailed,
    InvalidJson,
    InvalidValue,
    ResponseNotFound,
    StringAboveMaxLength,
    UnsupportedContent,
)
from chatserver.live.wire import End

PREFIX = "resp_"
MAX_METADATA_KEYS = 16


class InputPart(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class InputItem(pydantic.BaseModel):
    """A message of `input`, or the output of a function call (or the call,
    sent back as it came); other item types are refused by `conversation`."""
    model_config = pydantic.ConfigDict(extra="ignore")
    type: str = "message"
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: str | list[InputPart] | None = None
    call_id: Annotated[str, pydantic.StringConstraints(max_length=200)] | None = None
    output: str | list[InputPart] | None = None


class ResponseRequest(pydantic.BaseModel):
    """OpenAI's request; fields chatserver has no use for are ignored."""
    model_config = pydantic.ConfigDict(extra="ignore")
    model: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
    input: str | Annotated[list[InputItem], pydantic.Field(min_length=1, max_length=1000)]
    instructions: Annotated[str, pydantic.StringConstraints(max_length=MAX_CONTENT)] | None = None
    previous_response_id: str | None = None
    stream: bool = False
    background: bool = False
    store: bool = True
    tools: list[dict] = []
    tool_choice: str | dict | None = None
    max_output_tokens: Annotated[int, pydantic.Field(ge=1)] | None = None
    temperature: Annotated[float, pydantic.Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, pydantic.Field(ge=0, le=1)] | None = None
    metadata: Annotated[dict[str, Annotated[str, pydantic.StringConstraints(max_length=512)]],
                        pydantic.Field(max_length=MAX_METADATA_KEYS)] | None = None
    user: Annotated[str, pydantic.StringConstraints(max_length=256)] | None = None


def parse_request(raw: bytes) -> ResponseRequest:
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("the request body must be a JSON object")
    try:
        body = ResponseRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidValue(f"{where}: {first['msg']}", param=where) from None
    if body.background and not body.store:
        raise InvalidValue("background responses must be stored: store cannot be false", param="store")
    return body


def response_id(message_id: uuid.UUID) -> str:
    return PREFIX + message_id.hex


def message_id_of(value: str, param: str | None = None) -> uuid.UUID:
    """The answer a response id names; ResponseNotFound when it names none."""
    if value.startswith(PREFIX):
        try:
            return uuid.UUID(hex=value[len(PREFIX):])
        except ValueError:
            pass
    raise ResponseNotFound(param=param)


def _text_of(item: InputItem) -> str:
    if item.content is None or isinstance(item.content, str):
        return item.content or ""
    if any(part.type not in ("input_text", "output_text", "text") for part in item.content):
        raise UnsupportedContent("input: only text content parts are supported", param="input")
    return "".join(part.text or "" for part in item.content)


@dataclasses.dataclass
class Input:
    """What a request's `input` becomes: the chat's turns and question
    (`talk`), and the items GET .../input_items lists."""
    talk: openai_shapes.Conversation
    items: list[dict]


def conversation(body: ResponseRequest) -> Input:
    messages = [InputItem(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    system = [body.instructions] if body.instructions else []
    turns: list[tuple[str, str]] = []
    items: list[dict] = []
    for item in messages:
        if item.type == "function_call":
            continue  # the previous response's own output, sent back: its chat has it
        if item.type == "function_call_output":
            output = function_output(item)
            turns.append(("user", f"Output of function call {item.call_id}: {output}"))
            items.append({"id": f"fco_{uuid.uuid4().hex}", "type": "function_call_output",
                          "call_id": item.call_id, "output": output, "status": "completed"})
            continue
        if item.type != "message" or item.role is None:
            raise UnsupportedContent(f"input: items of type {item.type!r} are not supported", param="input")
        text = _text_of(item)
        if "\x00" in text:
            raise InvalidValue("input: content contains a NUL character", param="input")
        if len(text) > MAX_CONTENT:
            raise StringAboveMaxLength(f"input: a message is longer than {MAX_CONTENT} characters", param="input")
        if item.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append((item.role, text))
        part = "output_text" if item.role == "assistant" else "input_text"
        items.append({"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": item.role,
                      "status": "completed", "content": [{"type": part, "text": text}]})
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise InvalidValue("input: the last message must be a non-empty user message", param="input")
    talk = openai_shapes.Conversation(system_prompt="\n\n".join(system) or None, turns=turns[:-1],
                                      question=turns[-1][1])
    return Input(talk, items)


def function_output(item: InputItem) -> str:
    """The text of a function_call_output item (the model reads it as a user
    turn naming the call: see tools_for_model)."""
    if not item.call_id:
        raise InvalidValue("input: a function_call_output needs its call_id", param="input")
    output = item.output if isinstance(item.output, str) or item.output is None else _text_of(
        InputItem(content=item.output))
    if "\x00" in (output or ""):
        raise InvalidValue("input: an output contains a NUL character", param="input")
    if len(output or "") > MAX_CONTENT:
        raise StringAboveMaxLength(f"input: an output is longer than {MAX_CONTENT} characters", param="input")
    return output or ""


def tools_for_model(body: ResponseRequest) -> dict:
    """The request's function tools and tool_choice as a chat completion
    request names them, for the model server (ai/answer_job.py OPTIONS).
    The model sees a function's output as a user turn naming the call (conversation)."""
    tools = []
    for tool in body.tools:
        name = tool.get("name")
        if tool.get("type") != "function" or not isinstance(name, str) or not name:
            raise InvalidValue("tools: only function tools (with a name) are supported", param="tools")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        tools.append({"type": "function", "function": function})
    choice = body.tool_choice
    if isinstance(choice, dict):
        if choice.get("type") != "function" or not isinstance(choice.get("name"), str):
            raise InvalidValue("tool_choice: only a function tool may be named", param="tool_choice")
        choice = {"type": "function", "function": {"name": choice["name"]}}
    return {"tools": tools or None, "tool_choice": choice if tools else None}


def stored_request(body: ResponseRequest) -> dict:
    """What a response keeps of its request, to answer with it later."""
    return body.model_dump(include={"model", "instructions", "previous_response_id", "background", "store",
                                    "tools", "tool_choice", "max_output_tokens", "temperature", "top_p",
                                    "metadata", "user"})


def status_of(status: str, finish_reason: str | None) -> str:
    """A message's status as a response's."""
    if status == "complete":
        return "incomplete" if finish_reason == "length" else "completed"
    return {"pending": "queued", "streaming": "in_progress"}.get(status, status)


@dataclasses.dataclass
class Outcome:
    """What the answer is at one moment, as a response shows it."""
    status: str  # a response status (status_of)
    reasoning: str = ""
    text: str = ""
    error: str | None = None
    usage: dict | None = None  # the model server's, when it reported one
    tool_calls: list[dict] | None = None  # [{"id", "name", "arguments"}]


class Shape:
    """One response's objects and items: its stored request and ids."""

    def __init__(self, row: dict):
        self.row = row
        self.id = response_id(row["message_id"])
        self.request = row["request"]
        self.message_item_id = "msg_" + row["message_id"].hex
        self.reasoning_item_id = "rs_" + row["message_id"].hex

    def reasoning_item(self, text: str, done: bool) -> dict:
        return {"id": self.reasoning_item_id, "type": "reasoning", "summary": [],
                "content": [{"type": "reasoning_text", "text": text}] if done else [],
                "status": "completed" if done else "in_progress"}

    def message_item(self, text: str, status: str, with_content: bool = True) -> dict:
        return {"id": self.message_item_id, "type": "message", "role": "assistant", "status": status,
                "content": [output_text(text)] if with_content else []}

    def call_item(self, index: int, call: dict) -> dict:
        return {"id": f"fc_{self.row['message_id'].hex}_{index}", "type": "function_call",
                "call_id": call["id"] or f"call_{self.row['message_id'].hex}_{index}", "name": call["name"],
                "arguments": call["arguments"], "status": "completed"}

    def usage(self, outcome: Outcome) -> dict:
        prompt = "\n".join([self.request.get("instructions") or "",
                            *(p["text"] for item in self.row["input_items"] for p in item.get("content", ())),
                            *(item["output"] for item in self.row["input_items"] if "output" in item)])
        counts = openai_shapes.usage(outcome.usage, prompt, outcome.text)
        return {"input_tokens": counts["prompt_tokens"], "output_tokens": counts["completion_tokens"],
                "total_tokens": counts["total_tokens"],
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0}}

    def output(self, outcome: Outcome) -> list[dict]:
        items = []
        finished = outcome.status not in ("queued", "in_progress")
        if outcome.reasoning:
            items.append(self.reasoning_item(outcome.reasoning, finished or bool(outcome.text)))
        if outcome.text or (outcome.status in ("completed", "incomplete") and not outcome.tool_calls):
            item_status = {"completed": "completed", "in_progress": "in_progress"}.get(outcome.status, "incomplete")
            items.append(self.message_item(outcome.text, item_status))
        items += [self.call_item(i, call) for i, call in enumerate(outcome.tool_calls or ())]
        return items

    def response(self, outcome: Outcome) -> dict:
        r, status = self.request, outcome.status
        return {"id": self.id, "object": "response", "created_at": self.row["created_at"].timestamp(),
                "status": status, "model": r["model"], "output": self.output(outcome),
                "error": {"code": AnswerFailed.code, "message": outcome.error or AnswerFailed.message}
                if status == "failed" else None,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                "usage": self.usage(outcome) if status in ("completed", "incomplete") else None,
                "instructions": r["instructions"], "metadata": r["metadata"] or {},
                "previous_response_id": r["previous_response_id"], "background": r["background"],
                "store": r["store"], "tools": r["tools"], "tool_choice": r["tool_choice"] or "auto",
                "parallel_tool_calls": True, "temperature": r["temperature"], "top_p": r["top_p"],
                "max_output_tokens": r["max_output_tokens"], "user": r["user"], "truncation": "disabled",
                "text": {"format": {"type": "text"}}, "reasoning": None}

    def outcome_of_row(self, message: dict) -> Outcome:
        """The outcome of a stored (or live-merged) answer row."""
        return Outcome(status_of(message["status"], message.get("finish_reason")), message["reasoning"] or "",
                       message["content"] or "", message.get("error"), message.get("usage"),
                       message.get("tool_calls"))


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


# fixed events of the reasoning item: added, part added, then its deltas,
# then text done, part done, item done; the message item starts after them
REASONING_START = 2
REASONING_EVENTS = 5


class Events:
    """The numbered events of one response, from the items follow() yields,
    encoded only when numbered above `after` (see the module's docstring)."""

    def __init__(self, shape: Shape, after: int = -1):
        self.shape = shape
        self.after = after
        self.reasoning = ""
        self.text = ""
        self.phase: Literal["start", "reasoning", "closed", "text"] = "start"
        self.base = REASONING_START  # the number of the message item's output_item.added
        self.output_index = 0

    def _one(self, seq: int, kind: str, build: Callable[[], dict]) -> list[bytes]:
        if seq <= self.after:
            return []
        return [sse({"type": kind, "sequence_number": seq, **build()})]

    def start(self) -> list[bytes]:
        first = "queued" if self.shape.request["background"] else "in_progress"
        return [*self._one(0, "response.created", lambda: {"response": self.shape.response(Outcome(first))}),
                *self._one(1, "response.in_progress",
                           lambda: {"response": self.shape.response(Outcome("in_progress"))})]

    def _item(self) -> dict:
        return {"item_id": self.shape.reasoning_item_id if self.phase == "reasoning" else self.shape.message_item_id,
                "output_index": self.output_index, "content_index": 0}

    def add_reasoning(self, text: str) -> list[bytes]:
        if self.phase in ("text", "closed") or not text:
            return []  # reasoning after the text has no item of its own left to join
        out = []
        if self.phase == "start":
            self.phase = "reasoning"
            s = REASONING_START
            out += self._one(s, "response.output_item.added", lambda: {
                "output_index": 0, "item": self.shape.reasoning_item("", False)})
            out += self._one(s + 1, "response.content_part.added", lambda: {
                **self._item(), "part": {"type": "reasoning_text", "text": ""}})
        start = len(self.reasoning)
        self.reasoning += text
        shown = text[max(0, self.after - REASONING_START - 1 - start):]
        return out + self._one(REASONING_START + 1 + len(self.reasoning), "response.reasoning_text.delta",
                               lambda: {**self._item(), "delta": shown})

    def _close_reasoning(self) -> list[bytes]:
        end = REASONING_START + 1 + len(self.reasoning)
        whole = self.reasoning
        out = [*self._one(end + 1, "response.reasoning_text.done", lambda: {**self._item(), "text": whole}),
               *self._one(end + 2, "response.content_part.done", lambda: {
                   **self._item(), "part": {"type": "reasoning_text", "text": whole}}),
               *self._one(end + 3, "response.output_item.done", lambda: {
                   "output_index": 0, "item": self.shape.reasoning_item(whole, True)})]
        self.base = end + 4
        self.output_index = 1
        self.phase = "closed"
        return out

    def _open_message(self) -> list[bytes]:
        out = self._close_reasoning() if self.phase == "reasoning" else []
        self.phase = "text"
        b = self.base
        out += self._one(b, "response.output_item.added", lambda: {
            "output_index": self.output_index, "item": self.shape.message_item("", "in_progress", False)})
        out += self._one(b + 1, "response.content_part.added", lambda: {**self._item(), "part": output_text("")})
        return out

    def add_text(self, text: str) -> list[bytes]:
        if not text:
            return []
        out = self._open_message() if self.phase != "text" else []
        start = len(self.text)
        self.text += text
        shown = text[max(0, self.after - self.base - 1 - start):]
        return out + self._one(self.base + 1 + len(self.text), "response.output_text.delta",
                               lambda: {**self._item(), "delta": shown, "logprobs": []})

    def _calls(self, seq: int, calls: list[dict]) -> list[bytes]:
        """A function call item's four events each, from `seq` on, after the items before them."""
        out = []
        for i, call in enumerate(calls):
            out += self._call(seq + 4 * i, self.output_index + i, self.shape.call_item(i, call))
        return out

    def _call(self, seq: int, index: int, item: dict) -> list[bytes]:
        ids = {"item_id": item["id"], "output_index": index}
        return [*self._one(seq, "response.output_item.added", lambda: {
                    "output_index": index, "item": {**item, "arguments": "", "status": "in_progress"}}),
                *self._one(seq + 1, "response.function_call_arguments.delta",
                           lambda: {**ids, "delta": item["arguments"]}),
                *self._one(seq + 2, "response.function_call_arguments.done",
                           lambda: {**ids, "name": item["name"], "arguments": item["arguments"]}),
                *self._one(seq + 3, "response.output_item.done", lambda: {"output_index": index, "item": item})]

    def end(self, end: End) -> list[bytes]:
        """The closing events and the last: completed, incomplete or failed."""
        status = status_of(end.status, end.finish_reason)
        out = []
        calls = end.tool_calls or []
        if status in ("completed", "incomplete") and calls and self.phase != "text":
            # the model only called functions: their items, and no empty message
            if self.phase == "reasoning":
                out += self._close_reasoning()
            out += self._calls(self.base, calls)
            last = self.base + 4 * len(calls)
        elif status in ("completed", "incomplete"):
            if self.phase != "text":
                out += self._open_message()
            text = self.text if end.content is None else end.content
            c = self.base + 1 + len(self.text)
            item_status = "completed" if status == "completed" else "incomplete"
            out += self._one(c + 1, "response.output_text.done", lambda: {**self._item(), "text": text,
                                                                        "logprobs": []})
            out += self._one(c + 2, "response.content_part.done", lambda: {**self._item(), "part": output_text(text)})
            out += self._one(c + 3, "response.output_item.done", lambda: {
                "output_index": self.output_index, "item": self.shape.message_item(text, item_status)})
            self.output_index += 1
            out += self._calls(c + 4, calls)
            last = c + 4 + 4 * len(calls)
            self.text = text
        else:
            if self.phase == "reasoning":
                self.base = REASONING_START + 1 + len(self.reasoning) + 4
            last = self.base + 1 + len(self.text) + 4
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        outcome = Outcome(status, self.reasoning, self.text, end.error, end.usage, end.tool_calls)
        return out + self._one(last, kind, lambda: {"response": self.shape.response(outcome)})
