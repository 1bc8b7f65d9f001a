"""Live answers, one module per job (docs/frames.md): the piece codec
(wire), the Lua scripts (scripts), the Redis state (state), writes
and checkpoints to PostgreSQL (answers), the pub/sub listener and per-process
fan-out (fanout), exact following (follow), the chat-event bus (chat_events),
live state in REST reads (reads), the daily quota counts (quotas) and their
making (lifetime).

May import `chatserver.data` and infrastructure (`appkeys`, `redis_keys`, `script_pipe`, `db`,
`config`), never `chatserver.api`. Producers (AI backends, the callback,
cancels, the sweep) write only through `Answers`; every transport
(WebSocket, server-sent events, /v1 streaming) reads answers only through
`Followers.follow` and shapes the `wire.Item`s it yields.
"""
