"""`kiosk demo`: the whole appliance on material it makes itself.

A demo issuer key and a demo DSC sign declarations and vaccine passports, their trust
list is imported into a demo journal, segno and OpenCV render the codes onto phone
screens and ID cards as a gate camera would see them, and the real run loop replays
those frames through the real decoder, checks, journal, screen and simulated pins.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from kiosk.config import Config, load_config, state_dir
from kiosk.errors import ConfigError, SyncError

__all__ = ["run_demo", "prepare_demo", "demo_state_dir"]

#: Seconds between demo frames: long enough to read each verdict on screen.
WINDOW_INTERVAL_S = 2.5
HEADLESS_INTERVAL_S = 0.05
#: The local collector's database, beside the demo journal.
LOCAL_COLLECTOR_DB = "local-collector.db"


#: Keys the demo sets itself; a --set of one of them is refused (the demo would not be
#: the demo any more), and so is `sync.collector_url`: the demo uploads only to its own
#: local collector (README: "Your own data at a collector" for the real road).
DEMO_OWNED_KEYS = ("scanner.kind", "scanner.replay_path", "pins.backend", "sync.collector_url",
                   "sync.device_token")


def checkout_key() -> str:
    """A short name for the folder this kiosk package was loaded from, so each checkout
    (a fresh clone in a new folder) keeps its own demo state and never sees another's
    entries as repeats."""
    import hashlib

    return hashlib.sha256(str(Path(__file__).resolve().parents[2]).encode()).hexdigest()[:12]


def demo_state_dir(base: Config | None = None) -> Path:
    """Where the demo keeps its journal, frames and local collector: per user and per
    checkout, `<state_dir>/demo/<checkout_key>`."""
    return state_dir(base or load_config(None, search=False)) / "demo" / checkout_key()


def refused_overrides(overrides: Mapping[str, Any]) -> list[str]:
    """The --set keys the demo will not take, each with why (empty: all are honoured)."""
    return [f"--set {key}: the demo sets it itself" + (
        "; it uploads only to its own local collector (README: 'Your own data at a collector')"
        if key.startswith("sync.") else "") for key in overrides if key in DEMO_OWNED_KEYS]


def demo_config(*, interval: float | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Built-in defaults, with the demo's journal apart from a real one; `overrides` (the
    command line's --set) on top."""
    base = load_config(None, search=False)
    settings: dict[str, Any] = {
        "scanner.kind": "replay",
        "scanner.replay_path": "",
        "pins.backend": "mock",
        "display.fullscreen": False,
        "journal.path": str(demo_state_dir(base) / "journal.db"),
    }
    if interval is not None:
        settings["scanner.replay_interval_s"] = interval
    settings.update(overrides or {})
    return load_config(None, overrides=settings, search=False)


def prepare_demo(cfg: Config, journal: Any, frames_dir: Path, *, collector: Any = None,
                 token: str = "") -> list[tuple[str, str]]:
    """Make the demo material, get its trust list into `journal` and render the demo
    frames. With a running local collector the trust list takes the real road: published
    at the collector, fetched by the kiosk with ETags. Returns the (label, payload) pairs."""
    from kiosk.demo.material import demo_material
    from kiosk.checks.trust import TrustStore
    from kiosk.model import utcnow
    from kiosk.demo.frames import write_demo_frames

    now = utcnow()
    material = demo_material(now)
    if collector is not None:
        from collector.publish import publish
        from kiosk.sync.fetcher import Fetcher

        # Signed with the demo's own publishing key, which this kiosk pins.
        publish(collector.store, "trust", material.trust_list_json, key=collector.publisher, now=now)
        with Fetcher(journal, url=collector.url, token=token, timeout_s=cfg.sync.timeout_s,
                     publisher_key=collector.publisher.public_key()) as fetcher:
            fetched = fetcher.fetch_all()
        if fetched.get("trust") not in ("updated", "unchanged"):
            raise SyncError(f"demo: the local collector's trust list did not arrive: {fetched.get('trust')}")
    else:
        TrustStore(journal).import_list(material.trust_list_json, now=now)
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    frames_dir.mkdir(parents=True)
    write_demo_frames([payload for _, payload in material.payloads], frames_dir)
    return list(material.payloads)


