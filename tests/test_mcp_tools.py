"""MCP servers' tools, against real MCP servers written with the SDK
(tests/mcp_fixtures/calc_server.py) over Streamable HTTP and stdio: discovery, calls
with their arguments checked at the server, time-outs, errors, a server down
at start, a server restarting between calls, an idle session, isolation."""

import asyncio
import json
import socket
import sys
import time
import uuid

import pytest
from support.accounts import create_chat, register
from support.messages import get_message, idle, post_message
from support.paths import TESTS_DIR
from support.served_app import app_of
from support.tool_models import calls, say, start_tool_model, tool_results

from chatserver.config import ConfigError, load_settings
from chatserver.tools.mcp_servers import model_name
from chatserver.tools.toolbox import NAME_RULE, TOOLBOX

SERVER = str(TESTS_DIR / "mcp_fixtures" / "calc_server.py")
KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """calc_server.py over Streamable HTTP in a process of its own, stopped and started at will."""

    def __init__(self, port: int):
        self.port = port
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(sys.executable, SERVER, "http", str(self.port), KEY)
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not start"
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def http_server():
    server = HttpServer(free_port())
    yield server
    await server.stop()


def http_config(server: HttpServer, name: str = "calc", key: str = KEY) -> str:
    return json.dumps([{"name": name, "url": server.url, "headers": {"X-Key": key}}])


async def tools_when(client, check, timeout: float = 30) -> dict:
    """GET /api/tools, polled until `check(items by id)` holds."""
    account = await register(client)
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get("/api/tools", headers=account.headers)
        items = {t["id"]: t for t in (await resp.json())["items"]}
        if check(items):
            return items
        assert time.monotonic() < deadline, f"tools never matched: {sorted(items)}"
        await asyncio.sleep(0.1)


def available(*ids):
    return lambda items: all(i in items and items[i]["available"] for i in ids)


async def call(client, tool_id: str, arguments: dict):
    toolbox = app_of(client)[TOOLBOX]
    [tool] = [t for s in toolbox.sources for t in s.tools() if t.id == tool_id]
    return await toolbox.run(tool, json.dumps(arguments), uuid.uuid4())


async def test_http_tools_are_discovered_with_their_schemas(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    items = await tools_when(client, available("mcp:calc:add", "mcp:calc:echo_args"))
    add = items["mcp:calc:add"]
    assert (add["name"], add["source"], add["description"]) == ("calc_add", "mcp:calc", "Add two integers.")
    assert add["input_schema"]["required"] == ["a", "b"]


async def test_an_http_call_reaches_the_server_with_its_arguments(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:echo_args"))
    arguments = {"city": "Zürich", "days": 3, "tags": ["a", "b"]}
    outcome = await call(client, "mcp:calc:echo_args", arguments)
    assert (outcome.status, json.loads(outcome.output)) == ("done", arguments)


async def test_the_configured_headers_reach_the_server(make_client, http_server):
    await http_server.start()
    right = await make_client(MCP_SERVERS=http_config(http_server, "right"))
    wrong = await make_client(MCP_SERVERS=http_config(http_server, "wrong", key="not-the-key"))
    await tools_when(right, available("mcp:right:add"))
    items = await tools_when(wrong, lambda items: "builtin:read_file" in items)
    assert not [i for i in items if i.startswith("mcp:wrong:")]


async def test_a_stdio_server_is_called(make_client):
    config = json.dumps([{"name": "local", "command": sys.executable, "args": [SERVER, "stdio"]}])
    client = await make_client(MCP_SERVERS=config)
    await tools_when(client, available("mcp:local:add"))
    outcome = await call(client, "mcp:local:add", {"a": 2, "b": 40})
    assert (outcome.status, outcome.output) == ("done", "42")
    outcome = await call(client, "mcp:local:echo_args", {"city": "Oslo", "days": 1, "tags": []})
    assert json.loads(outcome.output) == {"city": "Oslo", "days": 1, "tags": []}


async def test_a_slow_tool_times_out_and_the_server_stays_usable(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server), TOOL_TIMEOUT_SECONDS=0.5)
    await tools_when(client, available("mcp:calc:slow"))
    outcome = await call(client, "mcp:calc:slow", {"seconds": 30})
    assert (outcome.status, outcome.error) == ("failed", "the tool did not answer within 0.5 s")
    outcome = await call(client, "mcp:calc:add", {"a": 1, "b": 1})
    assert (outcome.status, outcome.output) == ("done", "2")


async def test_a_tool_that_raises_is_an_error_result(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:boom"))
    outcome = await call(client, "mcp:calc:boom", {})
    assert outcome.status == "failed"
    assert "boom" in outcome.error


async def test_bad_arguments_are_the_servers_error_result(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    outcome = await call(client, "mcp:calc:add", {"a": "two"})
    assert outcome.status == "failed" and outcome.error


async def test_a_server_down_at_start_is_picked_up_when_it_comes_up(make_client, http_server):
    client = await make_client(MCP_SERVERS=http_config(http_server))
    account = await register(client)
    chat = await create_chat(client, account)
    # its tools are not known yet, but a chat may already name them
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["mcp:calc:add"]}, headers=account.headers)
    assert resp.status == 200
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["mcp:other:add"]}, headers=account.headers)
    assert resp.status == 422
    await http_server.start()
    await tools_when(client, available("mcp:calc:add"))
    outcome = await call(client, "mcp:calc:add", {"a": 20, "b": 1})
    assert outcome.output == "21"


