"""ChatGPT's `conversations.json` layout, to and from our message trees.

A conversation is `{"id", "title", "create_time", "update_time",
"current_node", "mapping"}`; `mapping` holds every node of the tree as
`{"id", "parent", "children", "message"}`, times in Unix seconds. Our chats
may have several first messages (an edited first question), so an export
hangs them under one root node without a message, as ChatGPT's own exports do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator

ROOT = "root"
ROLES = ("user", "assistant")
# the file's nesting, its top-level list included, may go as deep as a REST
# body's; ChatGPT's own exports need about ten levels
MAX_DEPTH = 64


class Unreadable(ValueError):
    """The file is not a conversations.json we can read; nothing is imported."""


# ---- export


def _stamp(value: dt.datetime | None) -> float | None:
    return round(value.timestamp(), 6) if value is not None else None


def conversation_head(chat: dict) -> str:
    """A conversation (chat: id, title, created_at, updated_at, shown_leaf)
    up to its open `mapping`: its entries and two closing braces follow."""
    leaf = chat.get("shown_leaf")
    head = json.dumps({"id": str(chat["id"]), "title": chat["title"], "create_time": _stamp(chat["created_at"]),
                       "update_time": _stamp(chat["updated_at"]), "current_node": str(leaf) if leaf else ROOT},
                      ensure_ascii=False)
    return head[:-1] + ', "mapping": {'


def root_entry(first_ids: list) -> str:
    """The mapping's root node: no message, the chat's first messages as children."""
    return _entry(ROOT, {"id": ROOT, "parent": None, "children": [str(i) for i in first_ids], "message": None})


def message_entry(row: dict) -> str:
    """A message (id, parent_id, role, content, created_at, children, feedback)
    as a mapping entry; an answer's feedback goes in its message's metadata."""
    key = str(row["id"])
    return _entry(key, {
        "id": key,
        "parent": str(row["parent_id"]) if row["parent_id"] else ROOT,
        "children": [str(child) for child in row["children"]],
        "message": {"id": key, "author": {"role": row["role"]},
                    "content": {"content_type": "text", "parts": [row["content"]]},
                    "create_time": _stamp(row["created_at"]),
                    **({"metadata": {"feedback": row["feedback"]}} if row.get("feedback") else {})},
    })


def _entry(key: str, node: dict) -> str:
    return f"{json.dumps(key)}: {json.dumps(node, ensure_ascii=False)}"


def markdown(chat: dict, branch: list[dict]) -> str:
    """The shown branch as Markdown, each message headed by its author and time."""
    lines = [f"# {chat['title']}", ""]
    for row in branch:
        who = "You" if row["role"] == "user" else "Assistant"
        lines += [f"## {who} · {row['created_at'].astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC", "", row["content"], ""]
        feedback = row.get("feedback")
        if feedback:
            rated = "good" if feedback["rating"] == 1 else "bad"
            lines += [f"> Rated {rated}" + (f": {feedback['comment']}" if feedback.get("comment") else ""), ""]
    return "\n".join(lines)


# ---- import


@dataclasses.dataclass
class Node:
    key: str  # the node id in the file
    parent: str | None  # the nearest kept ancestor's key
    role: str
    text: str
    created: dt.datetime


@dataclasses.dataclass
class Conversation:
    source: str  # where it came from, so that a second import finds it
    original_id: str
    title: str
    created: dt.datetime
    updated: dt.datetime
    nodes: list[Node]  # parents before children, siblings oldest first
    shown: str | None  # key of the node to show


def read_file(data: bytes, limit: int) -> list[Conversation]:
    """The conversations of a conversations.json, or of a ChatGPT export ZIP holding one."""
    if data[:4] == b"PK\x03\x04":
        data = _from_zip(data, limit)
    try:
        text = data.decode(json.detect_encoding(data), "surrogatepass")
        # each item is converted as soon as it is decoded, so the decoded JSON
        # of the whole file never exists at once (less memory, shorter GC pauses)
        return [_conversation(_shallow(item, i), i) for i, item in enumerate(_items(text))]
    except Unreadable:
        raise
    except RecursionError:
        # the decoder's own limit (about 1,000 levels), met before ours can look
        raise Unreadable(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable(f"not JSON: {exc}") from None


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """Where the JSON whitespace from `at` ends."""
    space = _SPACE.match(text, at)
    assert space is not None  # the pattern matches the empty string too
    return space.end()


def _items(text: str) -> Iterator[object]:
    """The items of a top-level list (or one object), decoded one at a time:
    each decode is one call that holds the GIL, so a worker thread reading
    a large file lets the event loop run between conversations."""
    at = _skip(text, 0)
    if text.startswith("{", at):
        item, at = _DECODER.raw_decode(text, at)
        yield item
    elif text.startswith("[", at):
        at = _skip(text, at + 1)
        if text.startswith("]", at):
            at += 1
        else:
            while True:
                item, at = _DECODER.raw_decode(text, at)
                yield item
                at = _skip(text, at)
                if text.startswith("]", at):
                    at += 1
                    break
                if not text.startswith(",", at):
                    raise ValueError(f"expected ',' or ']' at character {at}")
                at = _skip(text, at + 1)
    else:
        _DECODER.decode(text)
        raise Unreadable("expected a list of conversations")
    at = _skip(text, at)
    if at != len(text):
        raise ValueError(f"extra data at character {at}")


def _shallow(item: object, index: int) -> object:
    """`item` if it is nested at most MAX_DEPTH levels deep in the file (its
    list is the first); walked level by level, not recursively."""
    level: list[dict | list] = [item] if isinstance(item, (dict, list)) else []
    depth = 2
    while level:
        if depth > MAX_DEPTH:
            raise Unreadable(f"conversation {index + 1}: JSON nested deeper than {MAX_DEPTH} levels")
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        depth += 1
    return item


def _from_zip(data: bytes, limit: int) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = sorted((n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"), key=len)
        if not names:
            raise Unreadable("the ZIP holds no conversations.json")
        info = archive.getinfo(names[0])
        if info.file_size > limit:
            raise Unreadable(f"conversations.json is larger than the limit of {limit} bytes")
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise Unreadable(f"not a readable ZIP: {exc}") from None
    if len(content) > limit:
        raise Unreadable(f"conversations.json is larger than the limit of {limit} bytes")
    return content


def _time(value: object, fallback: dt.datetime) -> dt.datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 32503680000:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return fallback


def _text(message: object) -> tuple[str, str] | None:
    """(role, text) of a node's message, or None when it has no text to keep."""
    if not isinstance(message, dict):
        return None
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    if role not in ROLES:
        return None
    metadata = message.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
        return None
    content = message.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return None
    text = "\n".join(p for p in parts if isinstance(p, str))
    if not text.strip() or "\x00" in text:
        return None
    return role, text


