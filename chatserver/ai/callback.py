"""The external AI service: one POST per answer; the text then arrives
through the callback endpoint, at a URL whose token is an HMAC of the
message id under a key derived from JWT_SECRET, so it cannot be forged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import aiohttp

from chatserver.ai.base import Backend, BackendRejected, BackendUnavailable, Write, describe, error_text, origin
from chatserver.ai.context import Context
from chatserver.config import Settings
from chatserver.secret import derived_key


def _key(settings) -> bytes:
    return derived_key(settings, "AI callback tokens")


def callback_token(settings, message_id: uuid.UUID) -> str:
    digest = hmac.new(_key(settings), str(message_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def callback_url(settings, message_id: uuid.UUID) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/") or f"http://127.0.0.1:{settings.APP_PORT}"
    return f"{base}/api/ai/callback/{message_id}?token={callback_token(settings, message_id)}"


class CallbackBackend(Backend):
    """Offers OPENAI_MODEL and OPENAI_MODELS and passes the chosen id on; the
    service gets history and files cut by characters."""

    name = "callback"
    needs = ("AI_SERVICE_URL",)
    remote = True
    answers_at_once = 256

    @classmethod
    def startup_line(cls, settings: Settings) -> str:
        return f"the AI service at {origin(settings.AI_SERVICE_URL)}"

    async def models(self) -> list[str]:
        return [self.settings.OPENAI_MODEL, *self.settings.OPENAI_MODELS]

    def default_model(self) -> str:
        return self.settings.OPENAI_MODEL

    def token_budget(self) -> None:
        return None

    def request_body(self, context: Context) -> dict:
        return {
            "message": context.message,
            "conversation_history": context.history,
            "callback_url": callback_url(self.settings, context.message_id),
            "message_id": str(context.message_id),
            "chat_id": str(context.chat_id),
            "files": context.files,
            "passages": context.passages,
            "images": context.image_urls,
            "model": context.model,
            "system_prompt": context.system_prompt,
            "temperature": context.temperature,
            "max_tokens": context.max_tokens,
            **context.options,
        }

    async def generate(self, context: Context, write: Write) -> None:
        settings = self.settings
        try:
            async with self.session.post(
                settings.AI_SERVICE_URL,
                json=self.request_body(context),
                headers={"Authorization": f"Bearer {settings.AI_SERVICE_API_KEY}"},
                timeout=aiohttp.ClientTimeout(total=settings.AI_SERVICE_TIMEOUT_SECONDS),
            ) as resp:
                if 200 <= resp.status < 300:
                    return
                failure = f"the AI service answered {await error_text(resp)}"
                if 400 <= resp.status < 500:
                    raise BackendRejected(failure)
                raise BackendUnavailable(failure)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(describe(exc, "the AI service")) from exc
