"""Single sign-on with OpenID Connect, against a real OpenID provider
running in the test (oidc-provider-mock): the code flow with PKCE, state and
nonce; accounts matched by subject, then by verified email, else made; and
what must be refused."""

from __future__ import annotations

import time
import urllib.parse
import uuid
import warnings

import aiohttp
import pytest
from support.accounts import register
from support.error_shape import assert_error
from support.oidc_issuer import OidcIssuer
from support.served_app import db_of

# the provider (not chatserver) still calls Authlib's deprecated server API, in its own thread
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


@pytest.fixture(scope="module")
def provider():
    with warnings.catch_warnings():
        # the provider (not chatserver) still imports Authlib's deprecated authlib.jose
        warnings.simplefilter("ignore", DeprecationWarning)
        from oidc_provider_mock import run_server_in_thread
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
async def sso(make_client, provider):
    async def make(**settings):
        return await make_client(OIDC_ISSUER=provider, OIDC_CLIENT_ID="chatserver", OIDC_CLIENT_SECRET="s3cret",
                                 start_workers=False, **settings)
    return make


async def begin(client) -> str:
    """The provider's authorization URL the login redirects to."""
    resp = await client.get("/api/auth/oidc/login", allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"]


async def at_provider(provider, authorize_url: str, sub: str, claims: dict) -> str:
    """Sign `sub` in at the provider; the callback URL it sends the browser back to."""
    async with aiohttp.ClientSession() as session:
        resp = await session.put(f"{provider}/users/{sub}", json=claims)
        assert resp.status == 204, await resp.text()
        resp = await session.post(authorize_url, data={"sub": sub}, allow_redirects=False)
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]


async def come_back(client, callback_url: str) -> aiohttp.ClientResponse:
    parsed = urllib.parse.urlsplit(callback_url)
    return await client.get(f"{parsed.path}?{parsed.query}", allow_redirects=False)


def signed_in(resp) -> dict:
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith("/#")
    fragment = dict(urllib.parse.parse_qsl(location[2:]))
    assert fragment["token_type"] == "bearer" and int(fragment["expires_in"]) > 0
    return {"Authorization": f"Bearer {fragment['access_token']}"}


async def sign_in(client, provider, sub, claims) -> aiohttp.ClientResponse:
    return await come_back(client, await at_provider(provider, await begin(client), sub, claims))


def fresh_email() -> str:
    return f"sso-{uuid.uuid4().hex[:10]}@example.com"


async def test_login_redirects_with_pkce_state_and_nonce(sso):
    client = await sso()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(await begin(client)).query))
    assert query["response_type"] == "code" and query["client_id"] == "chatserver"
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["state"] and query["nonce"] and "openid" in query["scope"].split()
    assert query["redirect_uri"].endswith("/api/auth/oidc/callback")


async def test_a_new_person_gets_an_account_and_signs_in_again_by_subject(sso, provider):
    client = await sso()
    sub, email = uuid.uuid4().hex, fresh_email()
    headers = signed_in(await sign_in(client, provider, sub, {"email": email, "email_verified": True}))
    me = await (await client.get("/api/users/me", headers=headers)).json()
    assert me["email"] == email and me["role"] == "user"
    # the provider's email changed: the subject still finds the account
    again = signed_in(await sign_in(client, provider, sub, {"email": fresh_email(), "email_verified": True}))
    assert (await (await client.get("/api/users/me", headers=again)).json())["id"] == me["id"]


async def test_a_verified_email_signs_in_to_the_existing_account(sso, provider):
    client = await sso()
    account = await register(client)
    headers = signed_in(await sign_in(client, provider, uuid.uuid4().hex,
                                      {"email": account.email.upper(), "email_verified": True}))
    assert (await (await client.get("/api/users/me", headers=headers)).json())["id"] == account.id


async def test_an_unverified_email_never_takes_over_an_existing_account(sso, provider):
    client = await sso()
    account = await register(client)
    resp = await sign_in(client, provider, uuid.uuid4().hex, {"email": account.email, "email_verified": False})
    assert resp.status == 400
    assert_error(await resp.json(), "oidc_failed")


async def test_a_tampered_state_is_refused(sso, provider):
    client = await sso()
    callback = await at_provider(provider, await begin(client), uuid.uuid4().hex,
                                 {"email": fresh_email(), "email_verified": True})
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")
    resp = await client.get(parts.path, params=query, allow_redirects=False)
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_oidc_state")


async def test_a_replayed_callback_signs_in_once(sso, provider):
    client = await sso()
    callback = await at_provider(provider, await begin(client), uuid.uuid4().hex,
                                 {"email": fresh_email(), "email_verified": True})
    signed_in(await come_back(client, callback))
    resp = await come_back(client, callback)
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_oidc_state")


async def test_a_replayed_code_with_a_new_state_is_refused_by_the_provider(sso, provider):
    client = await sso()
    callback = await at_provider(provider, await begin(client), uuid.uuid4().hex,
                                 {"email": fresh_email(), "email_verified": True})
    signed_in(await come_back(client, callback))
    # the same code, brought back with a state of a sign-in begun since
    other_state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(await begin(client)).query))["state"]
    parts = urllib.parse.urlsplit(callback)
    query = {**dict(urllib.parse.parse_qsl(parts.query)), "state": other_state}
    resp = await client.get(parts.path, params=query, allow_redirects=False)
    assert resp.status == 400
    body = await resp.json()
    assert_error(body, "oidc_failed")
    assert "code" in body["error"]