def _conversation(item: object, index: int) -> Conversation:
    where = f"conversation {index + 1}"
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise Unreadable(f"{where}: no mapping")
    mapping: dict = item["mapping"]
    for key, node in mapping.items():
        if not isinstance(node, dict):
            raise Unreadable(f"{where}: node {key} is not an object")
        if node.get("parent") is not None and not isinstance(node.get("parent"), str):
            raise Unreadable(f"{where}: node {key} has a malformed parent")
    now = dt.datetime.now(dt.UTC)
    created = _time(item.get("create_time"), now)
    raw_id = item.get("id") or item.get("conversation_id")
    original_id = raw_id if isinstance(raw_id, str) else ""
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
    source = f"conversation:{original_id}" if original_id else f"sha256:{digest}"

    def kept_parent(key: str | None, seen: set) -> str | None:
        # the nearest ancestor with text; nodes without text are left out
        while key is not None and key in mapping and key not in seen:
            seen.add(key)
            if _text(mapping[key].get("message")) is not None:
                return key
            key = mapping[key].get("parent")
        return None

    nodes: dict[str, Node] = {}
    for key, node in mapping.items():
        found = _text(node.get("message"))
        if found is None:
            continue
        parent = kept_parent(node.get("parent"), {key})
        nodes[key] = Node(key, parent, found[0], found[1], _time(node["message"].get("create_time"), created))
    ordered = _parents_first(nodes)
    if len(ordered) < len(nodes):
        # nodes whose parents lead round in a circle reach no first message
        raise Unreadable(f"{where}: the mapping's parents form a cycle")
    current = item.get("current_node")
    shown = kept_parent(current, set()) if isinstance(current, str) else None
    given = item.get("title")
    title = given if isinstance(given, str) and given.strip() else "Imported chat"
    return Conversation(source, original_id, " ".join(title.split())[:200], created,
                        _time(item.get("update_time"), created), ordered, shown)


def _parents_first(nodes: dict[str, Node]) -> list[Node]:
    children: dict[str | None, list[Node]] = {}
    for node in nodes.values():
        children.setdefault(node.parent, []).append(node)
    ordered, level = [], sorted(children.get(None, []), key=lambda n: n.created)
    while level:
        ordered += level
        level = [c for n in level for c in sorted(children.get(n.key, []), key=lambda n: n.created)]
    return ordered


def new_ids(nodes: list[Node]) -> dict[str, uuid.UUID]:
    """Fresh ids: the same file may be imported into several accounts."""
    return {node.key: uuid.uuid4() for node in nodes}
