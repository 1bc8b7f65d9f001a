"""Searching the passages of the user's files (docs/knowledge.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import account_check
from chatserver.api.endpoint import NOT_BLANK, current_user_id, endpoint, json_response, read_query
from chatserver.knowledge.retrieval import find_passages
from chatserver.knowledge.vectors import VECTORS

MAX_FILE_IDS = 100


class PassageQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    q: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=500), NOT_BLANK]
    file_ids: Annotated[str, pydantic.Field(description="comma-separated file ids; all your files when absent")] = ""
    limit: Annotated[int, pydantic.Field(ge=1, le=50)] = 10

    @pydantic.field_validator("file_ids")
    @classmethod
    def ids(cls, value: str) -> str:
        found = [item.strip() for item in value.split(",") if item.strip()]
        if len(found) > MAX_FILE_IDS:
            raise ValueError(f"at most {MAX_FILE_IDS} file ids")
        for item in found:
            uuid.UUID(item)  # a ValueError names the bad id
        return ",".join(found)


class PassageHit(pydantic.BaseModel):
    file_id: uuid.UUID
    file_name: str
    page: int | None
    passage_id: uuid.UUID
    text: str
    score: float


class PassageResults(pydantic.BaseModel):
    items: list[PassageHit]


@endpoint("Search the passages of your files: full-text and vector ranks fused", tag="files",
          query=PassageQuery, responses={200: PassageResults, 422: "missing or invalid q, file_ids or limit"},
          checks_account=True)
async def search_passages(request: web.Request) -> web.Response:
    query = read_query(request, PassageQuery)
    file_ids = [uuid.UUID(item) for item in query.file_ids.split(",")] if query.file_ids else None
    app = request.app
    hits = await find_passages(app[appkeys.DB], app[VECTORS], current_user_id(request), query.q, file_ids,
                               query.limit)
    if not hits:
        await account_check(request)
    return json_response({"items": [{k: hit[k] for k in PassageHit.model_fields} for hit in hits]})