@contextlib.contextmanager
def local_collector(folder: Path, enabled: bool) -> Iterator[Any]:
    """The collector on loopback with its own SQLite file, or None when it is not
    wanted or its extra (`pip install kiosk[collector]`) is not installed."""
    if not enabled:
        yield None
        return
    try:
        from collector.local import LocalCollector
        from collector.storage import Store
    except ImportError as exc:
        print(f"demo: no local collector ({exc.name} missing: pip install -e '.[collector]'); "
              "entries stay pending", flush=True)
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    from kiosk.checks.signed import generate_private_key

    with Store(f"sqlite:///{folder / LOCAL_COLLECTOR_DB}") as store, \
            LocalCollector(store, publisher=generate_private_key()) as running:
        yield running


def run_demo(*, on_event: Callable[[Any, str | None], None], headless: bool = False, fresh: bool = False,
             interval: float | None = None, local_collector_wanted: bool = True,
             overrides: Mapping[str, Any] | None = None) -> int:
    """The demo; `on_event(event, label)` reports each verdict with what the code was.
    `fresh` starts with an empty demo journal; `overrides` are dotted config keys."""
    from kiosk.appliance import Kiosk
    from kiosk.pipeline import open_journal
    from kiosk.config import replace
    from kiosk.display.backends import display_available

    overrides = dict(overrides or {})
    refused = refused_overrides(overrides)
    if refused:
        raise ConfigError("demo: " + "; ".join(refused))
    cfg = demo_config(interval=interval, overrides=overrides)
    headless = headless or not display_available()
    if interval is None:
        cfg = replace(cfg, **{"scanner.replay_interval_s": HEADLESS_INTERVAL_S if headless else WINDOW_INTERVAL_S})
    journal_path = cfg.journal_path()
    demo_dir = journal_path.parent
    if fresh:
        for path in (journal_path, demo_dir / LOCAL_COLLECTOR_DB):
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    print(f"demo: built-in defaults{''.join(f', --set {k}' for k in overrides)}; state in {demo_dir} "
          f"(this checkout's; --fresh empties it)", flush=True)
    with local_collector(demo_dir, local_collector_wanted) as collector, \
            open_journal(cfg) as journal:
        token = ""
        if collector is not None:
            cfg = replace(cfg, **{"sync.collector_url": collector.url})
            token = collector.token(cfg.device.id, venue=cfg.venue.code)
        payloads = prepare_demo(cfg, journal, demo_dir / "frames", collector=collector, token=token)
        print(f"demo: {len(payloads)} codes rendered into {demo_dir / 'frames'}; journal {journal_path}", flush=True)
        labels = {payload: label for label, payload in payloads}  # what each demo code is
        with Kiosk(cfg, headless=headless, demo_dir=demo_dir / "frames", journal=journal,
                   on_event=lambda event: on_event(event, labels.get(event.scan.text))) as kiosk:
            kiosk.run()
        if collector is not None:
            _upload(cfg, journal, token, collector)
        counts = journal.counts()
    by = counts["by_verdict"]
    print(f"demo: journal holds {counts['entries']} entries (pass {by['pass']}, fail {by['fail']}, "
          f"review {by['review']}), {counts['pending_upload']} pending upload", flush=True)
    return 0


def _upload(cfg: Config, journal: Any, token: str, collector: Any) -> None:
    """What `kiosk sync --once` does, against the local collector."""
    from kiosk.sync.uploader import Uploader

    with Uploader.from_config(cfg, journal, token=token) as uploader:
        result = uploader.drain()
    held = collector.store.count_entries(device_id=cfg.device.id)
    print(f"demo: uploaded {result.sent} entries to the local collector at {collector.url} "
          f"({result.accepted} new); it now holds {held} from {cfg.device.id}", flush=True)
