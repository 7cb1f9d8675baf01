"""Units of the data-rights domain: pseudonyms, the scrubbing of audit details, the export's
parts and keys, and the export-ready mail."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from shared.domain.account_data.exports import object_key
from shared.domain.account_data.mail import compose_export_ready
from shared.domain.account_data.parts import PARTS
from shared.domain.account_data.pseudonyms import _scrubbed, pseudonym
from shared.platform.settings import Settings


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_a_pseudonym_is_a_stable_uuid_that_depends_on_the_key() -> None:
    uid = str(uuid.uuid4())
    one = _settings(auth_encryption_key=SecretStr("k" * 32))
    assert pseudonym(one, uid) == pseudonym(one, uid)
    assert str(uuid.UUID(pseudonym(one, uid))) == pseudonym(one, uid)
    assert pseudonym(one, uid) != uid
    assert pseudonym(one, uid) != pseudonym(one, str(uuid.uuid4()))
    other = _settings(auth_encryption_key=SecretStr("j" * 32))
    assert pseudonym(other, uid) != pseudonym(one, uid)
    pinned = _settings(auth_encryption_key=SecretStr("j" * 32),
                       account_pseudonym_key=SecretStr("p" * 32))  # fmt: skip
    assert pseudonym(pinned, uid) == pseudonym(
        _settings(auth_encryption_key=SecretStr("k" * 32),
                  account_pseudonym_key=SecretStr("p" * 32)), uid)  # fmt: skip


def test_scrubbing_drops_personal_keys_and_replaces_the_id() -> None:
    uid, alias = str(uuid.uuid4()), str(uuid.uuid4())
    details = {"email": "a@example.test", "ip": "10.0.0.1", "failures": 3,
               "nested": {"target": uid}, "ids": [uid, "x"]}  # fmt: skip
    scrubbed = _scrubbed(details, uid, alias)
    assert scrubbed == {"failures": 3, "nested": {"target": alias}, "ids": [alias, "x"]}


def test_the_export_names_its_parts_once_and_leaves_secrets_out() -> None:
    names = [part.name for part in PARTS]
    assert len(names) == len(set(names))
    text = " ".join(part.sql for part in PARTS)
    for secret in ("user_auth_credential", "user_mfa", "mfa_recovery_code", "refresh_token"):
        assert secret not in text
    assert all("%(uid)s" in part.sql for part in PARTS)


def test_an_export_lives_outside_the_users_prefix() -> None:
    uid, export_id = str(uuid.uuid4()), str(uuid.uuid4())
    assert object_key(uid, export_id) == f"exports/{uid}/{export_id}.zip"
    assert not object_key(uid, export_id).startswith("users/")


@pytest.mark.parametrize("ttl_s, days", [(7 * 86_400, "7 days"), (86_400, "1 day")])
def test_the_ready_mail_links_into_the_app(ttl_s: int, days: str) -> None:
    settings = _settings(public_base_url="https://chat.example.test", export_ttl_s=ttl_s)
    message = compose_export_ready(settings, "a@example.test", "e1")
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert message["Subject"] == "Your data export is ready"
    assert "https://chat.example.test/settings?export=e1" in body
    assert days in body and "X-Amz" not in body  # no presigned URL in a mailbox
