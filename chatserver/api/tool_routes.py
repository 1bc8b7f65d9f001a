"""The tools a chat's answers may call (docs/tools.md)."""

from __future__ import annotations

from typing import Any

import pydantic
from aiohttp import web

from chatserver.api.endpoint import endpoint, json_response
from chatserver.tools.toolbox import TOOLBOX


class ToolInfo(pydantic.BaseModel):
    id: str
    name: str
    description: str
    input_schema: dict[str, Any]
    source: str
    available: bool


class ToolList(pydantic.BaseModel):
    items: list[ToolInfo]


@endpoint("The tools a chat may name in `tools`, and whether each can be called now", tag="tools",
          responses={200: ToolList})
async def list_tools(request: web.Request) -> web.Response:
    return json_response(ToolList(items=[ToolInfo(**t) for t in request.app[TOOLBOX].listing()]))
