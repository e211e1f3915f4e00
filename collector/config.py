"""The collector's configuration: a small TOML file and/or environment variables.

Precedence: command-line flags, then environment variables, then the TOML file
(`--config FILE` or `$COLLECTOR_CONFIG`), then the defaults below.

    # collector.toml
    db_url = "postgresql://collector@db.example/collector"   # env COLLECTOR_DB_URL
    admin_token = "long-random-string"                       # env COLLECTOR_ADMIN_TOKEN
    host = "127.0.0.1"                                       # env COLLECTOR_HOST
    port = 8470                                              # env COLLECTOR_PORT
    max_body_bytes = 8388608                                 # env COLLECTOR_MAX_BODY_BYTES
    max_inflated_bytes = 67108864                            # env COLLECTOR_MAX_INFLATED_BYTES
    seal_private_key = "base64 X25519 key"                   # env COLLECTOR_SEAL_PRIVATE_KEY
    publisher_key_file = "/etc/collector/publisher.pem"      # env COLLECTOR_PUBLISHER_KEY_FILE
    tls_cert = "/etc/collector/tls/fullchain.pem"            # env COLLECTOR_TLS_CERT
    tls_key = "/etc/collector/tls/privkey.pem"               # env COLLECTOR_TLS_KEY
    retention_days = 21                                      # env COLLECTOR_RETENTION_DAYS

The seal key (from `collector keygen`) opens the personal fields kiosks seal to its public
half (their `journal.seal_key`), for tracing answers only; without it they stay sealed.

The admin token guards the report, tracing and publishing endpoints; when it is empty
those endpoints refuse every request (401) instead of being open.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["CollectorConfig", "load", "DEFAULT_DB_URL", "DEFAULT_PORT"]

DEFAULT_DB_URL = "sqlite:///collector.db"
DEFAULT_PORT = 8470
#: Largest request body accepted on the wire (gzip-compressed).
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Largest body after decompression: a guard against gzip bombs.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
ENV_PREFIX = "COLLECTOR_"
#: An admin token shorter than this is refused: it guards every person's tracing data
#: (`python -c "import secrets; print(secrets.token_urlsafe(32))"` makes a good one).
MIN_ADMIN_TOKEN = 32


class CollectorConfigError(ValueError):
    """A collector config file or variable is wrong; the message names it."""


@dataclass(frozen=True)
class CollectorConfig:
    db_url: str = DEFAULT_DB_URL
    admin_token: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = MAX_BODY_BYTES
    max_inflated_bytes: int = MAX_INFLATED_BYTES
    seal_private_key: str = ""
    publisher_key_file: str = ""   # Ed25519 PEM from `collector publisher-keygen`: signs documents
    tls_cert: str = ""             # PEM certificate chain: `collector serve` speaks HTTPS
    tls_key: str = ""              # its private key
    retention_days: int = 21       # personal fields are purged after this (`collector retention`)

    def __post_init__(self) -> None:
        _check_admin_token("admin_token", self.admin_token)

    def __repr__(self) -> str:  # never print the admin token or the key
        secret = {"admin_token", "seal_private_key"}
        return "CollectorConfig(" + ", ".join(
            f"{f.name}={('***' if getattr(self, f.name) else '') if f.name in secret else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)) + ")"


def _check_admin_token(where: str, token: str) -> None:
    if token and len(token) < MIN_ADMIN_TOKEN:
        raise CollectorConfigError(
            f"{where}: the admin token has {len(token)} characters; at least {MIN_ADMIN_TOKEN} are "
            "required (make one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")


def _coerce(where: str, key: str, value: Any) -> Any:
    want = {f.name: f.type for f in dataclasses.fields(CollectorConfig)}[key]
    if want in ("int", int):
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise CollectorConfigError(f"{where}: {key} = {value!r}: expected an integer") from None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CollectorConfigError(f"{where}: {key} = {value!r}: expected a positive integer")
        if key == "port" and value > 65535:
            raise CollectorConfigError(f"{where}: port = {value}: expected 1 to 65535")
        return value
    if not isinstance(value, str):
        raise CollectorConfigError(f"{where}: {key} = {value!r}: expected a string")
    if key == "admin_token":
        _check_admin_token(f"{where}: admin_token", value)
    return value


def load(path: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None,
         **overrides: Any) -> CollectorConfig:
    """Build the config from a TOML file, the environment and explicit overrides
    (`None` overrides are ignored, so argparse defaults can be passed straight in)."""
    env = os.environ if env is None else env
    keys = {f.name for f in dataclasses.fields(CollectorConfig)}
    values: dict[str, Any] = {}
    path = path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        where = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CollectorConfigError(f"{where}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CollectorConfigError(f"{where}: not valid TOML: {exc}") from None
        for key, value in data.items():
            if key not in keys:
                raise CollectorConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(keys))}")
            values[key] = _coerce(where, key, value)
    for key in keys:
        name = ENV_PREFIX + key.upper()
        if env.get(name):
            values[key] = _coerce(f"${name}", key, env[name])
    for key, value in overrides.items():
        if value is not None:
            if key not in keys:
                raise CollectorConfigError(f"unknown setting {key!r}")
            values[key] = _coerce("command line", key, value)
    return CollectorConfig(**values)
