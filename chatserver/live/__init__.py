"""Live answers: their state in Redis, the one wire format of published
pieces, the per-process fan-out and `follow(message_id)`.

May import `chatserver.data` and infrastructure (`appkeys`, `redis_keys`, `db`,
`config`), never `chatserver.api`. AI backends reach the live layer only
through `Streams.append`/`finish`; every transport (WebSocket, server-sent
events, /v1 streaming) reads answers only through `Streams.follow`.
"""
