"""Settings: config.toml, then a `.env` file, then the real environment.

config.toml is the single place that holds defaults; every key it holds is
a field of `Settings`, named exactly like its environment variable.
AI_BACKEND and the settings a backend needs are checked by the backend
registry (chatserver/ai/registry.py) when the app is built.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from chatserver.tools.mcp_config import parse_servers

JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
# Secrets printed in documentation, ours and that of projects like ours. Anyone
# can sign tokens with them, so they are refused even when long enough.
EXAMPLE_SECRETS = frozenset({
    "change-me-to-a-long-random-secret",
    "your_super_secret_key_change_in_production",
    "your-super-secret-key-change-in-production",
    "your_secret_key_change_in_production",
    "your-secret-key-change-in-production",
    "your_secret_key_here_change_in_production",
    "your-secret-key-here-change-in-production",
    "super-secret-key-change-me-in-production",
    "change-this-to-a-long-random-secret-key",
    "replace-me-with-a-long-random-secret",
    "your-256-bit-secret-change-in-production",
    "please-change-this-secret-in-production",
    "a-string-secret-at-least-256-bits-long",
    "your-very-long-and-secure-secret-key-here",
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
})
MIN_SECRET_BYTES = 32
REGISTRATION_MODES = ("open", "closed", "oidc")
RATE_LIMITS = ("RATE_LIMIT_LOGIN", "RATE_LIMIT_LOGIN_ADDRESS", "RATE_LIMIT_REGISTER",
               "RATE_LIMIT_MESSAGES", "RATE_LIMIT_UPLOADS")


class ConfigError(Exception):
    """A setting is missing or has a value we cannot use; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Settings:
    APP_NAME: str
    APP_VERSION: str
    APP_HOST: str
    APP_PORT: int
    DEBUG: bool
    LOG_LEVEL: str
    DATA_DIR: str
    PUBLIC_BASE_URL: str

    DATABASE_URL: str
    DB_HOST: str
    DB_PORT: int
    DB_USER: str
    DB_PASSWORD: str
    DB_NAME: str
    DB_POOL_MIN: int
    DB_POOL_MAX: int
    DB_TIMEOUT_SECONDS: float

    REDIS_URL: str
    REDIS_HOST: str
    REDIS_PORT: int
    REDIS_DB: int
    REDIS_KEY_PREFIX: str

    JWT_SECRET: str
    JWT_ALGORITHM: str
    JWT_ACCESS_TOKEN_EXPIRE_MINUTES: int
    REGISTRATION: str
    OIDC_ISSUER: str
    OIDC_CLIENT_ID: str
    OIDC_CLIENT_SECRET: str
    OIDC_PROVIDER_NAME: str
    METRICS_TOKEN: str

    RATE_LIMIT_LOGIN: str
    RATE_LIMIT_LOGIN_ADDRESS: str
    RATE_LIMIT_REGISTER: str
    RATE_LIMIT_MESSAGES: str
    RATE_LIMIT_UPLOADS: str
    TRUSTED_PROXIES: tuple

    ALLOWED_ORIGINS: tuple
    MAX_REQUEST_BODY: int
    MAX_API_KEYS_PER_USER: int
    QUOTA_TOKENS_PER_DAY: int
    QUOTA_MESSAGES_PER_DAY: int
    EXPORT_CONCURRENCY: int

    QUEUE_AI_CONCURRENCY: int
    QUEUE_PREVIEW_CONCURRENCY: int
    QUEUE_IMPORT_CONCURRENCY: int
    JOB_MAX_ATTEMPTS: int
    JOB_RETRY_BASE_SECONDS: float
    JOB_LEASE_SECONDS: int
    SWEEP_INTERVAL_SECONDS: float
    SHUTDOWN_GRACE_SECONDS: float
    QUEUE_POLL_SECONDS: float
    JOB_TIMEOUT_SECONDS: float

    AI_BACKEND: str
    AI_SERVICE_URL: str
    AI_SERVICE_API_KEY: str
    AI_SERVICE_TIMEOUT_SECONDS: float
    OPENAI_BASE_URL: str
    OPENAI_API_KEY: str
    OPENAI_MODEL: str
    OPENAI_MODELS: tuple
    OPENAI_CHAT_URL: str
    OPENAI_HEADERS: str
    OPENAI_MODELS_CACHE_SECONDS: float
    DEFAULT_SYSTEM_PROMPT: str
    AI_CONTEXT_TOKENS: int
    STREAM_TIMEOUT_SECONDS: float
    STREAM_CHECKPOINT_SECONDS: float
    MAX_ANSWER_BYTES: int
    HISTORY_CHAR_BUDGET: int
    FILE_CONTEXT_CHAR_BUDGET: int
    FILE_WAIT_SECONDS: float
    WS_HEARTBEAT_SECONDS: float
    SSE_KEEPALIVE_SECONDS: float
    TOOL_MAX_STEPS: int
    TOOL_TIMEOUT_SECONDS: float
    TOOL_OUTPUT_MAX_CHARS: int
    MCP_SERVERS: str

    UPLOAD_DIR: str
    MAX_UPLOAD_SIZE: int
    PREVIEW_SERVICE_URL: str
    PREVIEW_SERVICE_API_KEY: str
    PREVIEW_SERVICE_TIMEOUT_SECONDS: float
    PREVIEW_TIMEOUT_SECONDS: float
    PREVIEW_MEMORY_MB: int
    TEXT_EXTRACT_CHAR_BUDGET: int
    PREVIEW_SERVICE_MAX_ANSWER_BYTES: int
    PREVIEW_RETRY_ROUNDS: int
    UPLOAD_ORPHAN_AGE_SECONDS: float
    FILES_HOUSEKEEPING_INTERVAL_SECONDS: float

    EMBEDDINGS_BASE_URL: str
    EMBEDDINGS_MODEL: str
    EMBEDDINGS_API_KEY: str
    EMBEDDINGS_BUILTIN: bool
    EMBEDDINGS_BATCH_SIZE: int
    KNOWLEDGE_PASSAGES: int
    MODEL_CAPABILITIES: str
    IMAGE_MAX_PIXELS: int

    @property
    def embedded_postgres(self) -> bool:
        return not (self.DATABASE_URL or self.DB_HOST)

    @property
    def embedded_redis(self) -> bool:
        return not (self.REDIS_URL or self.REDIS_HOST)

    @property
    def external_redis_url(self) -> str:
        """The configured Redis server's URL (not an embedded one's)."""
        return self.REDIS_URL or f"redis://{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"

    @property
    def openai_headers(self) -> dict[str, str]:
        """OPENAI_HEADERS parsed (validated at load)."""
        return json.loads(self.OPENAI_HEADERS) if self.OPENAI_HEADERS.strip() else {}

    @property
    def model_capabilities(self) -> dict[str, dict]:
        """MODEL_CAPABILITIES parsed (validated at load)."""
        return json.loads(self.MODEL_CAPABILITIES) if self.MODEL_CAPABILITIES.strip() else {}

    def replace(self, **changes: Any) -> Settings:
        return load_settings(None, environ={}, base=self, overrides=changes)


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


