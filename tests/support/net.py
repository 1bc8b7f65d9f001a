"""Network helpers shared by the tests and bench/ (which puts tests/ on
sys.path to import them, as pytest does for the tests)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on right now, for a server the
    caller starts itself (another process, or one whose URL must be known first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
