"""The daily report reaches the health department without anyone clicking: the timer's
job (`collector deliver` = delivery.run_due) against a real SMTP server on loopback
(aiosmtpd, STARTTLS with a certificate from a CA made here, AUTH), the e-mail's CSV and
XLSX holding the collector's own figures; a failing server leaves a recorded failure
that the report page and `collector status` show, and the retry goes through once the
server is back. Credentials never go to a server the configured CA did not sign."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import ssl
import threading
from datetime import timedelta
from pathlib import Path

import openpyxl

from collector.xlsx import header_words
import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import report_data as data
from collector import delivery
from collector.config import CollectorConfig, CollectorConfigError, load
from collector_helpers import ADMIN_TOKEN, RunningCollector, open_store
from collector_process import free_port
from test_tls import _pem, make_ca, write_pki

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USER, PASSWORD = "report@soyte.example.vn", "smtp-password-for-tests"
TO = ["phongyte@soyte.example.vn", "Lãnh đạo Sở <giamdoc@soyte.example.vn>"]


class Mailbox:
    """aiosmtpd handler: keeps every message; `refuse` answers DATA with a temporary failure."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []
        self.refuse = False
        self.logins: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "451 4.3.0 Mailbox temporarily unavailable"
        with self.lock:
            self.envelopes.append(envelope)
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _authenticator(box: Mailbox):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            box.logins.append(auth_data.password)
            return AuthResult(success=auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD)
        return AuthResult(success=False)
    return check


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smtp-pki")
    write_pki(folder, "Sở Y tế test CA")
    return folder


def _server_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "cert.pem", pki / "key.pem")
    return ctx


class Smtp:
    """A real SMTP server on 127.0.0.1: STARTTLS required, AUTH required (or implicit TLS)."""

    def __init__(self, pki: Path, *, implicit: bool = False, port: int | None = None) -> None:
        self.box = Mailbox()
        self.port = port or free_port()
        ctx = _server_context(pki)
        # aiosmtpd advertises AUTH only after its own STARTTLS; on an implicit-TLS socket the
        # whole session is TLS already.
        kwargs = ({"ssl_context": ctx, "auth_require_tls": False} if implicit
                  else {"tls_context": ctx, "require_starttls": True})
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port, auth_required=True,
                                     authenticator=_authenticator(self.box), **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp(pki):
    server = Smtp(pki)
    yield server
    server.stop()


def _config(tmp_path: Path, store, pki: Path, port: int, **extra) -> CollectorConfig:
    fields = dict(db_url=store.url, admin_token=ADMIN_TOKEN, export_dir=str(tmp_path / "exports"),
                  smtp_host="127.0.0.1", smtp_port=port, smtp_security="starttls", smtp_user=USER,
                  smtp_password=PASSWORD, smtp_ca_file=str(pki / "ca.pem"), mail_from=USER, mail_to=", ".join(TO))
    fields.update(extra)
    return CollectorConfig(**fields)


@pytest.fixture
def store(tmp_path):
    s = open_store("sqlite", tmp_path)
    data.fill(s)
    yield s
    s.close()


def _attachments(msg) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in msg.iter_attachments()}


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _xlsx_rows(body: bytes) -> list[list[str]]:
    ws = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    return [["" if c is None else str(c) for c in row] for row in ws.iter_rows(values_only=True)]


def test_the_timers_job_mails_csv_and_xlsx_with_the_collectors_figures(tmp_path, store, smtp, pki):
    cfg = _config(tmp_path, store, pki, smtp.port)
    assert delivery.run_due(store, cfg, now=data.CUTOFF - timedelta(minutes=1)) == []  # 16:29: not yet
    assert smtp.box.messages == []
    done = delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    assert [(d.ok, d.kind, d.attempt) for d in done] == [(True, "scheduled", 1)], done
    assert done[0].cutoff == data.CUTOFF
    [msg] = smtp.box.messages
    assert sorted(smtp.box.envelopes[0].rcpt_tos) == sorted(["phongyte@soyte.example.vn", "giamdoc@soyte.example.vn"])
    assert "2026-03-02" in msg["Subject"] and "16:30" in msg["Subject"]
    files = _attachments(msg)
    assert set(files) == {"daily-2026-03-02.csv", "daily-2026-03-02.xlsx", "daily-2026-03-02.html"}
    mailed = _csv_rows(files["daily-2026-03-02.csv"].decode("utf-8-sig"))
    with RunningCollector(store) as c:
        served = requests.get(c.url + "/v1/reports/daily.csv", params={"date": "2026-03-02"}, headers=ADMIN, timeout=10)
    assert mailed == _csv_rows(served.text)  # the collector's own figures, cell for cell
    workbook = _xlsx_rows(files["daily-2026-03-02.xlsx"])
    assert workbook[1:] == mailed[1:] and workbook[0] == [header_words(h) for h in mailed[0]]
    by_venue = {row["venue_code"]: row for row in csv.DictReader(io.StringIO(served.text))}
    for venue, want in data.EXPECTED.items():
        assert {k: int(by_venue[venue][k]) for k in want} == want, venue
    assert by_venue["BV-CHORAY"]["venue_name"] == "Bệnh viện Chợ Rẫy"
    body = msg.get_body(("plain",)).get_content()
    assert f"Lượt vào / Entries:            {data.TOTAL['entries']}" in body and data.SILENT in body
    # ... and the same three files in the export folder
    folder = tmp_path / "exports" / "2026-03-02"
    assert {p.name for p in folder.iterdir()} == set(files)
    assert (folder / "daily-2026-03-02.csv").read_bytes() == files["daily-2026-03-02.csv"]
    # Once sent, the next runs of the timer send nothing more that day.
    assert delivery.run_due(store, cfg, now=data.AFTER_CUTOFF + timedelta(minutes=5)) == []
    assert len(smtp.box.messages) == 1


