"""Serving the app so that even what aiohttp's HTTP parser refuses (an
over-long URL or header, a NUL in a header, a malformed request line) is
answered in the one JSON error shape.

Those answers are made by aiohttp's RequestHandler.handle_error before any
middleware runs, and aiohttp offers no setting for them, so the server
builds its connections with a RequestHandler whose handle_error answers
JSON (and which lets go of the HTTP parser once a WebSocket takes the
connection over). `JsonErrorsRunner` is an AppRunner doing that; `serve` runs it until
SIGINT or SIGTERM, on uvloop: its event loop and transports, written in C,
take less CPU for every request and frame (bench/relay.py, bench/fanout.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from http import HTTPStatus

import uvloop
from aiohttp import web
from aiohttp.http_exceptions import InvalidHeader, LineTooLong
from aiohttp.web_protocol import RequestHandler

from chatserver.api.rest_errors import error_response
from chatserver.errors import of_status

log = logging.getLogger(__name__)


class _JsonErrorsHandler(RequestHandler):
    # one per connection, thousands of them idle WebSockets: no instance dict
    __slots__ = ()

    def set_parser(self, parser, data_received_cb=None) -> None:
        """After a WebSocket upgrade the HTTP parser (about 760 bytes) is not
        used again, but aiohttp keeps it until the connection ends: every use
        of it is behind `not self._upgraded` or a None check."""
        super().set_parser(parser, data_received_cb)
        if self._upgraded:
            self._parser = None

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # a client gone mid-request (mid-handshake, mid-body) is nobody's error
        if status >= 500 and not isinstance(exc, ConnectionError):
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has started; no error answer can follow")
        response = error_response(of_status(status, _refusal(status, exc)))
        response.force_close()
        return response


def _refusal(status: int, exc: BaseException | None) -> str:
    """What a refused request is told: aiohttp's own message quotes the
    request's bytes (`bytearray(b'...')`), which an answer never echoes."""
    if status != 400:
        return HTTPStatus(status).phrase.lower()
    if isinstance(exc, LineTooLong):
        return "the request line or a header is too long"
    if isinstance(exc, InvalidHeader):
        return "a header of the request is malformed"
    return "the request is malformed"


class _JsonErrorsServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorsHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorsRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # the same server, making our handler for each connection
        server.__class__ = _JsonErrorsServer
        return server


def serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float) -> None:
    async def run() -> None:
        runner = JsonErrorsRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        # what start-up built (modules, schemas, the OpenAPI document, the
        # tokenizer: about 80,000 objects) lives as long as the server; frozen,
        # the collector no longer walks it, and a full collection no longer
        # stalls every request for tens of milliseconds
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await web.TCPSite(runner, host, port).start()
            log.info("serving on http://%s:%d/", host, port)
            await stop.wait()
        finally:
            await runner.cleanup()

    uvloop.run(run())
