"""SPEC §18's auth contract, as a client written only to SPEC would use it: its paths, its
bodies, its envelope, over HTTP and a WebSocket against the real gateway process.

signup → verify_email (the token from the mail), request_reset → complete_reset,
mfa/enable → mfa/verify {code} → login → 401 mfa_required → mfa/verify {mfa_ticket, code},
login with `mfa_code`, refresh, and the WebSocket first frame `{"type": "auth", "session"}`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pyotp
import pytest
import websockets

from tests.helpers import free_port, project_process
from tests.integration.authkit import new_email, wait_for_mail

pytestmark = pytest.mark.integration

PASSWORD = "a passphrase for the contract"
NEW_PASSWORD = "another passphrase for the contract"


@pytest.fixture(scope="module")
def gateway(migrated, workers, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("contract") / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    env = {"GATEWAY_PORT": str(port), "LOG_LEVEL": "INFO"}
    with project_process(["-m", "infra.gateway"], env=env, ready_url=url + "/healthz",
                         log_path=log):  # fmt: skip
        yield url


class SpecClient:
    """Knows SPEC §18 and nothing of this code base: the envelope, bearer auth, the paths."""

    def __init__(self, http: httpx.AsyncClient):
        self.http, self.access_token = http, None

    async def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        response = await self.http.post(path, json=body or {}, headers=headers)
        envelope = response.json()
        assert envelope["request_id"], envelope
        if envelope["status"] == "ok":
            return response.status_code, envelope["data"]
        assert set(envelope["error"]) >= {"code", "message", "details"}, envelope
        return response.status_code, envelope["error"]

    async def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        envelope = (await self.http.get(path, headers=headers)).json()
        assert envelope["status"] == "ok", envelope
        return envelope["data"]


def _next_code(totp: pyotp.TOTP) -> str:
    """A code of a time step not used yet (each step is accepted once)."""
    return totp.at(time.time() + totp.interval)


async def test_a_spec_client_runs_the_auth_flows(gateway, settings) -> None:
    email = new_email()
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        client = SpecClient(http)

        # signup → verify_email
        status, signed = await client.post(
            "/v1/auth/signup", {"email": email, "password": PASSWORD}
        )
        assert status == 201 and signed["access_token"] and signed["refresh_token"]
        token = wait_for_mail(settings.mail_dir, email, "verify_email")
        status, verified = await client.post("/v1/auth/verify_email", {"token": token})
        assert status == 200 and verified["email_verified"] is True

        # request_reset → complete_reset (every session ends; the new password logs in)
        status, _ = await client.post("/v1/auth/request_reset", {"email": email})
        assert status == 202
        token = wait_for_mail(settings.mail_dir, email, "password_reset")
        status, _ = await client.post(
            "/v1/auth/complete_reset", {"token": token, "new_password": NEW_PASSWORD}
        )
        assert status == 200
        status, error = await client.post(
            "/v1/auth/refresh", {"refresh_token": signed["refresh_token"]}
        )
        assert status == 401 and error["code"] == "unauthorized"
        status, error = await client.post("/v1/auth/login", {"email": email, "password": PASSWORD})
        assert status == 401
        credentials = {"email": email, "password": NEW_PASSWORD}
        status, session = await client.post("/v1/auth/login", credentials)
        assert status == 200 and {"access_token", "refresh_token", "user"} <= set(session)

        # mfa/enable → mfa/verify {code}: the secret and QR, then recovery codes
        client.access_token = session["access_token"]
        status, enrolment = await client.post("/v1/auth/mfa/enable")
        assert status == 200 and enrolment["secret"] and enrolment["qr_svg"]
        totp = pyotp.TOTP(enrolment["secret"])
        status, enabled = await client.post("/v1/auth/mfa/verify", {"code": totp.now()})
        assert status == 200 and len(enabled["recovery_codes"]) == 10
        client.access_token = None

        # login → 401 mfa_required with a ticket → mfa/verify {mfa_ticket, code}
        status, error = await client.post("/v1/auth/login", credentials)
        assert status == 401 and error["code"] == "mfa_required"
        ticket = error["details"]["mfa_ticket"]
        assert 0 < error["details"]["expires_in"] <= 300
        status, error = await client.post(
            "/v1/auth/mfa/verify", {"mfa_ticket": ticket, "code": "000000"}
        )
        assert status == 401
        status, session = await client.post(
            "/v1/auth/mfa/verify", {"mfa_ticket": ticket, "code": _next_code(totp)}
        )
        assert status == 200, session
        assert {"access_token", "refresh_token", "user"} <= set(session)
        assert session["user"]["email"] == email
        client.access_token = session["access_token"]
        assert (await client.get("/v1/me"))["mfa_enabled"] is True
        client.access_token = None

        # login with mfa_code keeps working (a recovery code too); refresh rotates the pair
        status, with_code = await client.post(
            "/v1/auth/login", {**credentials, "mfa_code": enabled["recovery_codes"][0]}
        )
        assert status == 200, with_code
        status, rotated = await client.post(
            "/v1/auth/refresh", {"refresh_token": with_code["refresh_token"]}
        )
        assert status == 200 and rotated["refresh_token"] != with_code["refresh_token"]

    # The WebSocket's first frame names the session by its bearer token.
    socket_url = gateway.replace("http://", "ws://") + "/v1/chat/stream"
    async with websockets.connect(socket_url) as socket:
        await socket.send(json.dumps({"type": "auth", "session": rotated["access_token"]}))
        answer = json.loads(await socket.recv())
        assert answer["type"] == "auth_ok" and answer["user_id"] == session["user"]["id"]
    async with websockets.connect(socket_url) as socket:
        await socket.send(json.dumps({"type": "chat_start", "message": {"content": "hi"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