async def test_a_server_restarted_between_two_calls_is_called_again(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    assert (await call(client, "mcp:calc:add", {"a": 1, "b": 2})).output == "3"
    await http_server.stop()
    await http_server.start()
    outcome = await call(client, "mcp:calc:add", {"a": 3, "b": 4})
    assert (outcome.status, outcome.output) == ("done", "7"), outcome.error


async def test_a_call_after_the_server_forgot_the_idle_session_works(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    assert (await call(client, "mcp:calc:add", {"a": 1, "b": 1})).output == "2"
    await asyncio.sleep(2.5)  # the idleness under test: the server forgets sessions idle for 1 s
    outcome = await call(client, "mcp:calc:add", {"a": 2, "b": 2})
    assert (outcome.status, outcome.output) == ("done", "4")


async def test_a_down_server_costs_only_its_own_tools(make_client, http_server):
    await http_server.start()
    down = f"http://127.0.0.1:{free_port()}/mcp"
    config = json.dumps([{"name": "gone", "url": down}, {"name": "calc", "url": http_server.url,
                                                          "headers": {"X-Key": KEY}}])
    client = await make_client(MCP_SERVERS=config)
    items = await tools_when(client, available("mcp:calc:add", "builtin:search_chats"))
    assert not [i for i in items if i.startswith("mcp:gone:")]
    assert (await call(client, "mcp:calc:add", {"a": 5, "b": 5})).output == "10"


async def test_a_server_that_goes_down_is_listed_unavailable(make_client, http_server):
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    await http_server.stop()
    # a call finds it gone: its tools stay listed, unavailable, until it is back
    outcome = await call(client, "mcp:calc:add", {"a": 1, "b": 1})
    assert outcome.status == "failed"
    await tools_when(client, lambda items: items["mcp:calc:add"]["available"] is False)


async def test_the_model_calls_an_mcp_tool_in_an_answer(fake_service, make_client, http_server):
    await http_server.start()

    def plan(body):
        if not tool_results(body):
            return calls(("calc_add", {"a": 19, "b": 23}))
        return say(f"The sum is {tool_results(body)[0]['content']}.")

    model, client = await start_tool_model(fake_service, make_client, plan, MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    account = await register(client)
    chat = await create_chat(client, account)
    await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["mcp:calc:add"]}, headers=account.headers)
    answer = (await post_message(client, account, chat["id"], "Add them"))["assistant_message"]
    await idle(client)
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == ["calc_add"]
    stored = await get_message(client, account, answer["id"])
    assert (stored["content"], stored["steps"][0]["tool"], stored["steps"][0]["output"]) == (
        "The sum is 42.", "mcp:calc:add", "42")


async def test_the_worked_example_of_docs_tools_md_runs_as_written(fake_service, make_client, tmp_path):
    doc = (TESTS_DIR.parent / "docs" / "tools.md").read_text()
    example = doc.split("### A worked example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "calc.py").write_text(example)

    def plan(body):
        if not tool_results(body):
            return calls(("calc_add", {"a": 19, "b": 23}))
        return say(f"It is {tool_results(body)[0]['content']}.")

    config = json.dumps([{"name": "calc", "command": sys.executable, "args": [str(tmp_path / "calc.py")]}])
    model, client = await start_tool_model(fake_service, make_client, plan, MCP_SERVERS=config)
    items = await tools_when(client, available("mcp:calc:add"))
    assert items["mcp:calc:add"]["name"] == "calc_add"
    account = await register(client)
    chat = await create_chat(client, account)
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["mcp:calc:add"]}, headers=account.headers)
    assert resp.status == 200
    answer = (await post_message(client, account, chat["id"], "What is 19 + 23? Use the tool."))["assistant_message"]
    await idle(client)
    stored = await get_message(client, account, answer["id"])
    [step] = stored["steps"]
    assert (step["tool"], step["arguments"], step["status"], step["output"]) == (
        "mcp:calc:add", {"a": 19, "b": 23}, "done", "42")
    assert stored["content"] == "It is 42."


