"""Start chatserver: `python run.py [--config FILE] [serve|migrate]`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from chatserver.api.server import serve
from chatserver.app import create_app
from chatserver.config import DEFAULT_CONFIG, ConfigError, load_settings
from chatserver.db import settings_dsn
from chatserver.embedded import embedded_postgres
from chatserver.migrate import apply_migrations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chatserver: a self-hosted AI chat backend")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="settings file (default: config.toml)")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                        help="serve (default) or apply database migrations and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.LOG_LEVEL.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "migrate":
        with contextlib.ExitStack() as stack:
            dsn = (stack.enter_context(embedded_postgres(settings.DATA_DIR, settings.DB_NAME))
                   if settings.embedded_postgres else settings_dsn(settings))
            count = apply_migrations(dsn)
        print(f"{count} migration(s) applied")
        return 0
    serve(create_app(settings), settings.APP_HOST, settings.APP_PORT, shutdown_timeout=settings.SHUTDOWN_GRACE_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
