"""ChatGPT's `conversations.json` layout, to and from our message trees.

A conversation is `{"id", "title", "create_time", "update_time",
"current_node", "mapping"}`; `mapping` holds every node of the tree as
`{"id", "parent", "children", "message"}`, times in Unix seconds. Our chats
may have several first messages (an edited first question), so an export
hangs them under one root node without a message, as ChatGPT's own exports do.
An answer's tool steps go before it as ChatGPT writes tool use: an assistant
node addressed to the tool (`recipient`, the arguments as `code`), then a
`tool` node with the output; an import turns such pairs back into the steps
of the answer that follows them.
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
# the most steps an imported answer keeps
MAX_STEPS = 100


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


def root_entry(first: list[tuple]) -> str:
    """The mapping's root node: no message, the chat's first messages (id,
    has steps) as children."""
    return _entry(ROOT, {"id": ROOT, "parent": None, "children": [_way_in(i, s) for i, s in first], "message": None})


def _way_in(message_id: object, with_steps: bool) -> str:
    """The node through which a message is reached: its first step's call node, if it has steps."""
    return f"{message_id}-call-0" if with_steps else str(message_id)


def message_entry(row: dict) -> str:
    """A message (id, parent_id, role, content, created_at, children,
    children_with_steps, feedback, steps) as mapping entries: its tool
    steps first (call and result nodes, ChatGPT's `tool` nodes, chained
    between its parent and itself), then the message; an answer's feedback
    goes in its message's metadata."""
    key = str(row["id"])
    parent = str(row["parent_id"]) if row["parent_id"] else ROOT
    entries = []
    for node in _step_nodes(key, row.get("steps") or [], row["created_at"]):
        node["parent"] = parent
        entries.append(node)
        parent = node["id"]
    for i, node in enumerate(entries):
        node["children"] = [entries[i + 1]["id"] if i + 1 < len(entries) else key]
    entries.append({
        "id": key,
        "parent": parent,
        "children": [_way_in(c, s) for c, s in zip(row["children"], row["children_with_steps"], strict=True)],
        "message": {"id": key, "author": {"role": row["role"]},
                    "content": {"content_type": "text", "parts": [row["content"]]},
                    "create_time": _stamp(row["created_at"]),
                    **({"metadata": {"feedback": row["feedback"]}} if row.get("feedback") else {})},
    })
    return ", ".join(_entry(node["id"], node) for node in entries)


def _entry(key: str, node: dict) -> str:
    return f"{json.dumps(key)}: {json.dumps(node, ensure_ascii=False)}"


def _step_nodes(answer: str, steps: list[dict], created: dt.datetime) -> list[dict]:
    """The call and result nodes of an answer's steps, in order, without parents or children."""
    nodes = []
    for i, step in enumerate(steps):
        meta = {"step_id": step["id"], "status": step["status"], "error": step["error"]}
        nodes.append({"id": f"{answer}-call-{i}", "message": {
            "id": f"{answer}-call-{i}", "author": {"role": "assistant"}, "recipient": step["tool"],
            "content": {"content_type": "code", "language": "json", "text": json.dumps(step["arguments"])},
            "create_time": _stamp(created), "metadata": meta}})
        nodes.append({"id": f"{answer}-tool-{i}", "message": {
            "id": f"{answer}-tool-{i}", "author": {"role": "tool", "name": step["tool"]},
            "content": {"content_type": "text", "parts": [step["output"] or step["error"] or ""]},
            "create_time": _stamp(created), "metadata": meta}})
    return nodes


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
    steps: list[dict] = dataclasses.field(default_factory=list)  # an answer's tool steps


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
    if role not in ROLES or message.get("recipient") not in (None, "all"):
        return None  # a tool's output, or a call addressed to a tool
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
        nodes[key] = Node(key, parent, found[0], found[1], _time(node["message"].get("create_time"), created),
                          _steps_before(mapping, node.get("parent"), parent) if found[0] == "assistant" else [])
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


def _steps_before(mapping: dict, key: str | None, stop: str | None) -> list[dict]:
    """The tool steps on the way up from `key` to the kept ancestor `stop`, in call order."""
    steps: list[dict] = []
    seen: set = set()
    while key is not None and key != stop and key in mapping and key not in seen and len(steps) < MAX_STEPS:
        seen.add(key)
        message = mapping[key].get("message")
        author = message.get("author") if isinstance(message, dict) else None
        if isinstance(author, dict) and author.get("role") == "tool":
            steps.append(_step(key, message, mapping.get(mapping[key].get("parent"), {}).get("message")))
        key = mapping[key].get("parent")
    return steps[::-1]


def _step(key: str, result: dict, call: object) -> dict:
    """A step from a tool node (and the call node before it, for the arguments)."""
    meta: dict = result["metadata"] if isinstance(result.get("metadata"), dict) else {}
    content: dict = result["content"] if isinstance(result.get("content"), dict) else {}
    parts: list = content["parts"] if isinstance(content.get("parts"), list) else []
    text = "\n".join(p for p in parts if isinstance(p, str))
    arguments: object = {}
    if isinstance(call, dict) and isinstance(call.get("content"), dict):
        asked = call["content"]
        raw = asked.get("text") if isinstance(asked.get("text"), str) else "".join(
            p for p in asked.get("parts") or [] if isinstance(p, str))
        try:
            arguments = json.loads(raw or "{}")
        except ValueError:
            arguments = {}
    failed = meta.get("status") == "failed"
    name = result["author"].get("name")
    return {"id": str(meta.get("step_id") or key), "tool": name if isinstance(name, str) else "tool",
            "arguments": arguments if isinstance(arguments, dict) else {}, "status": "failed" if failed else "done",
            "output": "" if failed else text,
            "error": (str(meta.get("error") or text) or "failed") if failed else None}


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
