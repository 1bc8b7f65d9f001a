"""The models a chat may use, and a user's token usage (docs/rest.md, Models)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.models import default_of, model_items
from chatserver.ai.registry import BACKENDS
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_query
from chatserver.data import messages


class Capabilities(pydantic.BaseModel):
    vision: bool
    tools: bool
    context_tokens: int | None


class Model(pydantic.BaseModel):
    id: str
    backend: str = pydantic.Field(json_schema_extra={"enum": [b.name for b in BACKENDS]})
    # MODEL_CAPABILITIES (docs/settings.md)
    capabilities: Capabilities


class ModelList(pydantic.BaseModel):
    items: list[Model]
    default: str


class UsageQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    days: Annotated[int, pydantic.Field(ge=1, le=366)] = 30


class UsageDay(pydantic.BaseModel):
    day: dt.date
    model: str
    messages: int
    prompt_tokens: int
    completion_tokens: int


class UsageReport(pydantic.BaseModel):
    items: list[UsageDay]


@endpoint("The models a chat may name, and the default", tag="models", responses={200: ModelList})
async def list_models(request: web.Request) -> web.Response:
    items = await model_items(request.app)
    models = [Model.model_validate(item) for item in items]
    return json_response(ModelList(items=models, default=default_of(request.app)))


@endpoint("The user's answers and tokens by day and model (UTC days), newest first", tag="models",
          query=UsageQuery, responses={200: UsageReport, 422: "invalid days"})
async def my_usage(request: web.Request) -> web.Response:
    query = read_query(request, UsageQuery)
    rows = await messages.usage_by_day(request.app[appkeys.DB], current_user_id(request), query.days)
    return json_response(UsageReport(items=[UsageDay(**r) for r in rows]))
