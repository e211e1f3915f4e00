"""The daily report delivered on time: at `report_time` (default 16:30 Vietnam time) the
day's report, counting entries scanned up to then, is written as CSV, XLSX and HTML into
`export_dir` and e-mailed to `mail_to` through the configured SMTP server (STARTTLS or
implicit TLS; `smtp_user`/`smtp_password`). Every attempt is recorded (when, to whom,
which cut-off, success or the error); a failed one is retried on RETRY_DELAYS until it
goes through, and shows on the report page and in `collector status`.

`collector deliver` (run every few minutes by collector-report.timer) does what is due:
today's delivery once its time has come and it has not gone out, and the retries whose
time has come. It is cheap when nothing is due, and safe to run twice.

    >>> from datetime import datetime, timezone
    >>> from collector.config import CollectorConfig
    >>> from collector.storage import Store
    >>> import tempfile
    >>> store = Store("sqlite://")
    >>> cfg = CollectorConfig(export_dir=tempfile.mkdtemp())       # no smtp_host: export only
    >>> [d.ok for d in run_due(store, cfg, now=datetime(2026, 3, 2, 9, 31, tzinfo=timezone.utc))]
    [True]
    >>> run_due(store, cfg, now=datetime(2026, 3, 2, 9, 40, tzinfo=timezone.utc))   # already sent
    []
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector import report as report_mod
from collector.config import CollectorConfigError
from collector.storage import create_once
from kiosk.errors import KioskError

__all__ = ["Delivery", "DeliveryError", "ReportFiles", "deliver", "run_due", "history", "pending",
           "make_files", "RETRY_DELAYS", "RETRY_DAYS", "SMTP_TIMEOUT_S", "ensure_tables"]

log = logging.getLogger("collector.delivery")

#: Wait before retry n (1-based) of a failed delivery; the last one repeats until it works.
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=30),
                timedelta(hours=1))
#: Failed deliveries of this many past days are still retried (older ones: by hand).
RETRY_DAYS = 3
#: Connect, TLS handshake and each SMTP command: a hung mail server never hangs the job.
SMTP_TIMEOUT_S = 30
SCHEDULED, MANUAL = "scheduled", "manual"
#: Longest error text kept for a failed attempt.
ERROR_MAX = 500

metadata = sa.MetaData()
deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),          # scheduled | manual
    sa.Column("cutoff", sa.DateTime(), nullable=False),         # naive UTC: entries scanned before it count
    sa.Column("attempted_at", sa.DateTime(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),         # 1 for the first try of (day, kind)
    sa.Column("recipients", sa.Text(), nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("error", sa.Text()),
    sa.Column("export_path", sa.Text()),
    sa.Column("next_retry_at", sa.DateTime()),                  # failed: when it is tried again
    sa.Index("deliveries_day", "day", "kind"),
)


class DeliveryError(KioskError, CollectorConfigError):
    """The delivery settings cannot work; the message names the config key."""


def ensure_tables(engine: sa.Engine) -> None:
    create_once(metadata, engine)


@dataclass(frozen=True)
class Delivery:
    id: str
    day: date
    kind: str
    cutoff: datetime
    attempted_at: datetime
    attempt: int
    recipients: str
    ok: bool
    error: str | None
    export_path: str | None
    next_retry_at: datetime | None


@dataclass(frozen=True)
class ReportFiles:
    report: report_mod.DailyReport
    csv: bytes
    xlsx: bytes
    html: bytes

    def named(self) -> list[tuple[str, bytes, str]]:
        day = self.report.day.isoformat()
        from collector.xlsx import XLSX_TYPE

        return [(f"daily-{day}.csv", self.csv, "text/csv"), (f"daily-{day}.xlsx", self.xlsx, XLSX_TYPE),
                (f"daily-{day}.html", self.html, "text/html")]


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


def report_clock(cfg: Any) -> time:
    hh, mm = cfg.report_time.split(":")
    return time(int(hh), int(mm))


def recipients(cfg: Any) -> list[str]:
    return [addr for _, addr in getaddresses([cfg.mail_to]) if addr]


def check_settings(cfg: Any) -> None:
    """What the delivery needs together, naming the keys (each key alone is checked when
    the config is read)."""
    if not cfg.smtp_host:
        return
    if not recipients(cfg):
        raise DeliveryError("mail_to: smtp_host is set but nobody to send to (mail_to = \"a@soyte.example.vn\")")
    if not (cfg.mail_from or "@" in cfg.smtp_user):
        raise DeliveryError("mail_from: set the sender address (or an smtp_user that is one)")
    if bool(cfg.smtp_user) != bool(cfg.smtp_password):
        raise DeliveryError("smtp_user and smtp_password go together")
    if cfg.smtp_security == "none" and not _loopback(cfg.smtp_host):
        raise DeliveryError(f"smtp_security = \"none\": only for a mail server on loopback, not {cfg.smtp_host!r} "
                            "(credentials and personal counts would cross the network in clear)")
    if cfg.smtp_ca_file and not Path(cfg.smtp_ca_file).is_file():
        raise DeliveryError(f"smtp_ca_file: {cfg.smtp_ca_file} not found")


def _loopback(host: str) -> bool:
    from kiosk.config import _loopback as loopback_url  # the one loopback test (kiosk's plain-HTTP rule)

    return loopback_url(f"smtp://[{host}]" if ":" in host else f"smtp://{host}")


def make_files(store: Any, day: date, *, now: datetime, cutoff: datetime | None) -> ReportFiles:
    """The day's report from the database, rendered three ways. The CSV starts with a
    UTF-8 byte order mark so Excel shows Vietnamese letters when it opens it."""
    from collector import report_page, xlsx

    rep = report_mod.collect(store, day, now=now, cutoff=cutoff)
    shown = history(store, day=day)
    return ReportFiles(rep, ("\ufeff" + report_mod.to_csv(rep)).encode("utf-8"), xlsx.report_xlsx(rep),
                       report_page.render(rep, deliveries=shown, files=True).encode("utf-8"))


def export(files: ReportFiles, folder: str | os.PathLike) -> Path:
    """Write the three files into `folder` (made if missing), each atomically (a reader
    never sees half a file). Returns the folder."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name, body, _ in files.named():
        tmp = target / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, target / name)
    return target


