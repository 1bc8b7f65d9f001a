"""The tool catalogue (GET /api/tools), a chat's `tools`, and the built-in
tools, which reach only the calling user's own data."""

import json
import uuid

from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.messages import idle, post_message
from support.served_app import app_of
from support.uploads import processed, uploaded

from chatserver.tools.toolbox import TOOLBOX

BUILTINS = {"builtin:search_chats", "builtin:read_file"}


async def run_tool(client, account, tool_id: str, arguments: dict):
    toolbox = app_of(client)[TOOLBOX]
    [tool] = toolbox.for_chat([tool_id])
    return await toolbox.run(tool, json.dumps(arguments), uuid.UUID(account.id))


async def test_the_built_in_tools_are_listed_with_their_schemas(client, user):
    resp = await client.get("/api/tools", headers=user.headers)
    assert resp.status == 200
    items = {t["id"]: t for t in (await resp.json())["items"]}
    assert set(items) >= BUILTINS
    search = items["builtin:search_chats"]
    assert (search["name"], search["source"], search["available"]) == ("search_chats", "builtin", True)
    assert search["input_schema"]["required"] == ["query"]
    assert items["builtin:read_file"]["input_schema"]["properties"]["file"]["type"] == "string"


async def test_the_tool_list_needs_a_login(client):
    resp = await client.get("/api/tools")
    assert resp.status == 401


async def test_a_chat_has_no_tools_until_it_names_some(client, user):
    chat = await create_chat(client, user)
    assert chat["tools"] == []
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["builtin:read_file"]},
                              headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["tools"] == ["builtin:read_file"]
    resp = await client.get(f"/api/chats/{chat['id']}", headers=user.headers)
    assert (await resp.json())["tools"] == ["builtin:read_file"]


async def test_a_chat_created_with_tools_keeps_them(client, user):
    resp = await client.post("/api/chats", json={"title": "Tooled", "tools": sorted(BUILTINS)},
                             headers=user.headers)
    assert resp.status == 201
    assert (await resp.json())["tools"] == sorted(BUILTINS)


async def test_null_tools_resets_to_none(client, user):
    resp = await client.post("/api/chats", json={"tools": ["builtin:search_chats"]}, headers=user.headers)
    chat = await resp.json()
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": None}, headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["tools"] == []


async def test_unknown_tool_ids_are_refused(client, user):
    chat = await create_chat(client, user)
    for ids in (["builtin:format_disk"], ["mcp:nowhere:calc"], ["search_chats"]):
        resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ids}, headers=user.headers)
        assert resp.status == 422
        body = await resp.json()
        assert_error(body, "unknown_tools")
        assert ids[0] in body["error"]
    resp = await client.post("/api/chats", json={"tools": ["builtin:nope"]}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_tools")


async def test_tools_must_be_a_list_of_ids(client, user):
    chat = await create_chat(client, user)
    for bad in ("builtin:read_file", [1], [""]):
        resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": bad}, headers=user.headers)
        assert resp.status == 422
        assert_error(await resp.json(), "validation_error")


async def test_search_chats_finds_only_the_callers_messages(client, user, other_user):
    mine = await create_chat(client, user)
    theirs = await create_chat(client, other_user)
    await post_message(client, user, mine["id"], "my zanzibar itinerary")
    await post_message(client, other_user, theirs["id"], "their zanzibar secret")
    await idle(client)
    outcome = await run_tool(client, user, "builtin:search_chats", {"query": "zanzibar"})
    assert outcome.status == "done", outcome
    hits = json.loads(outcome.output)
    assert [h["chat_id"] for h in hits] == [mine["id"]]
    assert "itinerary" in hits[0]["snippet"]
    outcome = await run_tool(client, other_user, "builtin:search_chats", {"query": "itinerary"})
    assert json.loads(outcome.output) == []


async def test_read_file_reads_the_callers_file_by_id_or_name(client, user):
    file = await processed(client, user, await uploaded(client, user, b"The launch code is 0000.", "plan.txt"))
    by_id = await run_tool(client, user, "builtin:read_file", {"file": file["id"]})
    by_name = await run_tool(client, user, "builtin:read_file", {"file": "plan.txt"})
    assert by_id.status == by_name.status == "done"
    assert "The launch code is 0000." in by_id.output
    assert by_name.output == by_id.output


async def test_read_file_never_reads_another_users_file(client, user, other_user):
    file = await processed(client, other_user, await uploaded(client, other_user, b"private words", "secret.txt"))
    for wanted in (file["id"], "secret.txt"):
        outcome = await run_tool(client, user, "builtin:read_file", {"file": wanted})
        assert (outcome.status, outcome.output) == ("failed", "")
        assert outcome.error == f"no file {wanted!r}"


async def test_bad_arguments_become_an_error_result(client, user):
    toolbox = app_of(client)[TOOLBOX]
    [tool] = toolbox.for_chat(["builtin:search_chats"])
    for raw, error in (("{not json", "the arguments are not valid JSON"),
                       ("[1]", "the arguments must be a JSON object"),
                       ('{"query": 5}', "`query` must be a non-empty string")):
        outcome = await toolbox.run(tool, raw, uuid.UUID(user.id))
        assert (outcome.status, outcome.error) == ("failed", error)


async def test_long_output_is_cut_to_the_limit(make_client):
    client = await make_client(TOOL_OUTPUT_MAX_CHARS=300)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, b"word " * 1000, "long.txt"))
    outcome = await run_tool(client, account, "builtin:read_file", {"file": file["id"]})
    assert outcome.status == "done"
    assert len(outcome.output) == 300
    assert outcome.output.endswith("[... output cut at 300 characters]")
