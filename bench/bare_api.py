"""The baseline of bench/api.py: bare aiohttp handlers running the same
queries as chatserver's (its data functions, through aiopg) and answering
with orjson; no authentication, no validation, no middleware.

    .venv/bin/python bench/bare_api.py PORT DSN
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import aiopg
import orjson
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chatserver.data import chats, messages  # noqa: E402
from chatserver.db import Database  # noqa: E402


def answer(data) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_UTC_Z), content_type="application/json")


async def list_messages(request: web.Request) -> web.Response:
    q = request.query
    rows = await messages.branch_page(request.app["db"], uuid.UUID(q["chat"]), uuid.UUID(q["user"]),
                                      uuid.UUID(q["leaf"]), 51)
    return answer({"items": rows[:50][::-1], "next_cursor": None})


async def list_chats(request: web.Request) -> web.Response:
    rows = await chats.page(request.app["db"], uuid.UUID(request.query["user"]), None, 21)
    return answer({"items": rows[:20], "next_cursor": None})


async def search(request: web.Request) -> web.Response:
    q = request.query
    return answer({"items": await messages.search(request.app["db"], uuid.UUID(q["user"]), q["q"], 20)})


async def get_message(request: web.Request) -> web.Response:
    (row,) = await messages.get_many(request.app["db"], [uuid.UUID(request.query["id"])])
    return answer(row)


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def main(port: int, dsn: str) -> None:
    app = web.Application()
    app["db"] = Database(await aiopg.create_pool(dsn, minsize=1, maxsize=20))
    app.add_routes([web.get("/messages", list_messages), web.get("/chats", list_chats),
                    web.get("/search", search), web.get("/message", get_message), web.get("/ready", ready)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
