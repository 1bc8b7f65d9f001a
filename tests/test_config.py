"""Configuration: file, .env and environment, and clear errors for bad values."""

import subprocess
import sys

import pytest
from support.paths import TESTS_DIR

from chatserver.ai.registry import BACKENDS, chosen
from chatserver.app import create_app
from chatserver.config import DEFAULT_CONFIG, EXAMPLE_SECRETS, ConfigError, load_settings, parse_rate_limit

ROOT = TESTS_DIR.parent


def load(**environ):
    return load_settings(DEFAULT_CONFIG, environ=environ, dotenv=None)


def test_defaults_come_from_config_toml():
    settings = load()
    assert settings.APP_PORT == 8000
    assert settings.JWT_ALGORITHM == "HS256"
    assert settings.embedded_postgres and settings.embedded_redis
    assert chosen(settings).name == "builtin"


def test_environment_overrides_the_file():
    settings = load(APP_PORT="9001", DEBUG="false", JWT_SECRET="x" * 40, ALLOWED_ORIGINS="http://a.test, http://b.test")
    assert settings.APP_PORT == 9001 and settings.DEBUG is False
    assert settings.ALLOWED_ORIGINS == ("http://a.test", "http://b.test")


def test_dotenv_overrides_the_file_and_environment_overrides_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("APP_PORT=7000\nDB_HOST=db.internal\n")
    settings = load_settings(DEFAULT_CONFIG, environ={"APP_PORT": "7100"}, dotenv=env_file)
    assert settings.DB_HOST == "db.internal" and not settings.embedded_postgres
    assert settings.APP_PORT == 7100


def test_ai_backend_follows_the_configured_urls():
    assert chosen(load(AI_SERVICE_URL="http://ai.test/gen")).name == "callback"
    assert chosen(load(OPENAI_BASE_URL="http://llm.test/v1")).name == "openai"
    both = load(AI_SERVICE_URL="http://ai.test/gen", OPENAI_BASE_URL="http://llm.test/v1")
    assert chosen(both).name == "callback"
    assert chosen(both.replace(AI_BACKEND="openai")).name == "openai"


def test_the_registry_names_each_backend_once_and_ends_with_one_that_needs_nothing():
    names = [backend.name for backend in BACKENDS]
    assert len(set(names)) == len(names) and all(names)
    assert BACKENDS[-1].needs == ()  # what runs when nothing is configured


@pytest.mark.parametrize("environ, message", [
    ({"AI_BACKEND": "gpt"}, "AI_BACKEND: unknown backend 'gpt' (use callback, openai or builtin)"),
    ({"AI_BACKEND": "callback"}, "AI_SERVICE_URL: must be set when AI_BACKEND is callback"),
    ({"AI_BACKEND": "openai"}, "OPENAI_BASE_URL: must be set when AI_BACKEND is openai"),
])
def test_a_backend_that_cannot_run_stops_the_app_being_built(environ, message):
    with pytest.raises(ConfigError) as caught:
        create_app(load(**environ))
    assert str(caught.value) == message


