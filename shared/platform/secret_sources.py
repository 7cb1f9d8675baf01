"""Secrets from outside the environment (docs/configuration.md, "Secrets"): a file, or AWS
Secrets Manager, so that keys and passwords need not sit in a unit file or a template.

- `SECRETS_FILE=/path`: a dotenv file of setting names and values (`AUTH_JWT_SECRET=...`). It is
  refused unless the process's user owns it and neither group nor others have any access to it
  (mode 0600 or 0400): a secret readable by anyone on the box is no secret.
- `SECRETS_ARNS=arn1,arn2`: Secrets Manager secrets, each a JSON object of setting names and
  values; a secret in RDS's format (`{"engine": "postgres", "host", "port", "username",
  "password", "dbname"}`) becomes `DATABASE_URL`. Each is fetched once per process.

Precedence: explicit environment variables (and `.env`) > these > defaults. The values are
handed to the settings and never logged; errors name the source, never a value.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dotenv import dotenv_values
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

SECRETS_FILE_VAR = "SECRETS_FILE"
SECRETS_ARNS_VAR = "SECRETS_ARNS"


class SecretsError(ValueError):
    """A secrets source that cannot be used; the message never holds a secret's value."""


def read_secrets_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE pairs of a secrets file, after checking who may read it."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SecretsError(f"{SECRETS_FILE_VAR}={path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretsError(f"{SECRETS_FILE_VAR}={path}: not a regular file")
    if info.st_uid != os.geteuid():
        raise SecretsError(
            f"{SECRETS_FILE_VAR}={path}: owned by uid {info.st_uid}, not by this process's"
            f" user (uid {os.geteuid()})"
        )
    if info.st_mode & 0o077:
        raise SecretsError(
            f"{SECRETS_FILE_VAR}={path}: mode {stat.S_IMODE(info.st_mode):04o} lets group or"
            " others in; make it 0600 (chmod 600)"
        )
    values = dotenv_values(path, interpolate=False)
    empty = sorted(key for key, value in values.items() if value is None)
    if empty:
        raise SecretsError(f"{SECRETS_FILE_VAR}={path}: no value for {', '.join(empty)}")
    return {key: value for key, value in values.items() if value is not None}


# What an RDS-format secret holds besides settings (its own keys are no setting names).
RDS_KEYS = frozenset({"engine", "host", "port", "username", "password", "dbname",
                      "dbInstanceIdentifier", "dbClusterIdentifier"})  # fmt: skip


def rds_database_url(secret: Mapping[str, Any]) -> str:
    """DATABASE_URL from a secret in RDS's format (user and password percent-encoded)."""
    user = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    port = secret.get("port") or 5432
    dbname = quote(str(secret.get("dbname") or "postgres"), safe="")
    return f"postgresql://{user}:{password}@{secret['host']}:{port}/{dbname}"


def _is_rds(secret: Mapping[str, Any]) -> bool:
    return (
        str(secret.get("engine", "")).startswith("postgres")
        and {
            "host",
            "username",
            "password",
        }
        <= secret.keys()
    )


def secret_settings(name: str, raw: str | None) -> dict[str, str]:
    """Setting names and values from one Secrets Manager secret's SecretString."""
    if raw is None:
        raise SecretsError(f"secret {name}: no SecretString (binary secrets are not read)")
    try:
        secret = json.loads(raw)
    except ValueError:
        raise SecretsError(f"secret {name}: not a JSON object") from None
    if not isinstance(secret, dict):
        raise SecretsError(f"secret {name}: not a JSON object")
    if _is_rds(secret):
        # RDS's own keys are not settings; whatever else the secret holds still is.
        rest = {k: v for k, v in secret.items() if k not in RDS_KEYS}
        return {**_as_strings(name, rest), "DATABASE_URL": rds_database_url(secret)}
    return _as_strings(name, secret)


def _as_strings(name: str, values: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if isinstance(value, (dict, list)):
            out[key] = json.dumps(value)  # a complex setting, as its environment variable holds it
        elif isinstance(value, (str, int, float, bool)):
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            raise SecretsError(f"secret {name}: the value of {key} is not a string")
    return out


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 6 and parts[0] == "arn" and parts[3] else None


@functools.lru_cache(maxsize=8)
def fetch_secrets(arns: tuple[str, ...]) -> Mapping[str, str]:
    """Every secret's settings, later ARNs over earlier ones; fetched once per process (the
    settings object may be built more than once; Secrets Manager is called once). The
    endpoint follows boto3's own configuration (AWS_ENDPOINT_URL_SECRETS_MANAGER locally)."""
    import boto3  # only a process that names secrets pays for the import

    values: dict[str, str] = {}
    clients: dict[str | None, Any] = {}
    for arn in arns:
        region = _region_of(arn)
        if region not in clients:
            clients[region] = boto3.client("secretsmanager", region_name=region)
        try:
            answer = clients[region].get_secret_value(SecretId=arn)
        except Exception as exc:  # botocore's errors carry no secret value
            raise SecretsError(f"secret {arn}: {type(exc).__name__}: {exc}") from None
        values.update(secret_settings(arn, answer.get("SecretString")))
    return values


def load_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """Setting names -> values from the sources `environ` names (none: empty). The file's
    values first, then the secrets', so a managed secret wins over a stale file."""
    values: dict[str, str] = {}
    path = environ.get(SECRETS_FILE_VAR, "").strip()
    if path:
        values.update(read_secrets_file(Path(path)))
    arns = tuple(a.strip() for a in environ.get(SECRETS_ARNS_VAR, "").split(",") if a.strip())
    if arns:
        values.update(fetch_secrets(arns))
    return values


class SecretsSource(EnvSettingsSource):
    """The secrets as if they were environment variables: same names, same parsing (aliases,
    JSON for complex settings), one step below the real environment."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            load_secrets(self._environ),
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # never the values


class SecretSourcesSettings(BaseSettings):
    """A mixin of `shared.platform.settings.Settings`: the sources, in precedence order."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            SecretsSource(settings_cls),
            file_secret_settings,
        )
