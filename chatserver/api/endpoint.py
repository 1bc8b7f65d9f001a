"""Describing endpoints once: the same pydantic models validate requests and
feed /openapi.json, so the documentation cannot drift from the code."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import pydantic
from aiohttp import web

from chatserver.errors import InvalidInput, InvalidJson, ValidationFailed

M = TypeVar("M", bound=pydantic.BaseModel)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text.strip()


# Strings the API keeps without the whitespace around them: the schema's
# length limits hold for the string as sent, and these strip afterwards.
# (pydantic's own strip_whitespace strips before it counts, so a string
# padded with whitespace past the schema's maxLength was taken.)
STRIPPED = pydantic.AfterValidator(str.strip)
NOT_BLANK = pydantic.AfterValidator(_not_blank)
# the authenticated user of a request (set by the credential check, authentication.py)
USER_ID = web.RequestKey("user_id", uuid.UUID)
# that user's own quotas (data/users.py, OWN_QUOTA), read with the account by the credential check: the
# quota check of a post needs no read of its own (quota_check.py)
OWN_QUOTA = web.RequestKey("own_quota", dict)


def current_user_id(request: web.Request) -> uuid.UUID:
    return request[USER_ID]


@dataclasses.dataclass
class Endpoint:
    summary: str
    tag: str
    body: type[pydantic.BaseModel] | None = None
    form: type[pydantic.BaseModel] | None = None
    multipart: dict | None = None
    query: type[pydantic.BaseModel] | None = None
    responses: dict[int, Any] = dataclasses.field(default_factory=dict)
    public: bool = False
    description: str = ""
    checks_account: bool = False
    tokens_only: bool = False


# where `endpoint` leaves the description on the handler function
_ATTRIBUTE = "endpoint"


def endpoint(summary: str, *, tag: str, body=None, form=None, multipart=None, query=None,
             responses: dict | None = None, public: bool = False, description: str = "",
             checks_account: bool = False, tokens_only: bool = False):
    """Attach the API description to a handler. `public` handlers need no token;
    `tokens_only` ones need an access token (an API key there is 403).
    A `checks_account` handler only reads, through queries that check the
    account themselves (account_active), and calls `account_check` before
    answering that they found nothing (access.py); it saves the credential check's lookup."""

    def wrap(handler: Callable) -> Callable:
        setattr(handler, _ATTRIBUTE, Endpoint(summary, tag, body, form, multipart, query,
                                              responses or {}, public, description, checks_account,
                                              tokens_only))
        return handler

    return wrap


def handler_endpoint(handler: Callable) -> Endpoint | None:
    return getattr(handler, _ATTRIBUTE, None)


def _details(exc: pydantic.ValidationError) -> list[dict]:
    return [
        {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def validate(model: type[M], data: Any) -> M:
    _check_storable(data)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        details = _details(exc)
        first = details[0]
        where = ".".join(first["loc"]) or "body"
        raise ValidationFailed(f"{where}: {first['msg']}", details=details) from None


MAX_JSON_DEPTH = 64


class BadJson(ValueError):
    """Not JSON we take: malformed, nested too deep, or a number out of range."""


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise BadJson(f"the number {text[:40]} is out of range")
    return number


def _no_constant(name: str) -> float:
    raise BadJson(f"{name} is not JSON")


def parse_json(raw: bytes | str) -> Any:
    """JSON as RFC 8259 has it (UTF-8, no NaN or Infinity, every number
    finite), at most MAX_JSON_DEPTH levels deep; BadJson otherwise."""
    try:
        # json.loads would take bytes in UTF-16 or UTF-32 too
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadJson("not valid UTF-8") from None
    try:
        data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except BadJson:
        raise
    except ValueError:
        raise BadJson("not valid JSON") from None
    # iteratively: the checks after this one walk the data recursively
    level = [data]
    for _ in range(MAX_JSON_DEPTH):
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return data
    if any(isinstance(item, (dict, list)) for item in level):
        raise BadJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data


# what a Content-Type may name as the charset of a JSON body
UTF8_NAMES = frozenset({"utf-8", "utf8"})


def utf8_declared(request: web.Request) -> bool:
    """The body names no charset, or UTF-8: a body in another (or an unknown)
    charset is refused rather than read as UTF-8 by chance."""
    return request.charset is None or request.charset.strip().lower() in UTF8_NAMES


async def read_json(request: web.Request, model: type[M]) -> M:
    """The request's JSON body validated by `model`; 422 for anything malformed."""
    if not utf8_declared(request):
        raise InvalidInput("the body names a charset other than UTF-8; send UTF-8")
    raw = await request.read()
    try:
        data = parse_json(raw) if raw else None
    except BadJson as exc:
        raise InvalidJson(f"request body: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidJson()
    return validate(model, data)


def _check_storable(data: object) -> None:
    """PostgreSQL text holds neither NUL nor unpaired surrogates (both valid
    JSON escapes); refuse them here instead of failing at the INSERT."""
    if isinstance(data, dict):
        for key, value in data.items():
            _check_storable(key)
            _check_storable(value)
    elif isinstance(data, list):
        for item in data:
            _check_storable(item)
    elif isinstance(data, str):
        if "\x00" in data:
            raise InvalidInput("input contains a NUL character")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("input contains an unpaired surrogate") from None


def read_query(request: web.Request, model: type[M]) -> M:
    return validate(model, dict(request.query))


def dumps(data: Any) -> bytes:
    """JSON as every answer and frame writes it; datetimes in UTC end in Z, as pydantic writes them."""
    return orjson.dumps(data, default=str, option=orjson.OPT_UTC_Z)


def json_response(data: Any, status: int = 200) -> web.Response:
    body = data.model_dump_json().encode() if isinstance(data, pydantic.BaseModel) else dumps(data)
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def shaped(model: type[pydantic.BaseModel], row: dict) -> dict:
    """A row of our own database as `model` shows it, for a flat model whose
    fields are all columns of the row: not validated, since the database's
    types are the schema's (the model stays the documentation)."""
    return {name: row[name] for name in model.model_fields}