def _message(cfg: Any, files: ReportFiles) -> EmailMessage:
    rep = files.report
    total = rep.total()
    day = rep.day.isoformat()
    until = report_mod.local_time(rep.cutoff).strftime("%H:%M") if rep.cutoff else "—"
    msg = EmailMessage()
    msg["Subject"] = f"Báo cáo check-in ngày {day} (đến {until}) / Daily check-in report {day} (until {until})"
    msg["From"] = cfg.mail_from or cfg.smtp_user
    msg["To"] = ", ".join(recipients(cfg))
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="collector")
    silent = rep.silent_kiosks()
    msg.set_content(
        f"Báo cáo ngày {day}, tính các lượt quét đến {until} (giờ Việt Nam).\n"
        f"Daily report {day}, entries scanned until {until} (Vietnam time).\n\n"
        f"Lượt vào / Entries:            {total.entries}\n"
        f"Đạt / Pass:                    {total.passes}\n"
        f"Không đạt / Fail:              {total.fails}\n"
        f"Xem xét / Review:              {total.reviews}\n"
        f"Bảo vệ cho qua / Overrides:    {total.overrides}\n"
        f"Địa điểm / Venues:             {len(rep.venues)}\n"
        f"Thiết bị chưa gửi / Silent kiosks: {len(silent)}"
        + (f" ({', '.join(k.device_id for k in silent)})" if silent else "") + "\n\n"
        "Tệp đính kèm: CSV, XLSX (Excel) và trang HTML. / Attached: CSV, XLSX (Excel) and the HTML page.\n")
    for name, body, ctype in files.named():
        main, sub = ctype.split("/", 1)
        msg.add_attachment(body, maintype=main, subtype=sub, filename=name)
    return msg


def send(cfg: Any, msg: EmailMessage) -> None:
    """Send through the configured server: STARTTLS or implicit TLS with certificate and
    host name checked (smtp_ca_file for a private CA), then login when a user is set."""
    context = ssl.create_default_context(cafile=cfg.smtp_ca_file or None)
    if cfg.smtp_security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=SMTP_TIMEOUT_S,
                                                context=context)
    else:
        client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SMTP_TIMEOUT_S)
    with client:
        client.ehlo()
        if cfg.smtp_security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if cfg.smtp_user:
            client.login(cfg.smtp_user, cfg.smtp_password)
        refused = client.send_message(msg)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = "recipients refused: " + ", ".join(exc.recipients)
    else:
        text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(text.split())}"[:ERROR_MAX]


def _retry_delay(attempt: int) -> timedelta:
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]


