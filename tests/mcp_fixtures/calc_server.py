"""A real MCP server written with the SDK's server class, for the tests:
`python calc_server.py http PORT KEY` serves Streamable HTTP on 127.0.0.1
and refuses requests without `X-Key: KEY`; `python calc_server.py stdio`
speaks over stdin and stdout."""

import asyncio
import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def echo_args(city: str, days: int, tags: list[str]) -> str:
    """Return the arguments as the server received them."""
    return json.dumps({"city": city, "days": days, "tags": tags})


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after a while."""
    await asyncio.sleep(seconds)
    return "finally"


@server.tool()
def boom() -> str:
    """Always fails."""
    raise ValueError("the calculator caught fire")


def with_key(app, key: str):
    async def checked(scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-key") != key.encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no key"})
            return
        await app(scope, receive, send)
    return checked


if __name__ == "__main__":
    if sys.argv[1] == "http":
        app = with_key(server.streamable_http_app(session_idle_timeout=1.0), sys.argv[3])
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", lifespan="on")
    else:
        server.run("stdio")
