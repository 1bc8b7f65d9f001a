"""Accounts and tokens (docs/rest.md, "Authentication")."""

import datetime as dt
import logging

import jwt
import pytest
from support.accounts import register
from support.error_shape import assert_error


async def test_register_returns_user_and_bearer_token(client):
    resp = await client.post("/api/auth/register",
                             json={"email": "Ada@Example.com", "password": "long enough", "display_name": "Ada"})
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"user", "access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1440 * 60
    assert set(body["user"]) == {"id", "email", "display_name", "created_at", "role"}
    assert body["user"]["display_name"] == "Ada"


async def test_password_is_stored_only_as_argon2_hash(client, user):
    from support.served_app import db_of
    row = await db_of(client).fetchrow("SELECT password_hash FROM users WHERE id = %s", (user.id,))
    assert row["password_hash"].startswith("$argon2")
    assert user.password not in row["password_hash"]


async def test_email_is_case_insensitive_and_unique(client):
    await register(client, email="dup@example.com")
    resp = await client.post("/api/auth/register", json={"email": "DUP@example.com", "password": "password2"})
    assert resp.status == 409
    assert_error(await resp.json(), "email_taken")


@pytest.mark.parametrize("body", [
    {"email": "x@example.com", "password": "short"},
    {"email": "x@example.com", "password": "p" * 1025},
    {"email": "not-an-email", "password": "password1"},
    {"email": "x@example.com"},
    {"password": "password1"},
    {"email": 42, "password": "password1"},
    {"email": "x@example.com", "password": 12345678},
    {"email": "x@example.com", "password": "password1", "display_name": ["list"]},
])
async def test_register_rejects_invalid_input(client, body):
    resp = await client.post("/api/auth/register", json=body)
    assert resp.status == 422
    body = await resp.json()
    assert_error(body, "validation_error")
    assert body["details"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
async def test_register_rejects_malformed_json(client, raw):
    resp = await client.post("/api/auth/register", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_json")


async def test_password_of_1024_characters_is_accepted(client):
    resp = await client.post("/api/auth/register", json={"email": "long@example.com", "password": "p" * 1024})
    assert resp.status == 201


async def test_login_with_json(client, user):
    resp = await client.post("/api/auth/login", json={"email": user.email.upper(), "password": user.password})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["id"] == user.id and body["token_type"] == "bearer"


async def test_login_with_oauth2_form(client, user):
    resp = await client.post("/api/auth/login", data={"username": user.email, "password": user.password})
    assert resp.status == 200
    assert (await resp.json())["user"]["email"] == user.email


async def test_wrong_password_and_unknown_email_give_the_same_401(client, user):
    wrong = await client.post("/api/auth/login", json={"email": user.email, "password": "wrong password"})
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "wrong password"})
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


async def test_login_form_missing_password_is_422(client, user):
    resp = await client.post("/api/auth/login", data={"username": user.email})
    assert resp.status == 422
    assert_error(await resp.json(), "validation_error")


async def test_me_returns_the_user_without_password(client, user):
    resp = await client.get("/api/users/me", headers=user.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == user.id and body["email"] == user.email
    assert "password" not in str(body)


def _token(settings, **claims):
    now = dt.datetime.now(dt.UTC)
    base = {"sub": "00000000-0000-0000-0000-000000000000", "iat": now, "exp": now + dt.timedelta(minutes=5)}
    base.update(claims)
    return jwt.encode(base, settings.JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize("header", [
    None,
    "Bearer",
    "Bearer not.a.token",
    "Basic dXNlcjpwYXNz",
    "Bearer a b c",
    "",
])
async def test_missing_or_malformed_tokens_are_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    resp = await client.get("/api/users/me", headers=headers)
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_expired_token_is_401(client, settings, user):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token = _token(settings, sub=user.id, iat=past, exp=past + dt.timedelta(minutes=1))
    resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_token_signed_with_another_secret_is_401(client, user):
    token = jwt.encode({"sub": user.id}, "some-other-secret-of-enough-length!!", algorithm="HS256")
    resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401


async def test_token_without_a_uuid_subject_is_401(client, settings):
    resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {_token(settings, sub='admin')}"})
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_token_of_a_deleted_account_is_401(client, settings):
    resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {_token(settings)}"})
    assert resp.status == 401


async def test_rejected_tokens_do_not_log_tracebacks(client, caplog):
    with caplog.at_level(logging.DEBUG):
        await client.get("/api/users/me", headers={"Authorization": "Bearer not.a.token"})
    assert not [r for r in caplog.records if r.exc_info]