def _row(r: Any) -> Delivery:
    return Delivery(r["id"], date.fromisoformat(r["day"]), r["kind"], _aware(r["cutoff"]), _aware(r["attempted_at"]),
                    r["attempt"], r["recipients"], bool(r["ok"]), r["error"], r["export_path"],
                    _aware(r["next_retry_at"]))


def _latest(store: Any, day: date, kind: str) -> Delivery | None:
    ensure_tables(store.engine)
    c = deliveries.c
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(deliveries).where(c.day == day.isoformat(), c.kind == kind)
                           .order_by(c.attempted_at.desc(), c.attempt.desc()).limit(1)).mappings().first()
    return _row(row) if row else None


def deliver(store: Any, cfg: Any, day: date, *, now: datetime, kind: str = MANUAL,
            cutoff: datetime | None = None) -> Delivery:
    """Build, export and (when smtp_host is set) e-mail `day`'s report with `cutoff`
    (None: up to now), and record the attempt. A failed send is recorded, never raised;
    bad settings (DeliveryError) are raised before anything is recorded."""
    check_settings(cfg)
    # By hand: up to now, or the whole day for a day that is over.
    cutoff = cutoff or min(now, report_mod.cutoff_for(day + timedelta(days=1), time(0, 0)))
    previous = _latest(store, day, kind)
    attempt = previous.attempt + 1 if previous is not None and not previous.ok else 1
    to = ", ".join(recipients(cfg)) if cfg.smtp_host else ""
    ok, error, path = True, None, None
    try:
        files = make_files(store, day, now=now, cutoff=cutoff)
        path = str(export(files, Path(cfg.export_dir) / day.isoformat()))
        if cfg.smtp_host:
            send(cfg, _message(cfg, files))
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
        ok, error = False, _error_text(exc)
        log.warning("report %s (%s, attempt %d) not delivered: %s", day, kind, attempt, error)
    record = Delivery(uuid.uuid4().hex, day, kind, cutoff, now, attempt, to, ok, error, path,
                      None if ok else now + _retry_delay(attempt))
    with store.engine.begin() as conn:
        conn.execute(deliveries.insert().values(
            id=record.id, day=day.isoformat(), kind=kind, cutoff=_utc(cutoff), attempted_at=_utc(now),
            attempt=attempt, recipients=to, ok=ok, error=error, export_path=path,
            next_retry_at=_utc(record.next_retry_at) if record.next_retry_at else None))
    return record


def run_due(store: Any, cfg: Any, *, now: datetime) -> list[Delivery]:
    """What is due at `now`: today's scheduled delivery once report_time has passed (if
    it has not been made), and every failed delivery of the last RETRY_DAYS days whose
    retry time has come. Returns the attempts made."""
    from collector.storage import REPORT_TZ

    at = report_clock(cfg)
    today = now.astimezone(REPORT_TZ).date()
    done = []
    for back in range(RETRY_DAYS, -1, -1):
        day = today - timedelta(days=back)
        cutoff = report_mod.cutoff_for(day, at)
        for kind in (SCHEDULED, MANUAL):
            last = _latest(store, day, kind)
            if last is None:
                due = kind == SCHEDULED and now >= cutoff and back == 0
            else:
                due = not last.ok and last.next_retry_at is not None and now >= last.next_retry_at
            if due:
                done.append(deliver(store, cfg, day, now=now, kind=kind,
                                    cutoff=last.cutoff if last is not None else cutoff))
    return done


def history(store: Any, *, day: date | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recorded attempts, newest first (of one day, or all)."""
    ensure_tables(store.engine)
    c = deliveries.c
    q = sa.select(deliveries).order_by(c.attempted_at.desc(), c.attempt.desc()).limit(limit)
    if day is not None:
        q = q.where(c.day == day.isoformat())
    with store.engine.connect() as conn:
        return [vars(_row(r)) | {"day": date.fromisoformat(r["day"])} for r in conn.execute(q).mappings()]


def pending(store: Any) -> list[Delivery]:
    """The (day, kind) pairs whose latest attempt failed: waiting for a retry."""
    ensure_tables(store.engine)
    c = deliveries.c
    with store.engine.connect() as conn:
        keys = conn.execute(sa.select(c.day, c.kind).where(c.ok.is_(False)).distinct()).all()
    out = []
    for day, kind in keys:
        last = _latest(store, date.fromisoformat(day), kind)
        if last is not None and not last.ok:
            out.append(last)
    return sorted(out, key=lambda d: (d.day, d.kind))
