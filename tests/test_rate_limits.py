"""Rate limits (docs/limits.md, "Rate limits"): in Redis across processes, `429
rate_limited` with Retry-After, per client address (TRUSTED_PROXIES) or user,
documented in /openapi.json and counted in /metrics."""

from __future__ import annotations

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.uploads import upload

WRONG = "wrong password"


async def login(client, email: str, password: str = WRONG, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/api/auth/login", json={"email": email, "password": password}, headers=headers)


def assert_rate_limited(resp, body: dict, window: int) -> None:
    assert resp.status == 429
    assert_error(body, "rate_limited")
    assert 1 <= int(resp.headers["Retry-After"]) <= window


async def test_the_login_limit_stops_a_guessing_loop_while_other_emails_still_log_in(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="3/300", start_workers=False)
    victim, bystander = await register(client), await register(client)
    statuses = [(await login(client, victim.email)).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    guess = await login(client, victim.email)
    assert_rate_limited(guess, await guess.json(), 300)
    right = await login(client, victim.email, victim.password)  # even the right password waits
    assert_rate_limited(right, await right.json(), 300)
    assert (await login(client, bystander.email, bystander.password)).status == 200
    assert (await login(client, bystander.email)).status == 401


async def test_successful_logins_are_not_counted(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="2/300", RATE_LIMIT_LOGIN_ADDRESS="2/300", start_workers=False)
    account = await register(client)
    assert [(await login(client, account.email, account.password)).status for _ in range(5)] == [200] * 5


async def test_the_address_limit_counts_failures_over_every_email(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="0", RATE_LIMIT_LOGIN_ADDRESS="3/3600", start_workers=False)
    for n in range(3):
        assert (await login(client, f"guess-{n}@example.com")).status == 401
    resp = await login(client, "guess-3@example.com")
    assert_rate_limited(resp, await resp.json(), 3600)


async def test_limits_hold_across_processes_sharing_redis(make_client):
    first = await make_client(RATE_LIMIT_LOGIN="2/300", start_workers=False)
    second = await make_client(RATE_LIMIT_LOGIN="2/300", start_workers=False)
    account = await register(first)
    assert (await login(first, account.email)).status == 401
    assert (await login(second, account.email)).status == 401
    assert (await login(first, account.email)).status == 429
    assert (await login(second, account.email)).status == 429


async def test_zero_turns_a_limit_off(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="0", RATE_LIMIT_LOGIN_ADDRESS="0", start_workers=False)
    account = await register(client)
    assert {(await login(client, account.email)).status for _ in range(15)} == {401}


async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="0", RATE_LIMIT_LOGIN_ADDRESS="2/300", start_workers=False)
    assert (await login(client, "a@example.com", forwarded_for="203.0.113.1")).status == 401
    assert (await login(client, "a@example.com", forwarded_for="203.0.113.2")).status == 401
    assert (await login(client, "a@example.com", forwarded_for="203.0.113.3")).status == 429


async def test_behind_trusted_proxies_the_right_most_untrusted_address_counts(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="0", RATE_LIMIT_LOGIN_ADDRESS="2/300",
                               TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8", start_workers=False)
    # the client may write anything on the left; the proxies append the real address on the right
    for claimed in ("198.51.100.7", "198.51.100.8"):
        assert (await login(client, "a@example.com", forwarded_for=f"{claimed}, 203.0.113.9, 10.1.2.3")).status == 401
    blocked = await login(client, "a@example.com", forwarded_for="198.51.100.99, 203.0.113.9, 10.1.2.3")
    assert blocked.status == 429
    assert (await login(client, "a@example.com", forwarded_for="203.0.113.10")).status == 401


async def test_the_register_limit_counts_registrations_per_address(make_client):
    client = await make_client(RATE_LIMIT_REGISTER="2/3600", start_workers=False)
    await register(client)
    await register(client)
    resp = await client.post("/api/auth/register", json={"email": "third@example.com", "password": "long enough"})
    assert_rate_limited(resp, await resp.json(), 3600)


async def test_the_message_limit_counts_posts_and_regenerations_per_user(make_client):
    client = await make_client(RATE_LIMIT_MESSAGES="2/60")
    account, other = await register(client), await register(client)
    chat = await create_chat(client, account)
    path = f"/api/chats/{chat['id']}/messages"
    posted = await client.post(path, json={"content": "Hello"}, headers=account.headers)
    assert posted.status == 201
    answer = (await posted.json())["assistant_message"]
    regenerated = await client.post(f"/api/messages/{answer['id']}/regenerate", headers=account.headers)
    assert regenerated.status == 201
    refused = await client.post(path, json={"content": "Again"}, headers=account.headers)
    assert_rate_limited(refused, await refused.json(), 60)
    listed = await client.get(path, headers=account.headers)
    assert "Again" not in [m["content"] for m in (await listed.json())["items"]]
    other_chat = await create_chat(client, other)
    resp = await client.post(f"/api/chats/{other_chat['id']}/messages", json={"content": "Hi"}, headers=other.headers)
    assert resp.status == 201


async def test_the_upload_limit_counts_uploads_per_user(make_client):
    client = await make_client(RATE_LIMIT_UPLOADS="1/60", start_workers=False)
    account = await register(client)
    assert (await upload(client, account, b"first")).status == 201
    refused = await upload(client, account, b"second")
    assert_rate_limited(refused, await refused.json(), 60)
    listed = await (await client.get("/api/files", headers=account.headers)).json()
    assert len(listed["items"]) == 1


async def test_refusals_are_counted_in_metrics(make_client):
    client = await make_client(RATE_LIMIT_LOGIN="1/300", start_workers=False)
    await login(client, "counted@example.com")
    await login(client, "counted@example.com")
    text = await (await client.get("/metrics")).text()
    assert 'rate_limited_total{limit="login"} 1.0' in text


@pytest.mark.parametrize("method, path", [
    ("post", "/api/auth/login"),
    ("post", "/api/auth/register"),
    ("post", "/api/chats/{chat_id}/messages"),
    ("post", "/api/messages/{message_id}/regenerate"),
    ("post", "/api/files"),
])
async def test_openapi_documents_the_429_with_retry_after(client, method, path):
    spec = await (await client.get("/openapi.json")).json()
    answer = spec["paths"][path][method]["responses"]["429"]
    assert "Retry-After" in answer["headers"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
