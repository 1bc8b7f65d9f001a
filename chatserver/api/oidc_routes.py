"""Single sign-on with OpenID Connect (docs/admin.md): send the browser to
the provider, and sign in whom it sends back: by the provider's subject,
else by a verified email that matches an account, else as a new account
(unless REGISTRATION is closed). The talk with the provider is
oidc_client.py's."""

from __future__ import annotations

import json

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.authentication import issue_token
from chatserver.api.endpoint import endpoint, read_query
from chatserver.api.oidc_client import OIDC, Login
from chatserver.credentials import Email
from chatserver.data import users
from chatserver.errors import InvalidOidcState, OidcFailed, OidcNotConfigured, RegistrationClosed, Unauthorized

_EMAIL = pydantic.TypeAdapter(Email)
# how long a sign-in may take at the provider
LOGIN_SECONDS = 600
CALLBACK_PATH = "/api/auth/oidc/callback"


class OidcCallbackQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    state: str = pydantic.Field(default="", max_length=200)
    code: str = pydantic.Field(default="", max_length=2000)
    error: str = pydantic.Field(default="", max_length=200)


def _redirect_uri(request: web.Request) -> str:
    base = request.app[appkeys.SETTINGS].PUBLIC_BASE_URL.rstrip("/") or f"{request.scheme}://{request.host}"
    return base + CALLBACK_PATH


def _client(request: web.Request):
    client = request.app.get(OIDC)
    if client is None:
        raise OidcNotConfigured()
    return client


@endpoint("Sign in with the OpenID Connect provider: a redirect to it", tag="auth", public=True,
          responses={302: None, 404: "single sign-on is not configured (code oidc_not_configured)",
                     503: "the provider cannot be reached"})
async def oidc_login(request: web.Request) -> web.Response:
    client = _client(request)
    login = Login()
    url = await client.authorization_url(login, _redirect_uri(request))
    await request.app[appkeys.REDIS].set(request.app[appkeys.KEYS].oidc_login(login.state),
                                         json.dumps({"nonce": login.nonce, "verifier": login.verifier}),
                                         ex=LOGIN_SECONDS)
    raise web.HTTPFound(url)


async def _account(request: web.Request, claims: dict) -> dict:
    db, issuer = request.app[appkeys.DB], _client(request).issuer
    sub = str(claims["sub"])
    row = await users.by_oidc_subject(db, issuer, sub)
    email = claims.get("email")
    if row is None and isinstance(email, str) and claims.get("email_verified") is True:
        row = await users.link_oidc_by_email(db, email, issuer, sub)
    if row is None:
        if request.app[appkeys.SETTINGS].REGISTRATION == "closed":
            raise RegistrationClosed()
        try:
            email = _EMAIL.validate_python(email)
        except pydantic.ValidationError:
            raise OidcFailed("the identity provider gave no usable email address") from None
        name = claims.get("name") if isinstance(claims.get("name"), str) else email.split("@")[0]
        try:
            row = await users.insert_oidc(db, email, str(name)[:100], issuer, sub)
        except users.EmailTaken:
            raise OidcFailed("an account with this email exists, and the identity provider has not verified "
                             "that the email is yours") from None
    if row["disabled_at"] is not None:
        raise Unauthorized("this account is disabled")
    return row


@endpoint("Where the provider sends the browser back: signs in, then redirects to "
          "/#access_token=<token>&token_type=bearer&expires_in=<seconds>", tag="auth", public=True,
          query=OidcCallbackQuery,
          responses={302: None, 400: "an unknown, used or expired state (code invalid_oidc_state); a code, ID "
                                     "token or email that does not check out (code oidc_failed)",
                     401: "the account is disabled", 403: "registration is closed (code registration_closed)",
                     404: "single sign-on is not configured (code oidc_not_configured)",
                     503: "the provider cannot be reached"})
async def oidc_callback(request: web.Request) -> web.Response:
    client = _client(request)
    query = read_query(request, OidcCallbackQuery)
    app = request.app
    # taken at once: a state (and the code that came with it) signs in once
    kept = await app[appkeys.REDIS].getdel(app[appkeys.KEYS].oidc_login(query.state)) if query.state else None
    if kept is None:
        raise InvalidOidcState()
    if query.error or not query.code:
        raise OidcFailed(f"the identity provider did not sign you in ({query.error or 'no code'})")
    login = json.loads(kept)
    claims = await client.claims(query.code, _redirect_uri(request), login["nonce"], login["verifier"])
    row = await _account(request, claims)
    token, lifetime = issue_token(app[appkeys.SETTINGS], row["id"])
    raise web.HTTPFound(f"/#access_token={token}&token_type=bearer&expires_in={lifetime}")
