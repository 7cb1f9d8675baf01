"""TOTP MFA (RFC 6238 through `pyotp`: SHA-1, 6 digits, 30 s, what authenticator apps
assume from an otpauth URI that names no algorithm) and one-time recovery codes.

Set-up is two steps: `begin` stores a sealed seed and returns it with its otpauth URI and a QR
code; `confirm` enables MFA once the user proves a code, and returns ten recovery codes, shown
once and stored as digests. `verify` accepts a TOTP code (one step of clock drift either way,
each time step once) or an unused recovery code; 5 failures lock MFA for 5 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pyotp
import segno

from shared.domain.accounts.lockout import Lockout
from shared.domain.accounts.secretbox import open_sealed, seal
from shared.platform.auth.tokens import same_secret
from shared.platform.db.pool import Pool
from shared.platform.errors import Conflict, ValidationError
from shared.platform.settings import Settings

_PURPOSE = "mfa-totp-seed"
RECOVERY_CODES = 10


@dataclass(frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str
    qr_svg: str
    qr_png: str  # a data: URI


def _recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits, 16 characters
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _code_digest(code: str) -> str:
    normal = code.strip().lower().replace(" ", "")
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def _qr(uri: str) -> tuple[str, str]:
    qr = segno.make(uri, error="m")
    png = io.BytesIO()
    qr.save(png, kind="png", scale=6, border=2)
    data_uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return qr.svg_inline(scale=6, border=2), data_uri


class Mfa:
    def __init__(self, settings: Settings, pool: Pool, redis: Any):
        self.settings, self.pool = settings, pool
        self.lockout = Lockout(
            redis,
            "mfa",
            max_failures=settings.auth_mfa_failures_max,
            window_s=settings.auth_mfa_lock_s,
        )

    async def enabled(self, user_id: str) -> bool:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM user_mfa WHERE user_id = %s AND enabled_at IS NOT NULL", (user_id,)
            )
            return await cursor.fetchone() is not None

    async def begin(self, user_id: str, email: str) -> Enrollment:
        if await self.enabled(user_id):
            raise Conflict("MFA is enabled already; disable it first to enrol a new device")
        secret = pyotp.random_base32()
        sealed = seal(self.settings, _PURPOSE, secret, owner=user_id)
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO user_mfa (user_id, secret_sealed) VALUES (%s, %s)"
                " ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed,"
                " last_step = NULL, created_at = now()",
                (user_id, sealed),
            )
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=self.settings.auth_issuer)
        svg, png = _qr(uri)
        return Enrollment(secret=secret, otpauth_uri=uri, qr_svg=svg, qr_png=png)

    async def confirm(self, user_id: str, code: str) -> list[str]:
        """Enables MFA when `code` is right for the pending seed; returns the recovery codes."""
        await self.lockout.check(user_id)
        async with self.pool.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    "SELECT secret_sealed, enabled_at IS NOT NULL FROM user_mfa"
                    " WHERE user_id = %s FOR UPDATE",
                    (user_id,),
                )
            ).fetchone()
            if row is None:
                raise ValidationError("start MFA set-up first (POST /v1/auth/mfa/enable)")
            if row[1]:
                raise Conflict("MFA is enabled already")
            step = self._match(open_sealed(self.settings, _PURPOSE, row[0], owner=user_id), code)
            if step is None:
                await self.lockout.fail(user_id)
                raise ValidationError("that code is not right; check the device's clock")
            codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
            await conn.execute(
                "UPDATE user_mfa SET enabled_at = now(), last_step = %s WHERE user_id = %s",
                (step, user_id),
            )
            await conn.execute("DELETE FROM mfa_recovery_code WHERE user_id = %s", (user_id,))
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO mfa_recovery_code (user_id, code_hash) VALUES (%s, %s)",
                    [(user_id, _code_digest(c)) for c in codes],
                )
        await self.lockout.clear(user_id)
        return codes

    async def verify(self, user_id: str, code: str) -> str | None:
        """ "totp" or "recovery_code" when `code` is accepted, None when it is not (counted
        towards the lock). Raises RateLimited while MFA is locked."""
        await self.lockout.check(user_id)
        method = await self._accept(user_id, code)
        if method is None:
            await self.lockout.fail(user_id)
        else:
            await self.lockout.clear(user_id)
        return method

    async def disable(self, user_id: str) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM user_mfa WHERE user_id = %s", (user_id,))
            await conn.execute("DELETE FROM mfa_recovery_code WHERE user_id = %s", (user_id,))

    async def recovery_codes_left(self, user_id: str) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM mfa_recovery_code WHERE user_id = %s AND used_at IS NULL",
                (user_id,),
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _accept(self, user_id: str, code: str) -> str | None:
        code = code.strip()
        async with self.pool.connection() as conn, conn.transaction():
            if code.isascii() and code.isdigit():  # "١٢٣٤٥٦".isdigit() too
                row = await (
                    await conn.execute(
                        "SELECT secret_sealed, last_step FROM user_mfa"
                        " WHERE user_id = %s AND enabled_at IS NOT NULL FOR UPDATE",
                        (user_id,),
                    )
                ).fetchone()
                if row is None:
                    return None
                secret = open_sealed(self.settings, _PURPOSE, row[0], owner=user_id)
                step = self._match(secret, code)
                if step is None or (row[1] is not None and step <= row[1]):
                    return None  # wrong, or a code already used (replay)
                await conn.execute(
                    "UPDATE user_mfa SET last_step = %s WHERE user_id = %s", (step, user_id)
                )
                return "totp"
            cursor = await conn.execute(
                "UPDATE mfa_recovery_code SET used_at = now()"
                " WHERE user_id = %s AND code_hash = %s AND used_at IS NULL RETURNING id",
                (user_id, _code_digest(code)),
            )
            return "recovery_code" if await cursor.fetchone() else None

    @staticmethod
    def _match(secret: str, code: str, *, now: float | None = None) -> int | None:
        """The time step `code` belongs to (current one, or one either side), or None."""
        totp = pyotp.TOTP(secret)
        current = int((now if now is not None else time.time()) // totp.interval)
        for step in (current, current - 1, current + 1):
            if same_secret(code.strip(), totp.generate_otp(step)):
                return step
        return None
