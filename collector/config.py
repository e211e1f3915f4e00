"""The collector's configuration: a small TOML file and/or environment variables.

Precedence: command-line flags, then environment variables, then the TOML file
(`--config FILE` or `$COLLECTOR_CONFIG`), then the defaults below.

    # collector.toml
    db_url = "postgresql://collector@db.example/collector"   # env COLLECTOR_DB_URL
    read_db_url = "postgresql://collector@replica.example/collector"  # env COLLECTOR_READ_DB_URL
    admin_token = "long-random-string"                       # env COLLECTOR_ADMIN_TOKEN
    host = "127.0.0.1"                                       # env COLLECTOR_HOST
    port = 8470                                              # env COLLECTOR_PORT
    max_body_bytes = 8388608                                 # env COLLECTOR_MAX_BODY_BYTES
    max_inflated_bytes = 67108864                            # env COLLECTOR_MAX_INFLATED_BYTES
    seal_private_key = "base64 X25519 key"                   # env COLLECTOR_SEAL_PRIVATE_KEY
    publisher_key_file = "/etc/collector/publisher.pem"      # env COLLECTOR_PUBLISHER_KEY_FILE
    tls_cert = "/etc/collector/tls/fullchain.pem"            # env COLLECTOR_TLS_CERT
    tls_key = "/etc/collector/tls/privkey.pem"               # env COLLECTOR_TLS_KEY
    trusted_proxies = ["127.0.0.1"]                          # env COLLECTOR_TRUSTED_PROXIES
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


def proxy_list(value: str) -> list[str]:
    """trusted_proxies as the list uvicorn takes (forwarded_allow_ips)."""
    return [p.strip() for p in value.split(",") if p.strip()]


def _check_proxies(where: str, value: str) -> None:
    import ipaddress

    for part in proxy_list(value):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise CollectorConfigError(f"{where}: {part!r} is not an IP address or network "
                                       "(e.g. 10.0.0.5 or 10.0.0.0/24)") from None


@dataclass(frozen=True)
class CollectorConfig:
    db_url: str = DEFAULT_DB_URL
    # A streaming replica of db_url: the daily report, its exports, the venue list and
    # tracing read from it, so a heavy report never slows ingest. Empty: db_url.
    read_db_url: str = ""
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
    # The daily report's delivery (collector.delivery; `collector deliver`, collector-report.timer).
    report_time: str = "16:30"     # HH:MM Vietnam time: the cut-off and when it is sent
    export_dir: str = "exports"    # CSV, XLSX and HTML of each day's report go here
    smtp_host: str = ""            # empty: the report is exported, not e-mailed
    smtp_port: int = 587
    smtp_security: str = "starttls"  # starttls | tls (implicit, port 465) | none (loopback only)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_ca_file: str = ""         # PEM CA of a private mail server (default: the system's)
    mail_from: str = ""
    mail_to: str = ""              # comma-separated (a TOML list is accepted)
    # Addresses (IPs or CIDRs, comma-separated or a TOML list) of the reverse proxies or load
    # balancers in front: only from them is X-Forwarded-For believed. Empty: the client is
    # the TCP peer, whatever headers it sends (issue 23 item 3).
    trusted_proxies: str = ""

    def __post_init__(self) -> None:
        _check_admin_token("admin_token", self.admin_token)
        _check_proxies("trusted_proxies", self.trusted_proxies)

    def __repr__(self) -> str:  # never print the admin token or the key
        secret = {"admin_token", "seal_private_key", "smtp_password"}
        return "CollectorConfig(" + ", ".join(
            f"{f.name}={('***' if getattr(self, f.name) else '') if f.name in secret else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)) + ")"


def _check_report_time(where: str, value: str) -> None:
    import re

    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise CollectorConfigError(f"{where} = {value!r}: expected HH:MM (24-hour Vietnam time, e.g. 16:30)")


def _check_smtp_security(where: str, value: str) -> None:
    if value not in SMTP_SECURITY:
        raise CollectorConfigError(f"{where} = {value!r}: expected one of {', '.join(SMTP_SECURITY)}")


def _check_addresses(where: str, value: str) -> None:
    from email.utils import parseaddr

    for part in filter(None, (p.strip() for p in value.split(","))):
        addr = parseaddr(part)[1]
        if "@" not in addr or addr.startswith("@") or addr.endswith("@") or any(c.isspace() for c in addr):
            raise CollectorConfigError(f"{where}: {part!r} is not an e-mail address (name@example.vn)")


#: starttls: plain connection upgraded (port 587); tls: TLS from the first byte (465);
#: none: no TLS, refused unless the server is on loopback (collector.delivery).
SMTP_SECURITY = ("starttls", "tls", "none")
DELIVERY_CHECKS = {"report_time": _check_report_time, "smtp_security": _check_smtp_security,
                   "mail_to": _check_addresses, "mail_from": _check_addresses, "trusted_proxies": _check_proxies}


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
        if key in ("port", "smtp_port") and value > 65535:
            raise CollectorConfigError(f"{where}: {key} = {value}: expected 1 to 65535")
        return value
    if key in ("mail_to", "trusted_proxies") and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ", ".join(value)
    if not isinstance(value, str):
        raise CollectorConfigError(f"{where}: {key} = {value!r}: expected a string")
    if key in DELIVERY_CHECKS:
        DELIVERY_CHECKS[key](f"{where}: {key}", value)
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