def test_tool_names_follow_openais_rule_and_hold_the_tools_own_name():
    assert model_name("calc", "add") == "calc_add"
    long = model_name("a-server-with-a-rather-long-name", "a.tool/with:odd chars and a long long name")
    assert NAME_RULE.match(long) and long.endswith("a_tool_with_odd_chars_and_a_long_long_name")
    assert NAME_RULE.match(model_name("s", "x" * 100))


@pytest.mark.parametrize("raw, error", [
    ("{", "not valid JSON"),
    ('{"name": "x"}', "expected a JSON list"),
    ('[{"name": "bad name", "url": "http://x"}]', "`name` must be"),
    ('[{"name": "x"}]', "either `url`"),
    ('[{"name": "x", "url": "ftp://x"}]', "http(s) URL"),
    ('[{"name": "x", "url": "http://x", "headers": {"a": 1}}]', "`headers`"),
    ('[{"name": "x", "command": "python", "args": "server.py"}]', "`args`"),
    ('[{"name": "x", "command": "a"}, {"name": "x", "command": "b"}]', "used twice"),
])
def test_bad_mcp_servers_stop_the_settings_loading(settings, raw, error):
    with pytest.raises(ConfigError, match="MCP_SERVERS") as caught:
        load_settings(None, environ={}, dotenv=None, base=settings, overrides={"MCP_SERVERS": raw})
    assert error in str(caught.value)


async def test_one_log_line_per_connect_and_disconnect(make_client, http_server, caplog):
    caplog.set_level("INFO", logger="chatserver.tools.mcp_servers")
    await http_server.start()
    client = await make_client(MCP_SERVERS=http_config(http_server))
    await tools_when(client, available("mcp:calc:add"))
    await http_server.stop()
    await call(client, "mcp:calc:add", {"a": 1, "b": 1})
    await tools_when(client, lambda items: items["mcp:calc:add"]["available"] is False)
    lines = [r.getMessage() for r in caplog.records if r.name == "chatserver.tools.mcp_servers"]
    assert lines[0] == "MCP server calc connected: 4 tools"
    assert lines[1].startswith("MCP server calc disconnected: ")
    assert lines[2].startswith("MCP server calc: cannot connect (")
