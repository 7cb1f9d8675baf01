"""OIDC login with one configured provider: authorization code flow with PKCE (S256), state and
nonce (authlib's OAuth 2 client), ID token checked against the provider's JWKS (pyjwt: RS/ES
algorithms only, issuer, audience, expiry, nonce).

The state lives in Redis for 10 minutes and is also set in a cookie of the browser that began
the login, so a callback URL sent to someone else cannot log them into another account (login
CSRF). An identity links to an existing account only when the provider says its email is
verified; otherwise a provider email that is taken is refused rather than merged.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
from authlib.integrations.httpx_client import AsyncOAuth2Client

from shared.domain.accounts.accounts import User, _get
from shared.platform.auth.tokens import same_secret
from shared.platform.errors import Conflict, NotFound, Unauthorized, Unavailable
from shared.platform.settings import Settings

STATE_TTL_S = 600
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_DISCOVERY_TTL_S = 3600.0


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    email_verified: bool
    redirect_to: str


class OidcLogin:
    """One per request; the provider's discovery document is cached per process."""

    _discovery: dict[str, tuple[float, dict[str, Any]]] = {}

    def __init__(self, settings: Settings, redis: Any):
        if not (settings.oidc_issuer and settings.oidc_client_id):
            raise NotFound("OIDC login is not configured (OIDC_ISSUER, OIDC_CLIENT_ID)")
        self.settings, self.redis = settings, redis
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.redirect_uri = settings.oidc_redirect_uri or (
            f"{settings.public_url}/v1/auth/oauth/{settings.oidc_provider_name}/callback"
        )

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret.get_secret_value() or None,
            redirect_uri=redirect_uri,
            scope=self.settings.oidc_scopes,
            code_challenge_method="S256",
            timeout=self.settings.dependency_timeout_s * 3,
        )

    async def metadata(self) -> dict[str, Any]:
        cached = self._discovery.get(self.issuer)
        if cached and time.monotonic() - cached[0] < _DISCOVERY_TTL_S:
            return cached[1]
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=self.settings.dependency_timeout_s * 3) as http:
                response = await http.get(url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable("the OIDC provider did not answer its discovery document") from exc
        if document.get("issuer", "").rstrip("/") != self.issuer:
            raise Unavailable("the OIDC provider's discovery names another issuer")
        self._discovery[self.issuer] = (time.monotonic(), document)
        return document

    async def begin(self, redirect_to: str) -> tuple[str, str]:
        """(the provider URL to send the browser to, the state for the browser's cookie)."""
        metadata = await self.metadata()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        url, _ = self._client(self.redirect_uri).create_authorization_url(
            metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
        # The redirect URI goes with the state: the code exchange must name the one the
        # authorization request named, even if the setting changes in between.
        pending = {
            "nonce": nonce,
            "verifier": verifier,
            "redirect_to": redirect_to,
            "redirect_uri": self.redirect_uri,
        }
        await self.redis.set(f"auth:oidc:{state}", json.dumps(pending), ex=STATE_TTL_S)
        return url, state

    async def finish(self, code: str, state: str, browser_state: str | None) -> Identity:
        if not browser_state or not same_secret(state, browser_state):
            raise Unauthorized("this login was not started in this browser")
        stored = await self.redis.getdel(f"auth:oidc:{state}")
        if stored is None:
            raise Unauthorized("the login expired or was used already; start again")
        pending = json.loads(stored)
        metadata = await self.metadata()
        try:
            client = self._client(pending.get("redirect_uri", self.redirect_uri))
            token = await client.fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=pending["verifier"]
            )
        except Exception as exc:  # authlib raises OAuthError and httpx errors alike
            raise Unauthorized("the OIDC provider refused the code") from exc
        claims = await asyncio.to_thread(
            self._verify, token.get("id_token"), metadata["jwks_uri"], pending["nonce"]
        )
        if not claims.get("email"):
            raise Unauthorized("the OIDC provider gave no email (ask for the email scope)")
        return Identity(
            subject=str(claims["sub"]),
            email=str(claims["email"]).strip().lower(),
            email_verified=claims.get("email_verified") is True,
            redirect_to=pending["redirect_to"],
        )

    def _verify(self, id_token: str | None, jwks_uri: str, nonce: str) -> dict[str, Any]:
        if not id_token:
            raise Unauthorized("the OIDC provider returned no ID token")
        try:
            key = jwt.PyJWKClient(jwks_uri, cache_keys=True).get_signing_key_from_jwt(id_token)
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=self.settings.oidc_client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("the ID token did not verify") from exc
        if not same_secret(str(claims.get("nonce", "")), nonce):
            raise Unauthorized("the ID token's nonce does not match this login")
        return dict(claims)


async def account_for(conn: psycopg.AsyncConnection, provider: str, identity: Identity) -> User:
    """The account linked to this identity; else the account with its (verified) email, now
    linked; else a new account without a password."""
    async with conn.transaction():
        row = await (
            await conn.execute(
                "SELECT user_id::text FROM user_auth_provider"
                " WHERE provider = %s AND provider_uid = %s",
                (provider, identity.subject),
            )
        ).fetchone()
        if row is not None:
            return await _get(conn, row[0])
        row = await (
            await conn.execute("SELECT id::text FROM app_user WHERE email = %s", (identity.email,))
        ).fetchone()
        if row is not None and not identity.email_verified:
            raise Conflict("an account with this email exists; log in with its password")
        if row is None:
            row = await (
                await conn.execute(
                    "INSERT INTO app_user (email, email_verified_at) VALUES"
                    " (%s, CASE WHEN %s THEN now() END) RETURNING id::text",
                    (identity.email, identity.email_verified),
                )
            ).fetchone()
            assert row is not None
        await conn.execute(
            "INSERT INTO user_auth_provider (user_id, provider, provider_uid) VALUES (%s, %s, %s)",
            (row[0], provider, identity.subject),
        )
        return await _get(conn, row[0])
