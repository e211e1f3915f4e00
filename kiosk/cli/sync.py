"""`kiosk sync` and `kiosk enrol`: thin commands over kiosk.sync."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from kiosk.cli._common import add_command, config_from, progress_on_terminal

__all__ = ["register", "cmd_sync", "cmd_enrol"]


def cmd_sync(args: argparse.Namespace) -> int:
    """Upload the journal to the collector and fetch trust list, rules and deny list.

    Runs until SIGTERM (the request in flight finishes, then exit 0). With --once, uploads
    everything pending, prints a summary and exits 1 if anything is left.
    Example: kiosk sync --once
    """
    from kiosk.errors import SyncError
    from kiosk.journal import Journal
    from kiosk.model import utcnow
    from kiosk.sync import Fetcher, Uploader, resolve_token, status
    from kiosk.sync.service import run_forever, run_once

    cfg = config_from(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="kiosk sync: %(message)s", stream=sys.stderr)
    with Journal(cfg.journal_path(), repeat_window_s=cfg.journal.repeat_window_s) as journal:
        if args.status:
            print(json.dumps(status(journal, utcnow()).as_dict(), ensure_ascii=False))
            return 0
        token = resolve_token(cfg, journal)
        if not token and args.once:
            raise SyncError("no device token: set sync.device_token or run `kiosk enrol --code CODE`")
        stop = threading.Event()
        previous = _on_signals(stop)
        kwargs = {"max_attempts": args.max_attempts} if args.max_attempts else {}
        try:
            if not token:
                # A fresh kiosk before provisioning: wait for the token rather than
                # crash-loop under systemd; entries stay safe in the outbox meanwhile.
                print("kiosk sync: no device token yet; waiting for `kiosk enrol --code CODE` "
                      "or `kiosk provision`", file=sys.stderr, flush=True)
                while not token and not stop.wait(cfg.sync.interval_s):
                    token = resolve_token(cfg, journal)
                if not token:
                    return 0
            with Uploader.from_config(cfg, journal, token=token, stop=stop, **kwargs) as up, \
                    Fetcher.from_config(cfg, journal, token=token) as fetcher:
                fetch = None if args.no_fetch else fetcher

                def beat() -> bool:
                    from kiosk.sync import heartbeat

                    body = heartbeat.collect(cfg, journal, utcnow())
                    return heartbeat.send(cfg.sync.collector_url, up.token, body, timeout=cfg.sync.timeout_s,
                                          verify=cfg.sync.ca_file or None)

                if args.once:
                    up.on_progress = progress_on_terminal("uploaded")
                    summary = run_once(up, fetch, beat)
                    for line in summary.lines():
                        print(line, flush=True)
                    return 0 if summary.ok else 1
                run_forever(up, fetch, stop=stop, interval_s=cfg.sync.interval_s,
                            trust_refresh_s=cfg.sync.trust_refresh_s, heartbeat=beat)
        finally:
            _restore(previous)
    return 0


def _on_signals(stop: threading.Event) -> dict[int, object]:
    previous: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]


def cmd_enrol(args: argparse.Namespace) -> int:
    """Register this kiosk with the collector using a one-time code and keep the token.

    The code comes from `collector enrol-code --device ID` on the collector.
    Example: kiosk enrol --code N66MFBNR2U
    """
    from kiosk.journal import Journal
    from kiosk.sync import enrol, store_token

    cfg = config_from(args)
    url = args.url or cfg.sync.collector_url
    token = enrol(url, cfg.device.id, args.code, timeout=cfg.sync.timeout_s, verify=cfg.sync.ca_file or None)
    with Journal(cfg.journal_path()) as journal:
        store_token(journal, token)
    print(f"enrolled {cfg.device.id} with {url}; token stored in {cfg.journal_path()}")
    venue = getattr(token, "venue", None)
    if venue and venue != cfg.venue.code:
        # The collector takes entries of that venue only: log for it, or not at all.
        source = cfg.file()
        if source is None or not source.is_file():
            print(f"error: the collector enrolled {cfg.device.id} for venue {venue}, but venue.code is "
                  f"{cfg.venue.code!r} and there is no config file to change; set it: "
                  f"kiosk config set venue.code {venue}", file=sys.stderr)
            return 1
        from kiosk.provision import apply_settings

        apply_settings(source, {"venue.code": venue})
        print(f"venue.code set to {venue} in {source} (the venue the collector enrolled this kiosk for)")
    if cfg.sync.device_token:
        print("note: sync.device_token in the config overrides the enrolled token", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = add_command(sub, "sync", cmd_sync)
    p.add_argument("--once", action="store_true", help="upload everything pending, then exit")
    p.add_argument("--no-fetch", action="store_true", help="do not fetch trust list, rules, deny list")
    p.add_argument("--status", action="store_true", help="print the stored sync status as JSON and exit")
    p.add_argument("--max-attempts", type=int, default=None, metavar="N",
                   help="attempts per batch before a round gives up (default 8)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    p = add_command(sub, "enrol", cmd_enrol)
    p.add_argument("--code", required=True, help="one-time enrolment code from the collector")
    p.add_argument("--url", help="collector URL (default: sync.collector_url)")
