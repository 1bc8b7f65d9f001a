"""Single sign-on's talk with the OpenID Connect provider (docs/admin.md):
discovery from OIDC_ISSUER, the authorization URL (code flow with PKCE,
`state` and `nonce`), the code exchange, and the check of the ID token
(signature by the provider's JWKS, `iss`, `aud`, `exp`, `nonce`). Authlib
makes the PKCE challenge and the random values; joserfc (Authlib's JOSE
library) checks the ID token."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import quote

import aiohttp
from aiohttp import web
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from chatserver.errors import OidcFailed, ServiceUnavailable

TIMEOUT = aiohttp.ClientTimeout(total=10)
# the provider's metadata and keys are read again after this long (keys rotate)
METADATA_SECONDS = 3600
SCOPE = "openid email profile"


class Login:
    """What the server keeps between sending the browser away and its return."""

    def __init__(self) -> None:
        self.state = generate_token(32)
        self.nonce = generate_token(32)
        self.verifier = generate_token(64)


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str):
        self.issuer = issuer  # as the ID tokens' `iss` says it, trailing slash and all
        self.client_id = client_id
        self.client_secret = client_secret
        self._metadata: dict | None = None
        self._keys: KeySet | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def _get_json(self, session: aiohttp.ClientSession, url: str) -> dict:
        async with session.get(url) as resp:
            if resp.status != 200:
                raise ServiceUnavailable()
            body = await resp.json(content_type=None)
        if not isinstance(body, dict):
            raise ServiceUnavailable()
        return body

    async def metadata(self, *, fresh: bool = False) -> tuple[dict, KeySet]:
        async with self._lock:
            if fresh or self._metadata is None or time.monotonic() - self._read_at > METADATA_SECONDS:
                try:
                    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                        discovery = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                        metadata = await self._get_json(session, discovery)
                        jwks = await self._get_json(session, metadata["jwks_uri"])
                    self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, JoseError):
                    raise ServiceUnavailable() from None
                self._metadata, self._read_at = metadata, time.monotonic()
            assert self._metadata is not None and self._keys is not None
            return self._metadata, self._keys

    async def authorization_url(self, login: Login, redirect_uri: str) -> str:
        metadata, _ = await self.metadata()
        return add_params_to_uri(metadata["authorization_endpoint"], [
            ("response_type", "code"), ("client_id", self.client_id), ("redirect_uri", redirect_uri),
            ("scope", SCOPE), ("state", login.state), ("nonce", login.nonce),
            ("code_challenge", create_s256_code_challenge(login.verifier)), ("code_challenge_method", "S256"),
        ])

    async def claims(self, code: str, redirect_uri: str, nonce: str, verifier: str) -> dict:
        """The checked claims of the ID token the code is exchanged for; OidcFailed otherwise."""
        metadata, keys = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
                    metadata["token_endpoint"], data=form, headers={"Authorization": self._basic()}) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise ServiceUnavailable() from None
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            raise OidcFailed("the identity provider refused the sign-in code (used already, or expired)")
        return self._checked(answer["id_token"], keys, nonce)

    def _basic(self) -> str:
        """client_secret_basic: id and secret form-encoded first (RFC 6749, 2.3.1)."""
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def _checked(self, id_token: str, keys: KeySet, nonce: str) -> dict:
        try:
            token = jwt.decode(id_token, keys)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OidcFailed(f"the identity provider's ID token was refused: {exc.__class__.__name__}") from None
        return token.claims


OIDC = web.AppKey("oidc", OidcClient)
