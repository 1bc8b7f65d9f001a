"""An OpenID provider on 127.0.0.1 whose ID tokens can be made wrong on
purpose: signed by a key it does not publish, or with a claim changed. The
real provider of the tests (oidc-provider-mock) issues only good tokens;
this one shows that each check of the ID token is made.

It speaks the protocol's four steps: discovery, the authorization endpoint
(signs in at once whoever comes, redirecting back with a code), the token
endpoint, and the JWKS."""

from __future__ import annotations

import secrets
import time
import uuid

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


class OidcIssuer:
    """`claims` changes (or, as None, removes) claims of the ID tokens it
    issues; `foreign_key` signs them with a key the JWKS does not hold."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "published"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "published"})
        self.claims: dict = {}
        self.foreign_key = False
        self.email = f"issued-{uuid.uuid4().hex[:10]}@example.com"
        self.codes: dict[str, dict] = {}
        self.app = web.Application()
        self.app.router.add_get("/.well-known/openid-configuration", self.discovery)
        self.app.router.add_get("/authorize", self.authorize)
        self.app.router.add_post("/token", self.token)
        self.app.router.add_get("/jwks", self.jwks)

    @staticmethod
    def _issuer(request: web.Request) -> str:
        return str(request.url.origin())

    async def discovery(self, request: web.Request) -> web.Response:
        issuer = self._issuer(request)
        return web.json_response({
            "issuer": issuer, "authorization_endpoint": f"{issuer}/authorize", "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": query["nonce"], "aud": query["client_id"], "iss": self._issuer(request)}
        raise web.HTTPFound(f"{query['redirect_uri']}?code={code}&state={query['state']}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims = {"iss": grant["iss"], "aud": grant["aud"], "sub": "subject-1", "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], "email": self.email, "email_verified": True}
        for name, value in self.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.other_key if self.foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "published"}, claims, key)
        return web.json_response({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                  "id_token": id_token})
