"""Any OpenAI-compatible `/chat/completions` server (OpenAI, Ollama, llama.cpp,
vLLM), streamed: every server-sent delta goes out as soon as it arrives."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from chatserver.ai.base import BackendFailed, BackendRejected, BackendUnavailable, Write
from chatserver.ai.context import Context

SYSTEM_PROMPT = "You are a helpful assistant. Answer in the language of the user's message."


def chat_messages(context: Context) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, *context.history]
    if context.files:
        parts = ["The user attached these files to the message:"]
        for f in context.files:
            parts.append(f"--- file: {f['name']} ---")
            parts.append(f["content"] if not f.get("note") else f"({f['note']})")
        messages.append({"role": "system", "content": "\n".join(parts)})
    messages.append({"role": "user", "content": context.message})
    return messages


def _delta_text(line: bytes) -> str | None:
    """The text of one `data:` line; None at `[DONE]`."""
    data = line[len(b"data:"):].strip()
    if data == b"[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        raise BackendFailed("the model server sent a malformed event") from None
    if not isinstance(event, dict):
        raise BackendFailed("the model server sent a malformed event")
    if event.get("error"):
        error = event["error"]
        raise BackendFailed(str(error.get("message", error) if isinstance(error, dict) else error))
    text = ""
    for choice in event.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            text += delta["content"]
    return text


class OpenAIBackend:
    remote = False

    def __init__(self, settings, session: aiohttp.ClientSession):
        self.settings = settings
        self.session = session

    async def generate(self, context: Context, write: Write) -> list[dict]:
        s = self.settings
        headers = {"Authorization": f"Bearer {s.OPENAI_API_KEY}"} if s.OPENAI_API_KEY else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.AI_SERVICE_TIMEOUT_SECONDS,
                                        sock_read=s.STREAM_TIMEOUT_SECONDS)
        body = {"model": s.OPENAI_MODEL, "messages": chat_messages(context), "stream": True}
        try:
            async with self.session.post(s.OPENAI_BASE_URL.rstrip("/") + "/chat/completions",
                                         json=body, headers=headers, timeout=timeout) as resp:
                if 400 <= resp.status < 500:
                    raise BackendRejected(f"the model server refused the request (HTTP {resp.status})")
                if resp.status != 200:
                    raise BackendUnavailable(f"the model server failed (HTTP {resp.status})")
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    text = _delta_text(line)
                    if text is None:
                        return []
                    if text:
                        await write(text)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BackendUnavailable(f"the model server is unreachable: {exc.__class__.__name__}") from exc
        return []  # some servers end a clean stream without [DONE]
