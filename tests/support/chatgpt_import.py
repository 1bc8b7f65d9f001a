"""ChatGPT's conversations.json made in memory, posted to /api/import, and the
chats an account has afterwards."""

from __future__ import annotations

import aiohttp


def node(key, parent, children, role=None, text=None, at=1700000000.0, parts=None, **extra):
    message = None
    if role is not None:
        message = {"id": key, "author": {"role": role}, "create_time": at,
                   "content": {"content_type": "text", "parts": parts if parts is not None else [text]}, **extra}
    return {"id": key, "parent": parent, "children": children, "message": message}


def chatgpt_file(conversation_id="c0ffee00-0000-4000-8000-000000000001") -> list[dict]:
    """A ChatGPT export: a null root, a hidden system node, an edited question,
    a tool node with no text, and current_node on the edited branch."""
    mapping = {
        "root": node("root", None, ["sys"]),
        "sys": node("sys", "root", ["q1", "q1b"], "system", "", at=1700000000.0),
        "q1": node("q1", "sys", ["a1"], "user", "First question", at=1700000001.0),
        "a1": node("a1", "q1", [], "assistant", "First answer", at=1700000002.0),
        "q1b": node("q1b", "sys", ["tool"], "user", "First question, edited", at=1700000003.0),
        "tool": node("tool", "q1b", ["a1b"], "tool", None, at=1700000004.0, parts=[{"image": "x"}]),
        "a1b": node("a1b", "tool", [], "assistant", "Answer to the edit", at=1700000005.0),
    }
    return [{"id": conversation_id, "title": "From ChatGPT", "create_time": 1700000000.0,
             "update_time": 1700000005.0, "current_node": "a1b", "mapping": mapping}]


async def upload(client, account, data: bytes, name="conversations.json"):
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await client.post("/api/import", data=form, headers=account.headers)


async def chats_of(client, account) -> list[dict]:
    return (await (await client.get("/api/chats", params={"limit": 100}, headers=account.headers)).json())["items"]