def test_entries_scanned_after_the_cutoff_are_not_in_the_delivered_report(tmp_path, store, smtp, pki):
    data.fill_after_cutoff(store)
    cfg = _config(tmp_path, store, pki, smtp.port)
    delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    rows = csv.DictReader(io.StringIO(_attachments(smtp.box.messages[0])["daily-2026-03-02.csv"].decode("utf-8-sig")))
    assert {r["venue_code"]: int(r["entries"]) for r in rows}["BV-CHORAY"] == data.EXPECTED["BV-CHORAY"]["entries"]


def test_a_failing_server_is_recorded_shown_and_retried_until_it_goes_through(tmp_path, store, smtp, pki, capsys):
    from collector import cli

    cfg = _config(tmp_path, store, pki, smtp.port)
    smtp.box.refuse = True
    [failed] = delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    assert not failed.ok and "451" in failed.error and "temporarily unavailable" in failed.error
    assert failed.next_retry_at == data.AFTER_CUTOFF + delivery.RETRY_DELAYS[0]
    # The report page shows the failure, in words an officer can act on.
    with RunningCollector(store) as c:
        page = requests.get(c.url + "/v1/reports/daily", params={"date": "2026-03-02"}, headers=ADMIN, timeout=10).text
    assert "lỗi / failed" in page and "451" in page and "giamdoc@soyte.example.vn" in page
    # collector status lists it as waiting for a retry.
    toml = tmp_path / "collector.toml"
    toml.write_text(f'db_url = "{store.url}"\n', encoding="utf-8")
    assert cli.main(["status", "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "deliveries waiting for a retry: 1" in out and "FAILED" in out and "451" in out
    assert f"silent  {data.SILENT}" in out
    # Before its retry time nothing is tried; the server comes back; the retry goes through.
    assert delivery.run_due(store, cfg, now=failed.next_retry_at - timedelta(seconds=1)) == []
    smtp.box.refuse = False
    [retried] = delivery.run_due(store, cfg, now=failed.next_retry_at)
    assert retried.ok and retried.attempt == 2 and retried.cutoff == data.CUTOFF
    assert len(smtp.box.messages) == 1
    assert delivery.pending(store) == []
    with RunningCollector(store) as c:
        page = requests.get(c.url + "/v1/reports/daily", params={"date": "2026-03-02"}, headers=ADMIN, timeout=10).text
    assert "đã gửi / sent" in page


def test_a_server_that_is_down_is_retried_on_the_schedule(tmp_path, store, pki):
    port = free_port()  # nothing listens here yet
    cfg = _config(tmp_path, store, pki, port)
    [first] = delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    assert not first.ok and "Connection refused" in first.error
    [second] = delivery.run_due(store, cfg, now=first.next_retry_at)
    assert not second.ok and second.attempt == 2
    assert second.next_retry_at - second.attempted_at == delivery.RETRY_DELAYS[1]
    server = Smtp(pki, port=port)
    try:
        [third] = delivery.run_due(store, cfg, now=second.next_retry_at)
    finally:
        server.stop()
    assert third.ok and third.attempt == 3 and len(server.box.messages) == 1


def test_implicit_tls_delivers_too(tmp_path, store, pki):
    server = Smtp(pki, implicit=True)
    try:
        cfg = _config(tmp_path, store, pki, server.port, smtp_security="tls")
        [d] = delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    finally:
        server.stop()
    assert d.ok, d.error
    assert len(server.box.messages) == 1


def test_a_server_the_configured_ca_did_not_sign_never_gets_the_password(tmp_path, store, smtp, pki):
    """A man in the middle with his own certificate: the TLS handshake fails, nothing is
    sent, the failure is recorded. (Fails if the certificate is not verified.)"""
    _, other_ca = make_ca("Someone else")
    other = tmp_path / "other-ca.pem"
    other.write_bytes(_pem(other_ca))
    cfg = _config(tmp_path, store, pki, smtp.port, smtp_ca_file=str(other))
    [d] = delivery.run_due(store, cfg, now=data.AFTER_CUTOFF)
    assert not d.ok and "CERTIFICATE_VERIFY_FAILED" in d.error
    assert smtp.box.logins == [] and smtp.box.messages == []


def test_report_send_by_hand_delivers_now(tmp_path, store, smtp, pki, capsys):
    from collector import cli

    toml = tmp_path / "collector.toml"
    toml.write_text("\n".join([
        f'db_url = "{store.url}"', f'export_dir = "{tmp_path / "by-hand"}"', 'smtp_host = "127.0.0.1"',
        f"smtp_port = {smtp.port}", f'smtp_user = "{USER}"', f'smtp_password = "{PASSWORD}"',
        f'smtp_ca_file = "{pki / "ca.pem"}"', f"mail_to = {TO!r}".replace("'", '"'), ""]), encoding="utf-8")
    assert cli.main(["report", "--send", "--date", "2026-03-02", "--config", str(toml)]) == 0
    assert "manual" in capsys.readouterr().out
    [msg] = smtp.box.messages
    rows = csv.DictReader(io.StringIO(_attachments(msg)["daily-2026-03-02.csv"].decode("utf-8-sig")))
    assert sum(int(r["entries"]) for r in rows) == data.TOTAL["entries"]
    assert (tmp_path / "by-hand" / "2026-03-02" / "daily-2026-03-02.xlsx").is_file()


@pytest.mark.parametrize("line, key, words", [
    ('report_time = "4:30pm"', "report_time", "HH:MM"),
    ('smtp_security = "ssl"', "smtp_security", "starttls, tls, none"),
    ('mail_to = "phong y te"', "mail_to", "not an e-mail address"),
    ("smtp_port = 70000", "smtp_port", "1 to 65535"),
])
def test_bad_delivery_settings_name_the_file_and_key(tmp_path, line, key, words):
    toml = tmp_path / "collector.toml"
    toml.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CollectorConfigError) as err:
        load(toml, env={})
    assert str(toml) in str(err.value) and key in str(err.value) and words in str(err.value)


def test_settings_that_cannot_work_together_are_refused_before_sending(tmp_path, store):
    with pytest.raises(CollectorConfigError, match="smtp_security"):
        delivery.check_settings(CollectorConfig(smtp_host="mail.soyte.example.vn", smtp_security="none",
                                                mail_to="a@soyte.example.vn", mail_from="r@soyte.example.vn"))
    with pytest.raises(CollectorConfigError, match="mail_to"):
        delivery.check_settings(CollectorConfig(smtp_host="mail.soyte.example.vn", mail_from="r@soyte.example.vn"))
    assert delivery.history(store) == []  # nothing recorded, nothing sent


def test_collector_deliver_the_units_command_retries_a_failed_delivery(tmp_path, store, pki, capsys):
    """`collector deliver` (collector-report.service's ExecStart) on the real clock: a
    delivery that failed an hour ago, while the server was down, goes out now."""
    from datetime import datetime, timezone

    from collector import cli
    from collector.storage import REPORT_TZ

    port = free_port()
    now = datetime.now(timezone.utc)
    today = now.astimezone(REPORT_TZ).date()
    cfg = _config(tmp_path, store, pki, port)
    failed = delivery.deliver(store, cfg, today, now=now - timedelta(hours=1))
    assert not failed.ok
    toml = tmp_path / "collector.toml"
    toml.write_text("\n".join(f"{k} = {getattr(cfg, k)!r}".replace("'", '"') if isinstance(getattr(cfg, k), str)
                              else f"{k} = {getattr(cfg, k)}" for k in (
        "db_url", "admin_token", "export_dir", "smtp_host", "smtp_port", "smtp_user", "smtp_password",
        "smtp_ca_file", "mail_from", "mail_to")) + "\n", encoding="utf-8")
    server = Smtp(pki, port=port)
    try:
        assert cli.main(["deliver", "--config", str(toml)]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "manual    attempt 2" in out and "sent" in out
    assert delivery.pending(store) == [] and len(server.box.messages) >= 1