@pytest.mark.parametrize("environ, key", [
    ({"APP_PORT": "eighty"}, "APP_PORT"),
    ({"APP_PORT": "70000"}, "APP_PORT"),
    ({"DB_PORT": "-1"}, "DB_PORT"),
    ({"DEBUG": "maybe"}, "DEBUG"),
    ({"JWT_ALGORITHM": "RS256"}, "JWT_ALGORITHM"),
    ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ({"MAX_UPLOAD_SIZE": "0"}, "MAX_UPLOAD_SIZE"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"DEBUG": "false", "JWT_SECRET": "short"}, "JWT_SECRET"),
    ({"DEBUG": "true", "JWT_SECRET": "x" * 31}, "JWT_SECRET"),
    ({"DEBUG": "true", "JWT_SECRET": "change-me-to-a-long-random-secret"}, "JWT_SECRET"),
    ({"DEBUG": "false", "JWT_SECRET": "your_super_secret_key_change_in_production"}, "JWT_SECRET"),
    ({"JWT_SECRET": "Your_Super_Secret_Key_Change_In_Production "}, "JWT_SECRET"),
    ({"REGISTRATION": "invite"}, "REGISTRATION"),
    ({"RATE_LIMIT_LOGIN": "10"}, "RATE_LIMIT_LOGIN"),
    ({"RATE_LIMIT_MESSAGES": "ten/60"}, "RATE_LIMIT_MESSAGES"),
    ({"RATE_LIMIT_UPLOADS": "5/0"}, "RATE_LIMIT_UPLOADS"),
    ({"TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "TRUSTED_PROXIES"),
    ({"QUEUE_AI_CONCURRENCY": "-1"}, "QUEUE_AI_CONCURRENCY"),
    ({"QUEUE_PREVIEW_CONCURRENCY": "0"}, "QUEUE_PREVIEW_CONCURRENCY"),
])
def test_bad_values_name_the_key(environ, key):
    with pytest.raises(ConfigError) as caught:
        load(**environ)
    assert str(caught.value).startswith(key)


def test_unknown_key_in_the_file_is_an_error(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(DEFAULT_CONFIG.read_text() + '\nAPP_PROT = 1\n')
    with pytest.raises(ConfigError, match="APP_PROT"):
        load_settings(config, environ={}, dotenv=None)


@pytest.mark.parametrize("environ, line", [
    ({"APP_PORT": "not-a-port"},
     "APP_PORT: invalid value 'not-a-port' (invalid literal for int() with base 10: 'not-a-port')"),
    # checked by the backend registry when the app is built, before anything starts
    ({"AI_BACKEND": "gpt"}, "AI_BACKEND: unknown backend 'gpt' (use callback, openai or builtin)"),
])
def test_run_py_stops_with_one_clear_line_on_a_bad_value(tmp_path, environ, line):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py")],
        env={"PATH": "/usr/bin:/bin", **environ},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"configuration error: {line}"]


def test_the_defaults_are_safe():
    settings = load()
    assert settings.JWT_SECRET == ""  # generated at first start, never a value from the docs
    assert settings.DEBUG is False
    assert settings.APP_HOST == "127.0.0.1"
    assert settings.REGISTRATION == "open"


def test_every_example_secret_is_refused_even_with_debug():
    for secret in EXAMPLE_SECRETS:
        with pytest.raises(ConfigError, match="^JWT_SECRET: this is an example value"):
            load(DEBUG="true", JWT_SECRET=secret)


def test_a_long_random_secret_and_the_rate_limit_forms_are_accepted():
    settings = load(JWT_SECRET="k" * 32, RATE_LIMIT_LOGIN="0", RATE_LIMIT_MESSAGES="5/10",
                    TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1, ::1")
    assert settings.JWT_SECRET == "k" * 32
    assert parse_rate_limit("RATE_LIMIT_LOGIN", settings.RATE_LIMIT_LOGIN) is None
    assert parse_rate_limit("RATE_LIMIT_MESSAGES", settings.RATE_LIMIT_MESSAGES) == (5, 10)
    assert settings.TRUSTED_PROXIES == ("10.0.0.0/8", "127.0.0.1", "::1")


@pytest.mark.parametrize("secret", ["your_super_secret_key_change_in_production", "too-short"])
def test_run_py_refuses_a_known_or_short_secret_in_one_line_whatever_debug_says(tmp_path, secret):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py")],
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "JWT_SECRET": secret},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: JWT_SECRET:"), result.stderr


def test_run_py_reads_another_config_file(tmp_path):
    config = tmp_path / "other.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace('JWT_ALGORITHM = "HS256"', 'JWT_ALGORITHM = "XX1"'))
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--config", str(config)], env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "JWT_ALGORITHM" in result.stderr
