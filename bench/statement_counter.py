"""A TCP proxy in front of PostgreSQL that counts the statements going through.

psycopg2 (under aiopg) sends every statement, BEGIN and COMMIT included, as
one simple-protocol Query message: counting those counts what the server
asked of PostgreSQL. The proxy turns down TLS and GSS encryption itself (so
that it can read the messages) and passes everything else through unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import re
import struct

# the untyped requests a client may send before its startup message
_ENCRYPTION_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest
_SPACE = re.compile(r"\s+")
_LITERAL = re.compile(r"'(?:[^']|'')*'(?:::[a-z]+(?:\[\])?)?|\b\d+(?:\.\d+)?\b")


def shape(statement: str) -> str:
    """A statement's first words, its literals as `?`: enough to tell one from another in a list."""
    return _SPACE.sub(" ", _LITERAL.sub("?", statement)).strip()[:100]


class StatementCounter:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.statements: collections.Counter[str] = collections.Counter()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; that port."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def total(self) -> int:
        return sum(self.statements.values())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            await self._forward(reader, writer, up_writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            up_writer.close()
            await asyncio.gather(back, return_exceptions=True)
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       up_writer: asyncio.StreamWriter) -> None:
        while True:  # the startup phase: untyped messages
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            if code in _ENCRYPTION_REQUESTS:
                writer.write(b"N")
                continue
            up_writer.write(head + await reader.readexactly(length - 8))
            break
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(struct.unpack("!i", head[1:])[0] - 4)
            if head[:1] == b"Q":
                self.statements[shape(body.rstrip(b"\0").decode(errors="replace"))] += 1
            up_writer.write(head + body)
            await up_writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
