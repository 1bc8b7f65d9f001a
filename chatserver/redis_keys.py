"""Every Redis key and pub/sub channel name, in one place.

All of them start with the configured prefix, so several deployments (or
test runs) can share one Redis without touching each other's data.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Keys:
    prefix: str

    def _k(self, *parts: object) -> str:
        return ":".join((self.prefix, *map(str, parts)))

    # job queue
    def queue(self, name: str) -> str:
        """Jobs waiting to run (a list; LPUSH in, BLMOVE out)."""
        return self._k("queue", name)

    def active(self, name: str, instance: str) -> str:
        """Jobs one process has taken and not yet finished."""
        return self._k("active", name, instance)

    @property
    def delayed(self) -> str:
        """Jobs waiting for a retry (sorted set scored by due time)."""
        return self._k("delayed")

    @property
    def dead(self) -> str:
        """Jobs that failed every attempt (a list, newest first)."""
        return self._k("dead")

    @property
    def instances(self) -> str:
        """Ids of processes that may hold active jobs."""
        return self._k("instances")

    def heartbeat(self, instance: str) -> str:
        """Exists while the process is alive (expires after the lease)."""
        return self._k("heartbeat", instance)

    def lock(self, name: str) -> str:
        """A periodic task's once-per-interval lock."""
        return self._k("lock", name)

    # rate limits
    @property
    def rate_limits(self) -> str:
        """Prefix of the rate-limit windows; the `limits` library appends the rest."""
        return self._k("ratelimit")

    # logout
    def revoked_token(self, token_id: object) -> str:
        """Present while a logged-out token would still be valid (it expires with the token)."""
        return self._k("revoked-token", token_id)

    def oidc_login(self, state: str) -> str:
        """A single sign-on begun and not finished yet: its nonce and PKCE verifier, by its `state`."""
        return self._k("oidc-login", state)

    # quotas
    def quota(self, user_id: object, day: str, what: str) -> str:
        """A user's count of `what` (tokens, messages) on one UTC day; the braces keep one user's day in one slot."""
        return self._k("quota", f"{{{user_id}:{day}}}", what)

    # live streams
    def stream(self, message_id: object) -> str:
        """Live state of an answer (hash: state, next seq, piece count, final event, ...)."""
        return self._k("stream", message_id)

    def stream_content(self, message_id: object) -> str:
        """The text of a live answer so far (a string grown with APPEND)."""
        return self._k("stream", message_id, "content")

    def stream_reasoning(self, message_id: object) -> str:
        """A live answer's reasoning text so far (a model's thinking, kept apart from its content)."""
        return self._k("stream", message_id, "reasoning")

    def stream_steps(self, message_id: object) -> str:
        """A live answer's tool steps, each's latest JSON by its id (hash)."""
        return self._k("stream", message_id, "steps")

    def stream_step_order(self, message_id: object) -> str:
        """The ids of a live answer's tool steps in call order (list)."""
        return self._k("stream", message_id, "step_order")

    def stream_pending(self, message_id: object) -> str:
        """Callback events that arrived ahead of their turn (hash seq -> event)."""
        return self._k("stream", message_id, "pending")

    def stream_watchers(self, message_id: object) -> str:
        """The processes that followed a live answer (set of instance ids): the pieces a
        process makes are published only when another process may be following."""
        return self._k("stream", message_id, "watchers")

    @property
    def streams_active(self) -> str:
        """Live answers scored by their last activity (the stream-timeout sweep reads it)."""
        return self._k("streams", "active")

    def chat_channel(self, chat_id: object) -> str:
        """Pub/sub channel carrying one chat's stream events to every process."""
        return self._k("chat", chat_id)

    def user_channel(self, user_id: object) -> str:
        """Pub/sub channel of one user's chat-list events (chats and folders);
        named under the chat pattern, so the listener every process has hears it."""
        return self._k("chat", "user", user_id)

    @property
    def chat_channel_pattern(self) -> str:
        return self._k("chat", "*")

    @property
    def revocations(self) -> str:
        """Pub/sub channel of disabled users and deleted API keys (`user:<id>`, `key:<id>`)."""
        return self._k("revocations")