async def test_an_id_token_for_another_nonce_is_refused(sso, provider):
    client = await sso()
    url = urllib.parse.urlsplit(await begin(client))
    query = {**dict(urllib.parse.parse_qsl(url.query)), "nonce": "not-the-nonce-of-this-sign-in"}
    forged = urllib.parse.urlunsplit(url._replace(query=urllib.parse.urlencode(query)))
    callback = await at_provider(provider, forged, uuid.uuid4().hex, {"email": fresh_email(), "email_verified": True})
    resp = await come_back(client, callback)
    assert resp.status == 400
    body = await resp.json()
    assert_error(body, "oidc_failed")
    assert "ID token" in body["error"]


async def test_closed_registration_makes_no_account_but_lets_existing_ones_in(make_client, sso, provider):
    open_client = await make_client(start_workers=False)
    account = await register(open_client)
    client = await sso(REGISTRATION="closed")
    resp = await sign_in(client, provider, uuid.uuid4().hex, {"email": fresh_email(), "email_verified": True})
    assert resp.status == 403
    assert_error(await resp.json(), "registration_closed")
    signed_in(await sign_in(client, provider, uuid.uuid4().hex, {"email": account.email, "email_verified": True}))


async def test_registration_oidc_makes_accounts_only_through_the_provider(sso, provider):
    client = await sso(REGISTRATION="oidc")
    resp = await client.post("/api/auth/register", json={"email": fresh_email(), "password": "long enough"})
    assert resp.status == 403
    assert_error(await resp.json(), "registration_closed")
    signed_in(await sign_in(client, provider, uuid.uuid4().hex, {"email": fresh_email(), "email_verified": True}))


async def test_a_disabled_account_cannot_sign_in(sso, provider):
    client = await sso()
    sub = uuid.uuid4().hex
    headers = signed_in(await sign_in(client, provider, sub, {"email": fresh_email(), "email_verified": True}))
    me = await (await client.get("/api/users/me", headers=headers)).json()
    await db_of(client).execute("UPDATE users SET disabled_at = now() WHERE id = %s", (me["id"],))
    resp = await sign_in(client, provider, sub, {"email": me["email"], "email_verified": True})
    assert resp.status == 401


async def test_without_oidc_settings_the_routes_are_404(client):
    for path in ("/api/auth/oidc/login", "/api/auth/oidc/callback?state=x&code=y"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 404
        assert_error(await resp.json(), "oidc_not_configured")


async def test_a_provider_without_a_usable_email_makes_no_account(sso, provider):
    client = await sso()
    resp = await sign_in(client, provider, uuid.uuid4().hex, {"email": "not an address", "email_verified": True})
    assert resp.status == 400
    assert_error(await resp.json(), "oidc_failed")


async def test_an_error_from_the_provider_is_refused_and_uses_the_state_up(sso):
    client = await sso()
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(await begin(client)).query))["state"]
    query = {"state": state, "error": "access_denied"}
    resp = await client.get("/api/auth/oidc/callback", params=query, allow_redirects=False)
    assert resp.status == 400
    body = await resp.json()
    assert_error(body, "oidc_failed")
    assert "access_denied" in body["error"]
    again = await client.get("/api/auth/oidc/callback", params=query, allow_redirects=False)
    assert_error(await again.json(), "invalid_oidc_state")


@pytest.fixture
async def strict(make_client, fake_service):
    """A chatserver signing in through OidcIssuer, and that issuer."""
    issuer = OidcIssuer()
    url = str((await fake_service(issuer.app)).make_url("")).rstrip("/")
    client = await make_client(OIDC_ISSUER=url, OIDC_CLIENT_ID="chatserver", OIDC_CLIENT_SECRET="s3cret",
                               start_workers=False)
    return client, issuer


async def through_issuer(client) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        resp = await session.get(await begin(client), allow_redirects=False)
        assert resp.status == 302, await resp.text()
        return await come_back(client, resp.headers["Location"])


async def test_an_id_token_that_checks_out_signs_in(strict):
    client, issuer = strict
    headers = signed_in(await through_issuer(client))
    assert (await (await client.get("/api/users/me", headers=headers)).json())["email"] == issuer.email


@pytest.mark.parametrize("wrong", [
    pytest.param({"foreign_key": True}, id="signed-by-a-key-not-in-the-jwks"),
    pytest.param({"claims": {"iss": "https://elsewhere.example"}}, id="another-issuer"),
    pytest.param({"claims": {"aud": "another-client"}}, id="another-audience"),
    pytest.param({"claims": {"exp": int(time.time()) - 60}}, id="expired"),
    pytest.param({"claims": {"exp": None}}, id="no-expiry"),
    pytest.param({"claims": {"nonce": None}}, id="no-nonce"),
])
async def test_an_id_token_that_does_not_check_out_signs_nobody_in(strict, wrong):
    client, issuer = strict
    issuer.foreign_key = wrong.get("foreign_key", False)
    issuer.claims = wrong.get("claims", {})
    resp = await through_issuer(client)
    assert resp.status == 400
    body = await resp.json()
    assert_error(body, "oidc_failed")
    assert "ID token" in body["error"]
    assert await db_of(client).fetchval("SELECT count(*) FROM users WHERE email = %s", (issuer.email,)) == 0
