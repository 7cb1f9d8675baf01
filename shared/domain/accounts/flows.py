"""The account flows behind the auth function: each one checks its lockouts, does the work in
one transaction where it can, and leaves an audit event. Handlers stay a few lines each."""

from __future__ import annotations

import dataclasses
import logging

from shared.domain.accounts import accounts
from shared.domain.accounts.lockout import Lockout
from shared.domain.accounts.mail import queue_mail
from shared.domain.accounts.mfa import Mfa
from shared.domain.accounts.mfa_tickets import TICKET_TTL_S, MfaTickets
from shared.domain.accounts.oidc import Identity, account_for
from shared.domain.accounts.onetime import OneTimeTokens
from shared.domain.accounts.passwords import check_policy
from shared.platform import audit, outbox
from shared.platform.audit import Actor
from shared.platform.auth.sessions import RefreshReused, Sessions, TokenPair
from shared.platform.clients import Clients
from shared.platform.errors import MfaRequired, RateLimited, Unauthorized
from shared.platform.limits.rate import RateLimiter, rules

log = logging.getLogger(__name__)


class AuthFlows:
    def __init__(self, clients: Clients):
        self.clients, self.settings, pool = clients, clients.settings, clients.db
        self.pool = pool
        self.sessions = Sessions(clients.settings, pool, clients.redis)
        self.mfa = Mfa(clients.settings, pool, clients.redis)
        self.tokens = OneTimeTokens(clients.redis)
        self.mfa_tickets = MfaTickets(clients.redis)
        self.login_lockout = Lockout(
            clients.redis,
            "login",
            max_failures=clients.settings.auth_login_failures_max,
            window_s=clients.settings.auth_login_failure_window_s,
        )

    # --- sign-up, login, refresh, logout ---------------------------------------------------
    async def sign_up(
        self, email: str, password: str, handle: str | None, client: Actor
    ) -> tuple[accounts.User, TokenPair]:
        async with self.pool.connection() as conn, conn.transaction():
            user = await accounts.sign_up(conn, email, password, handle)
            await queue_mail(conn, "verify_email", user.id)
            await audit.record(conn, "signup", actor=_as(client, user.id), subject_user_id=user.id)
        await self._flush_outbox()
        return user, await self._open(user, client)

    async def log_in(
        self,
        email: str,
        password: str,
        mfa_code: str | None,
        client: Actor,
        *,
        use_cookies: bool = False,
    ) -> tuple[accounts.User, TokenPair]:
        """Without `mfa_code`, an account with MFA on answers 401 `mfa_required` carrying an
        `mfa_ticket` that `finish_mfa_login` takes with the code."""
        await self.login_lockout.check(email)
        try:
            async with self.pool.connection() as conn:
                user = await accounts.log_in(conn, email, password)
        except Unauthorized:
            failures = await self.login_lockout.fail(email)
            details = {"email": email, "failures": failures}
            await audit.record(self.pool, "login_failed", actor=client, details=details)
            raise
        method = "password"
        if await self.mfa.enabled(user.id):
            if not mfa_code:
                ticket = await self.mfa_tickets.issue(user.id, client, use_cookies=use_cookies)
                raise MfaRequired(
                    "this account needs a code from its authenticator app: send it to"
                    " POST /v1/auth/mfa/verify with the mfa_ticket (or log in with mfa_code)",
                    details={
                        "mfa_ticket": ticket,
                        "expires_in": TICKET_TTL_S,
                        "methods": ["totp", "recovery_code"],
                    },
                )
            method = await self._second_factor(user, mfa_code, _as(client, user.id))
        await self.login_lockout.clear(email)
        return user, await self._logged_in(user, client, method)

    async def finish_mfa_login(
        self, ticket: str, code: str, client: Actor
    ) -> tuple[accounts.User, TokenPair, bool]:
        """The login an `mfa_ticket` stands for, once `code` (TOTP or recovery code) is right:
        (user, tokens, whether the login asked for cookies). The ticket is spent on success."""
        pending = await self.mfa_tickets.peek(ticket, client)
        async with self.pool.connection() as conn:
            user = await accounts.get_caller(conn, pending.user_id)
        method = await self._second_factor(user, code, _as(client, user.id))
        await self.mfa_tickets.spend(ticket)
        await self.login_lockout.clear(user.email)
        return user, await self._logged_in(user, client, method), pending.use_cookies

    async def _logged_in(self, user: accounts.User, client: Actor, method: str) -> TokenPair:
        pair = await self._open(user, client)
        details = {"session_id": pair.principal.session_id, "method": method}
        await audit.record(
            self.pool, "login", actor=_as(client, user.id), subject_user_id=user.id, details=details
        )
        return pair

    async def oidc_log_in(
        self, identity: Identity, client: Actor
    ) -> tuple[accounts.User, TokenPair]:
        async with self.pool.connection() as conn:
            user = await account_for(conn, self.settings.oidc_provider_name, identity)
        if await self.mfa.enabled(user.id):
            # Our TOTP is not bypassed by another login path.
            raise MfaRequired("this account uses MFA: log in with its password and a code")
        return user, await self._logged_in(user, client, "oidc")

    async def _second_factor(self, user: accounts.User, code: str, client: Actor) -> str:
        """The login method once `code` is accepted; a wrong one counts towards the MFA lock."""
        try:
            method = await self.mfa.verify(user.id, code)
        except RateLimited:
            await audit.record(self.pool, "mfa_locked", actor=client, subject_user_id=user.id)
            raise
        if method is None:
            await audit.record(self.pool, "mfa_failed", actor=client, subject_user_id=user.id)
            raise Unauthorized("invalid MFA code")
        if method == "recovery_code":
            left = await self.mfa.recovery_codes_left(user.id)
            await audit.record(
                self.pool,
                "mfa_recovery_code_used",
                actor=client,
                subject_user_id=user.id,
                details={"codes_left": left},
            )
        return f"password+{method}"

    async def refresh(self, refresh_token: str, client: Actor) -> TokenPair:
        try:
            return await self.sessions.rotate(refresh_token)
        except RefreshReused as reused:
            await audit.record(
                self.pool,
                "refresh_token_reused",
                actor=client,
                subject_user_id=reused.user_id,
                details={"session_id": reused.session_id},
            )
            raise

    async def log_out(self, user_id: str, session_id: str, client: Actor) -> None:
        await self.sessions.revoke(session_id)
        await audit.record(
            self.pool,
            "logout",
            actor=_as(client, user_id),
            subject_user_id=user_id,
            details={"session_id": session_id},
        )

    # --- email verification and passwords ---------------------------------------------------
    async def verify_email(self, token: str, client: Actor) -> accounts.User:
        user_id = await self.tokens.redeem("verify_email", token)
        async with self.pool.connection() as conn:
            user = await accounts.mark_email_verified(conn, user_id)
        await audit.record(
            self.pool, "email_verified", actor=_as(client, user_id), subject_user_id=user_id
        )
        return user

    async def resend_verification(self, user_id: str) -> bool:
        async with self.pool.connection() as conn:
            user = await accounts.get_caller(conn, user_id)
        if user.email_verified:
            return False
        await RateLimiter(self.clients.redis).enforce(rules(self.settings)["mail"], user_id)
        async with self.pool.connection() as conn, conn.transaction():
            await queue_mail(conn, "verify_email", user_id)
        await self._flush_outbox()
        return True

    async def forgot_password(self, email: str, client: Actor) -> None:
        """Same answer whether or not the account exists; the mail goes only to the owner."""
        async with self.pool.connection() as conn:
            user = await accounts.find_by_email(conn, email)
        if user is None:
            return
        wait = await RateLimiter(self.clients.redis).take(rules(self.settings)["mail"], user.id)
        if wait > 0:  # silently: a 429 here would tell who has an account
            return
        async with self.pool.connection() as conn, conn.transaction():
            await queue_mail(conn, "password_reset", user.id)
            await audit.record(
                conn, "password_reset_requested", actor=client, subject_user_id=user.id
            )
        await self._flush_outbox()

    async def reset_password(self, token: str, password: str, client: Actor) -> None:
        # Check the new password before spending the token, so a refused one can be retried.
        async with self.pool.connection() as conn:
            user = await accounts.get_user(conn, await self.tokens.peek("password_reset", token))
        check_policy(password, user.email)
        user_id = await self.tokens.redeem("password_reset", token)
        async with self.pool.connection() as conn, conn.transaction():
            await accounts.set_password(conn, user_id, password)
            await audit.record(
                conn, "password_reset", actor=_as(client, user_id), subject_user_id=user_id
            )
        ended = await self.sessions.revoke_all(user_id)
        await self.login_lockout.clear(user.email)
        log.info("password reset; %d sessions ended", ended)

    async def change_password(
        self, user_id: str, session_id: str, current: str, new: str, client: Actor
    ) -> None:
        async with self.pool.connection() as conn:
            await accounts.check_password(conn, user_id, current)
        async with self.pool.connection() as conn, conn.transaction():
            await accounts.set_password(conn, user_id, new)
            await audit.record(
                conn, "password_changed", actor=_as(client, user_id), subject_user_id=user_id
            )
        await self.sessions.revoke_all(user_id, keep=session_id)

    # --- helpers --------------------------------------------------------------------------
    async def _open(self, user: accounts.User, client: Actor) -> TokenPair:
        return await self.sessions.open(
            user.id, user.role, user_agent=client.user_agent, ip=client.ip
        )

    async def _flush_outbox(self) -> None:
        await outbox.flush(self.pool, self.clients.sqs, self.clients.queues)


def _as(client: Actor, user_id: str) -> Actor:
    return dataclasses.replace(client, user_id=user_id)
