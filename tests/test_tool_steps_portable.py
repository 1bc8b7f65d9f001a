"""Tool steps in exports (ChatGPT's tool nodes) and back in through imports."""

import json

from support.accounts import create_chat, register
from support.chatgpt_import import chats_of, node, upload
from support.messages import get_message, idle, post_message
from support.tool_models import add_test_tools, calls, say, start_tool_model, tool_results


def two_steps(body: dict) -> dict:
    if not tool_results(body):
        return calls(("echo", {"text": "found it"}), ("explode", {}), text="Checking.")
    return say("Done checking.")


async def answered_with_steps(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, two_steps)
    add_test_tools(client)
    account = await register(client)
    chat = await create_chat(client, account, "With tools")
    await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["test:echo", "test:explode"]},
                       headers=account.headers)
    answer = (await post_message(client, account, chat["id"], "Check"))["assistant_message"]
    await idle(client)
    return client, account, chat, await get_message(client, account, answer["id"])


async def test_an_export_writes_each_step_as_a_call_and_a_tool_node(fake_service, make_client):
    client, account, chat, answer = await answered_with_steps(fake_service, make_client)
    resp = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "json"}, headers=account.headers)
    [exported] = json.loads(await resp.read())
    mapping = exported["mapping"]
    chain, key = [], mapping[answer["id"]]["parent"]
    while mapping[key]["message"]["author"]["role"] != "user":
        chain.append(mapping[key]["message"])
        key = mapping[key]["parent"]
    call1, result1, call2, result2 = chain[::-1]
    assert (call1["recipient"], call1["content"]["text"]) == ("test:echo", '{"text": "found it"}')
    assert (result1["author"], result1["content"]["parts"]) == ({"role": "tool", "name": "test:echo"}, ["found it"])
    assert (result2["metadata"]["status"], result2["content"]["parts"]) == ("failed", ["the tool exploded"])
    assert call2["recipient"] == "test:explode"
    question = mapping[key]
    assert question["children"] == [f"{answer['id']}-call-0"]
    assert mapping[answer["id"]]["message"]["content"]["parts"] == ["Checking.Done checking."]


async def test_an_exported_chat_imports_with_its_steps(fake_service, make_client):
    client, account, chat, answer = await answered_with_steps(fake_service, make_client)
    resp = await client.get("/api/export", headers=account.headers)
    other = await register(client)
    resp = await upload(client, other, await resp.read())
    assert await resp.json() == {"imported": 1, "skipped": 0}
    [copy] = await chats_of(client, other)
    listed = (await (await client.get(f"/api/chats/{copy['id']}/messages", headers=other.headers)).json())["items"]
    assert [m["content"] for m in listed] == ["Check", "Checking.Done checking."]
    assert listed[1]["steps"] == answer["steps"]


async def test_a_chatgpt_tool_call_is_imported_as_a_step_not_as_text(client, user):
    mapping = {
        "root": node("root", None, ["q"]),
        "q": node("q", "root", ["call"], "user", "Weather in Oslo?"),
        "call": node("call", "q", ["out"], "assistant", '{"query": "Oslo weather"}', recipient="browser"),
        "out": node("out", "call", ["a"], "tool", "Oslo: 3 degrees, rain"),
        "a": node("a", "out", [], "assistant", "It is 3 degrees and raining."),
    }
    mapping["out"]["message"]["author"]["name"] = "browser"
    data = [{"id": "c0ffee00-0000-4000-8000-0000000000aa", "title": "Weather", "current_node": "a",
             "mapping": mapping}]
    resp = await upload(client, user, json.dumps(data).encode())
    assert await resp.json() == {"imported": 1, "skipped": 0}
    [chat] = await chats_of(client, user)
    listed = (await (await client.get(f"/api/chats/{chat['id']}/messages", headers=user.headers)).json())["items"]
    assert [m["content"] for m in listed] == ["Weather in Oslo?", "It is 3 degrees and raining."]
    [step] = listed[1]["steps"]
    assert (step["tool"], step["status"], step["output"], step["error"]) == (
        "browser", "done", "Oslo: 3 degrees, rain", None)
    assert step["arguments"] == {"query": "Oslo weather"}