def _convert(key: str, raw: Any) -> Any:
    kind = FIELDS[key].type
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(str(raw).strip())
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return float(str(raw).strip())
        if kind == "tuple":
            items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if isinstance(raw, (dict, list)):
            raise ValueError("expected a string")
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}: invalid value {raw!r} ({exc})") from None


def _validate(s: Settings) -> None:
    for key in ("APP_PORT", "DB_PORT", "REDIS_PORT"):
        if not 0 < getattr(s, key) < 65536:
            raise ConfigError(f"{key}: {getattr(s, key)} is not a port number (1..65535)")
    positive = (
        "JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "MAX_UPLOAD_SIZE", "MAX_REQUEST_BODY", "MAX_API_KEYS_PER_USER",
        "EXPORT_CONCURRENCY",
        "QUEUE_PREVIEW_CONCURRENCY", "QUEUE_IMPORT_CONCURRENCY", "JOB_MAX_ATTEMPTS",
        "JOB_LEASE_SECONDS", "SWEEP_INTERVAL_SECONDS", "QUEUE_POLL_SECONDS", "STREAM_TIMEOUT_SECONDS",
        "DB_POOL_MAX", "MAX_ANSWER_BYTES", "HISTORY_CHAR_BUDGET", "AI_CONTEXT_TOKENS", "FILE_CONTEXT_CHAR_BUDGET",
        "TEXT_EXTRACT_CHAR_BUDGET", "WS_HEARTBEAT_SECONDS", "SSE_KEEPALIVE_SECONDS",
        "PREVIEW_SERVICE_MAX_ANSWER_BYTES", "UPLOAD_ORPHAN_AGE_SECONDS", "FILES_HOUSEKEEPING_INTERVAL_SECONDS",
        "JOB_TIMEOUT_SECONDS", "PREVIEW_TIMEOUT_SECONDS", "DB_TIMEOUT_SECONDS", "EMBEDDINGS_BATCH_SIZE",
        "KNOWLEDGE_PASSAGES", "IMAGE_MAX_PIXELS", "TOOL_MAX_STEPS", "TOOL_TIMEOUT_SECONDS", "TOOL_OUTPUT_MAX_CHARS",
    )
    for key in positive:
        if getattr(s, key) <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {getattr(s, key)}")
    for key in ("QUOTA_TOKENS_PER_DAY", "QUOTA_MESSAGES_PER_DAY"):
        if getattr(s, key) < 0:
            raise ConfigError(f"{key}: must be 0 (no limit) or more, got {getattr(s, key)}")
    if s.QUEUE_AI_CONCURRENCY < 0:
        raise ConfigError(f"QUEUE_AI_CONCURRENCY: must be 0 (the AI backend's own limit) or more, "
                          f"got {s.QUEUE_AI_CONCURRENCY}")
    if s.PREVIEW_MEMORY_MB < 64:
        raise ConfigError(f"PREVIEW_MEMORY_MB: must be at least 64 (MB), got {s.PREVIEW_MEMORY_MB}")
    if s.PREVIEW_RETRY_ROUNDS < 0:
        raise ConfigError(f"PREVIEW_RETRY_ROUNDS: must be 0 or more, got {s.PREVIEW_RETRY_ROUNDS}")
    if s.REDIS_DB < 0:
        raise ConfigError(f"REDIS_DB: must be 0 or more, got {s.REDIS_DB}")
    if s.JWT_ALGORITHM not in JWT_ALGORITHMS:
        raise ConfigError(
            f"JWT_ALGORITHM: unknown algorithm {s.JWT_ALGORITHM!r} (use one of {', '.join(JWT_ALGORITHMS)})"
        )
    _validate_secret(s.JWT_SECRET)
    if s.REGISTRATION not in REGISTRATION_MODES:
        raise ConfigError(f"REGISTRATION: unknown mode {s.REGISTRATION!r} (use open, closed or oidc)")
    oidc = [key for key in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET") if getattr(s, key)]
    if oidc and len(oidc) < 3:
        raise ConfigError("OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET: set all three, or none")
    if s.REGISTRATION == "oidc" and not oidc:
        raise ConfigError("REGISTRATION: oidc needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    for key in RATE_LIMITS:
        parse_rate_limit(key, getattr(s, key))
    for entry in s.TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
    _validate_headers(s.OPENAI_HEADERS)
    _validate_capabilities(s.MODEL_CAPABILITIES)
    _validate_mcp_servers(s.MCP_SERVERS)
    if s.LOG_LEVEL.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL: unknown level {s.LOG_LEVEL!r}")


def _validate_secret(secret: str) -> None:
    """Empty means "generate one and keep it in the database" (see chatserver/secret.py).
    DEBUG relaxes nothing here: a development server reachable from a network
    is as open as a production one."""
    if not secret:
        return
    if secret.strip().lower() in EXAMPLE_SECRETS:
        raise ConfigError("JWT_SECRET: this is an example value from documentation, known to anyone; "
                          "set a long random secret or leave it empty to have one generated")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes long "
                          "(or empty to have one generated)")


def parse_rate_limit(key: str, value: str) -> tuple[int, int] | None:
    """`"<count>/<seconds>"` as (count, seconds); `"0"` (off) as None."""
    text = value.strip()
    if text == "0":
        return None
    count, slash, seconds = text.partition("/")
    try:
        parsed = int(count), int(seconds)
    except ValueError:
        parsed = None
    if not slash or parsed is None or parsed[0] <= 0 or parsed[1] <= 0:
        raise ConfigError(f"{key}: invalid value {value!r} "
                          "(use \"<count>/<seconds>\", e.g. \"10/300\", or \"0\" for off)")
    return parsed


def _validate_mcp_servers(raw: str) -> None:
    try:
        parse_servers(raw)
    except ValueError as exc:
        raise ConfigError(f"MCP_SERVERS: {exc}") from None


def _validate_headers(raw: str) -> None:
    if not raw.strip():
        return
    try:
        headers = json.loads(raw)
    except ValueError:
        raise ConfigError("OPENAI_HEADERS: not valid JSON (expected an object of header names to values)") from None
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in headers.items()):
        raise ConfigError("OPENAI_HEADERS: expected a JSON object of header names to string values")


