"""Start chatserver: `python run.py [--config FILE] [serve|migrate|user ...|reindex]`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from chatserver.accounts import CommandError, run_user_command
from chatserver.api.server import serve
from chatserver.app import create_app
from chatserver.config import DEFAULT_CONFIG, ConfigError, load_settings
from chatserver.db import create_database_if_missing, settings_dsn
from chatserver.embedded import EmbeddedServerError, embedded_postgres
from chatserver.knowledge.indexing import run_reindex_command
from chatserver.migrate import apply_migrations

SETTINGS_DOC = Path(__file__).resolve().parent / "docs" / "settings.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="chatserver: a self-hosted AI chat backend",
        epilog=f"Settings: {DEFAULT_CONFIG.name} holds every default; a .env file overrides it, and an environment "
               f"variable of the same name overrides both. Every setting, its default and its meaning: {SETTINGS_DOC}")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="settings file (default: config.toml)")
    commands = parser.add_subparsers(dest="command", metavar="{serve,migrate,user,reindex}")
    commands.add_parser("serve", help="serve the API (the default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("reindex", help="cut files into passages and embed them with the current model, then exit")
    user = commands.add_parser("user", help="manage accounts: add EMAIL [--admin], admin EMAIL, disable EMAIL, enable EMAIL, list")
    user_actions = user.add_subparsers(dest="action", required=True)
    add = user_actions.add_parser("add", help="add an account; the password is asked for, or read from "
                                              "standard input when it is not a terminal")
    add.add_argument("email")
    add.add_argument("--admin", action="store_true", help="make the account an administrator")
    user_actions.add_parser("admin", help="make an existing account an administrator").add_argument("email")
    user_actions.add_parser("disable", help="disable an account; its tokens stop working at once").add_argument(
        "email")
    user_actions.add_parser("enable", help="enable a disabled account again").add_argument("email")
    user_actions.add_parser("list", help="list the accounts")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.LOG_LEVEL.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # yoyo logs every step of every migration; chatserver.migrate sums them up in one line
    logging.getLogger("yoyo").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.command in ("migrate", "user", "reindex"):
            with contextlib.ExitStack() as stack:
                dsn = (stack.enter_context(embedded_postgres(settings.DATA_DIR, settings.DB_NAME, join_running=True))
                       if settings.embedded_postgres else settings_dsn(settings))
                if args.command == "user":
                    run_user_command(dsn, settings, args.action, getattr(args, "email", None),
                                     admin=getattr(args, "admin", False))
                    return 0
                if args.command == "reindex":
                    run_reindex_command(dsn, settings)
                    return 0
                create_database_if_missing(dsn)
                count = apply_migrations(dsn)
            print(f"{count} migration(s) applied")
            return 0
        serve(create_app(settings), settings.APP_HOST, settings.APP_PORT,
              shutdown_timeout=settings.SHUTDOWN_GRACE_SECONDS)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (CommandError, EmbeddedServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
