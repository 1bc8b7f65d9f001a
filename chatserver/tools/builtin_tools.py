"""The built-in tools: over the calling user's own data only (the user id
comes from the answer being written, never from the model's arguments)."""

from __future__ import annotations

import json
import uuid

from chatserver.data import files, messages
from chatserver.db import Database
from chatserver.tools.toolbox import Tool, ToolFailed

SOURCE = "builtin"
SEARCH_LIMIT = 10

SEARCH_CHATS = Tool(
    id="builtin:search_chats", name="search_chats", source=SOURCE,
    description="Full-text search of the user's own chat messages (web-search syntax: words, \"quoted phrases\", "
                "-excluded). Returns the best matches with their chat id, message id, date and a snippet.",
    input_schema={"type": "object",
                  "properties": {"query": {"type": "string", "description": "what to search for"},
                                 "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT,
                                           "description": f"how many matches at most (default {SEARCH_LIMIT})"}},
                  "required": ["query"]},
)
READ_FILE = Tool(
    id="builtin:read_file", name="read_file", source=SOURCE,
    description="The extracted text of one of the user's uploaded files, by its id or its file name.",
    input_schema={"type": "object",
                  "properties": {"file": {"type": "string", "description": "the file's id or name"}},
                  "required": ["file"]},
)


class BuiltinTools:
    source = SOURCE

    def __init__(self, db: Database):
        self.db = db

    def tools(self) -> list[Tool]:
        return [SEARCH_CHATS, READ_FILE]

    def available(self) -> bool:
        return True

    def owns(self, tool_id: str) -> bool:
        return False  # every built-in is listed

    async def call(self, tool: Tool, arguments: dict, user_id: uuid.UUID) -> str:
        if tool is SEARCH_CHATS:
            return await self._search(arguments, user_id)
        return await self._read(arguments, user_id)

    async def _search(self, arguments: dict, user_id: uuid.UUID) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolFailed("`query` must be a non-empty string")
        limit = arguments.get("limit", SEARCH_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= SEARCH_LIMIT:
            raise ToolFailed(f"`limit` must be an integer from 1 to {SEARCH_LIMIT}")
        rows = await messages.search(self.db, user_id, query[:500], limit)
        return json.dumps([{"chat_id": str(r["chat_id"]), "message_id": str(r["message_id"]),
                            "created_at": r["created_at"].isoformat(), "snippet": r["snippet"]} for r in rows],
                          ensure_ascii=False)

    async def _read(self, arguments: dict, user_id: uuid.UUID) -> str:
        wanted = arguments.get("file")
        if not isinstance(wanted, str) or not wanted.strip():
            raise ToolFailed("`file` must be a file id or name")
        try:
            file_id: uuid.UUID | None = uuid.UUID(wanted.strip())
        except ValueError:
            file_id = None
        row = await files.text_by_id_or_name(self.db, user_id, file_id, wanted.strip())
        if row is None:
            raise ToolFailed(f"no file {wanted!r}")
        if row["status"] in files.WORKING:
            raise ToolFailed(f"the text of {row['name']} is still being extracted")
        if row["status"] != "ready":
            raise ToolFailed(f"the text of {row['name']} could not be extracted")
        return row["text_content"] or ""