CAPABILITY_TYPES = {"vision": bool, "tools": bool, "context_tokens": int}


def _validate_capabilities(raw: str) -> None:
    if not raw.strip():
        return
    problem = "expected a JSON object of model ids to objects of vision, tools (true or false) and context_tokens"
    try:
        found = json.loads(raw)
    except ValueError:
        raise ConfigError(f"MODEL_CAPABILITIES: not valid JSON ({problem})") from None
    def valid(entry: object) -> bool:
        return isinstance(entry, dict) and all(
            k in CAPABILITY_TYPES and isinstance(v, CAPABILITY_TYPES[k]) for k, v in entry.items())

    if not isinstance(found, dict) or not all(valid(entry) for entry in found.values()):
        raise ConfigError(f"MODEL_CAPABILITIES: {problem}")


def load_settings(
    path: str | Path | None = DEFAULT_CONFIG,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv: str | Path | None = ".env",
    base: Settings | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read settings; later sources win: file, `.env`, environment, overrides."""
    values: dict[str, Any] = dataclasses.asdict(base) if base else {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                values.update(tomllib.load(fh))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting in {path}")
    if dotenv is not None and Path(dotenv).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if k in FIELDS and v is not None})
    env = os.environ if environ is None else environ
    values.update({k: v for k, v in env.items() if k in FIELDS})
    values.update(overrides or {})
    missing = sorted(set(FIELDS) - set(values))
    if missing:
        raise ConfigError(f"{missing[0]}: missing setting (add it to {path or 'the config file'})")
    settings = Settings(**{key: _convert(key, values[key]) for key in FIELDS})
    _validate(settings)
    return settings
