"""The MFA login ticket: a password login of an account with MFA on, sent without `mfa_code`,
answers 401 `mfa_required` with a ticket; `POST /v1/auth/mfa/verify {mfa_ticket, code}` then
finishes that login.

A ticket is a single-use token in Redis (`OneTimeTokens`, digest only) that lives 5 minutes. It
stands for the user whose password was just proven and is bound to the client that proved it (IP
address and user agent) and to the mode the login asked for (bearer or cookies). A wrong code
leaves the ticket in place (the MFA lock counts it: 5 wrong codes lock MFA for 5 minutes); the
right one spends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.domain.accounts.onetime import OneTimeTokens
from shared.platform.audit import Actor
from shared.platform.auth.tokens import same_secret
from shared.platform.errors import Unauthorized, ValidationError

TICKET_TTL_S = 300
_PURPOSE = "mfa_login"


@dataclass(frozen=True)
class Ticket:
    user_id: str
    use_cookies: bool


class MfaTickets:
    def __init__(self, redis: object):
        self.tokens = OneTimeTokens(redis)

    async def issue(self, user_id: str, client: Actor, *, use_cookies: bool) -> str:
        record = {
            "user_id": user_id,
            "ip": client.ip or "",
            "user_agent": client.user_agent or "",
            "use_cookies": use_cookies,
        }
        return await self.tokens.issue(_PURPOSE, json.dumps(record), ttl_s=TICKET_TTL_S)

    async def peek(self, ticket: str, client: Actor) -> Ticket:
        """The ticket's login, without spending it; 401 when it is unknown, expired, used, or
        presented by another client than the one that logged in."""
        try:
            record = json.loads(await self.tokens.peek(_PURPOSE, ticket))
        except ValidationError:
            raise Unauthorized("the MFA ticket is invalid or has expired; log in again") from None
        same_client = same_secret(client.ip or "", record["ip"]) and same_secret(
            client.user_agent or "", record["user_agent"]
        )
        if not same_client:
            raise Unauthorized("the MFA ticket belongs to another client; log in again")
        return Ticket(user_id=record["user_id"], use_cookies=bool(record["use_cookies"]))

    async def spend(self, ticket: str) -> None:
        try:
            await self.tokens.redeem(_PURPOSE, ticket)
        except ValidationError:  # a concurrent request spent it first
            raise Unauthorized("the MFA ticket was used already; log in again") from None
