"""The appliance: the run loop that turns the pipeline into a gate.

Two threads. The scanner worker reads the source, decodes, and hands each text to the
pipeline (kiosk.pipeline), which checks it and commits the entry to the journal; the
committed verdict goes to the main thread through a queue. The main thread owns the
screen, the lights, the relay and the guard button. So a slow frame never freezes the
screen, a frozen screen never stops logging, and nothing is signalled before it is
durably committed.

Beside them, the provisioner thread applies a technician's verified provisioning QR,
which may enrol with the collector over the network: the scan path only checks the
QR's signature and shows "accepted, enrolling", so the next person's verdict never
waits for the network. A kiosk started on a full disk shows the fault and keeps trying
to open its journal in the same main loop.
"""

from __future__ import annotations

import logging
import queue
import signal
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from kiosk.config import Config
from kiosk.errors import JournalError, KioskError
from kiosk.health import clock_synchronised_flag
from kiosk.journal import Journal
from kiosk.model import Outcome, Reason, Scan, Verdict
from kiosk.pipeline import Event, Pipeline, clock_plausible, open_journal

__all__ = ["Kiosk", "Provisioner", "on_sigterm"]

log = logging.getLogger("kiosk")

#: How long the worker waits on the source before checking for shutdown.
READ_TIMEOUT_S = 0.2
#: Main loop frame period (screen refresh, button polling).
UI_PERIOD_S = 1 / 30
#: Seconds between refreshes of slow-moving state (sync status, trust age, disk).
STATUS_PERIOD_S = 5.0
#: Someone stepping up changes the picture: mean absolute change of a small thumbnail
#: (grey levels) above which the screen switches to the live preview with a target box.
MOTION_THUMB = (64, 36)
MOTION_THRESHOLD = 6.0
SCANNING_HOLD_S = 2.0
#: The preview is redrawn at most this often (the Pi's CPU belongs to the decoder).
PREVIEW_PERIOD_S = 0.1
#: The scanner loop must come round at least this often (a read returns a frame, a
#: line, or nothing after READ_TIMEOUT_S) or systemd's watchdog is no longer petted and
#: restarts the hung process. A device fault is not a hang: the loop keeps turning,
#: the fault shows on the screen and the source reopens by itself.
SCANNER_STALL_S = 10.0
#: Pet the watchdog at most this often (WatchdogSec= is tens of seconds).
WATCHDOG_PING_S = 1.0
#: While the journal cannot be opened (disk full), try again this often.
JOURNAL_RETRY_S = 5.0
#: How long shutdown waits for an enrolment in flight (the provisioner is a daemon
#: thread; a cut-off enrolment changes nothing, see kiosk.provision.provision).
PROVISIONER_JOIN_S = 1.0


class Provisioner:
    """Applies verified provisioning QRs one at a time in its own thread, beside the gate.

    With an enrolment code that is a request to the collector (up to
    kiosk.provision.ENROL_TIMEOUT_S), which must never hold up the scanner thread (the
    next person's verdict) or the watchdog. `apply(scan)` returns the result's Event,
    which goes to `deliver` (the run loop's queue of events to signal).
    """

    def __init__(self, apply: Callable[[Scan], Event], deliver: Callable[[Event], None]) -> None:
        self._apply, self._deliver = apply, deliver
        self._pending: "queue.Queue[Scan | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="provisioner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, scan: Scan) -> None:
        self._pending.put(scan)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being applied."""
        return self._pending.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            scan = self._pending.get()
            try:
                if scan is None:
                    return
                try:
                    event = self._apply(scan)
                except Exception:  # noqa: BLE001 - one bad QR must not end provisioning for good
                    log.exception("provisioning QR not applied after an unexpected error")
                else:
                    self._deliver(event)
            finally:
                self._pending.task_done()

    def close(self) -> None:
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join(timeout=PROVISIONER_JOIN_S)


class Kiosk:
    """The appliance: a scanner worker feeding committed verdicts to the screen and pins.

    `run()` blocks in the calling thread (the main thread, which owns the screen) until
    the source ends, `stop()` is called, SIGTERM arrives or `max_scans` codes were read.
    """

    def __init__(self, cfg: Config, *, headless: bool = True, demo_dir: Path | None = None,
                 journal: Journal | None = None, on_event: Callable[[Event], None] | None = None,
                 max_scans: int | None = None) -> None:
        self.cfg = cfg
        self.headless = headless
        self.demo_dir = demo_dir
        self.max_scans = max_scans
        self.on_event = on_event
        self._own_journal = journal is None
        self.journal: Journal | None = journal
        self.pipeline: Pipeline | None = Pipeline(cfg, journal) if journal is not None else None
        if journal is None:
            self._open_journal()  # on a full disk run() shows the fault and tries again
        self.events: "queue.Queue[Event]" = queue.Queue()
        self.provisioner = Provisioner(self._apply_provisioning, self.events.put)
        self.guard_presses: "queue.Queue[float]" = queue.Queue()
        self.stop_event = threading.Event()
        self.source_done = threading.Event()
        self.source_open = threading.Event()  # the kiosk can read a code: systemd's READY=1
        self.faults: set[str] = set()
        self._faults_kept: tuple[str, ...] | None = None
        self.errors = 0
        self.logged = 0
        self.scans = 0                     # codes read (a held-up code too): what max_scans counts
        self._source: Any = None
        self._worker: threading.Thread | None = None
        self._last_turn_mono = time.monotonic()
        self._preview: Any = None          # newest frame, for the scanning screen
        self._motion_until = 0.0           # something moves in front of the camera until then
        self._thumb: Any = None
        self.display: Any = None           # set while run() runs: the screen and the pins
        self.pins: Any = None
        self.pin_history: list[tuple[float, str, int]] = []
        self.worker_error: KioskError | None = None

    # --- worker: source -> decode -> check -> journal --------------------------------
    def _work(self) -> None:
        from kiosk.scanner import EndOfStream, Frame, open_source
        from kiosk.scanner.decoder import Decoder
        from kiosk.scanner.stream import StreamDecoder

        # A live camera: the plain engine on every frame, the heavy work beside it on a
        # region of interest (a replayed still gets the whole chain at once).
        live = self.cfg.scanner.kind == "camera"
        decoder = StreamDecoder(self.cfg.decoder) if live else Decoder(self.cfg.decoder)
        decode = decoder.feed if live else decoder.decode
        try:
            with open_source(self.cfg, demo_dir=self.demo_dir) as source:
                self._source = source
                self.source_open.set()
                while not self.stop_event.is_set():
                    self._last_turn_mono = time.monotonic()
                    try:
                        item = source.read(READ_TIMEOUT_S)
                    except EndOfStream:
                        break
                    if item is None:
                        continue
                    try:
                        if isinstance(item, Frame):
                            self._note_frame(item.image)
                            codes = [(c.text, c.engine) for c in decode(item.image).codes]
                        else:
                            codes = [(item.text, "serial" if self.cfg.scanner.kind == "serial" else "text")]
                        for text, engine in codes:
                            self.scans += 1
                            self._process(text, source=self.cfg.scanner.kind, engine=engine)
                    except Exception:  # noqa: BLE001 - one bad frame must not stop the gate
                        self.errors += 1
                        log.exception("frame %s skipped after an unexpected error (%d so far)",
                                      getattr(item, "index", "-"), self.errors)
                    if self.max_scans is not None and self.scans >= self.max_scans:
                        return
        except KioskError as exc:
            # The source cannot even be set up (a wrong replay path, say): stop the kiosk
            # and say why, rather than run on with nothing to read.
            log.error("scanner stopped: %s", exc)
            self.worker_error = exc
            self.faults.add("scanner_fault")
        finally:
            self._source = None
            decoder.close()
            self.source_done.set()
            self.source_open.set()  # a source that could not be set up: READY, then the error

    def _note_frame(self, image: Any) -> None:
        """Keep the newest frame for the preview, and notice when someone steps up."""
        import cv2

        self._preview = image
        thumb = cv2.resize(image, MOTION_THUMB, interpolation=cv2.INTER_AREA).astype("int16")
        if self._thumb is not None and abs(thumb - self._thumb).mean() > MOTION_THRESHOLD:
            self._motion_until = time.monotonic() + SCANNING_HOLD_S
        self._thumb = thumb

    def _process(self, text: str, *, source: str, engine: str) -> None:
        try:
            event = self.pipeline.handle(text, source=source, engine=engine)
        except (JournalError, sqlite3.DatabaseError) as exc:  # SQLite's own: a read-only card
            # A journal that cannot commit must not signal: count it and show the fault,
            # a full disk only when it is one (a read-only card is not).
            from kiosk.health import disk_fault, is_disk_full_error

            self.errors += 1
            full = is_disk_full_error(exc) or disk_fault(self.cfg.journal_path())
            self.faults.add("disk_full" if full else "journal_fault")
            log.error("entry not committed, nothing signalled (%s): %s", "disk full" if full else "journal fault", exc)
            return
        if event is None:
            return
        self.faults.discard("disk_full")
        self.faults.discard("journal_fault")
        if event.entry is not None and event.entry.logged:
            self.logged += 1
        self.events.put(event)
        if event.provisioning:
            # Applied beside the gate, never here; queued after its "pending" event, so
            # the result always comes second on the screen.
            self.provisioner.submit(event.scan)

    def _apply_provisioning(self, scan: Scan) -> Event:
        assert self.pipeline is not None  # only a running pipeline makes provisioning events
        return self.pipeline.apply_provisioning(scan)

    def _open_journal(self) -> bool:
        """Open the journal and the pipeline on it. False while the disk is too full for
        that (the fault shows, the caller tries again); any other journal error raises."""
        from kiosk.health import disk_fault, is_disk_full_error

        try:
            journal = open_journal(self.cfg)
        except JournalError as exc:
            if not (is_disk_full_error(exc) or disk_fault(self.cfg.journal_path())):
                raise
            log.error("journal cannot be opened, disk full (trying again every %g s): %s", JOURNAL_RETRY_S, exc)
            return False
        try:
            self.pipeline = Pipeline(self.cfg, journal)
        except BaseException:
            journal.close()
            raise
        self.journal = journal
        return True

    # --- main thread: screen, lights, buzzer, relay, guard button --------------------
    def run(self) -> int:
        from kiosk import watchdog
        from kiosk.display import ScreenState, open_display
        from kiosk.display.signals import Signals

        previous_handler = on_sigterm(self.stop_event)
        try:
            with open_display(self.cfg, headless=self.headless) as display, Signals(self.cfg.pins) as pins:
                self.display, self.pins = display, pins
                # The button thread only queues the press; the journal write happens here.
                pins.when_guard(lambda: self.guard_presses.put(time.monotonic()))
                self.provisioner.start()
                try:
                    self._loop(display, pins, watchdog, ScreenState)
                finally:
                    watchdog.stopping()
                    self.stop_event.set()
                    if self._worker is not None:
                        self._worker.join(timeout=5)
                    self.provisioner.close()
                    self.pin_history = pins.history  # what the simulated pins did, kept past close()
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
        if self.worker_error is not None:
            raise self.worker_error
        return 0

    def _loop(self, display: Any, pins: Any, watchdog: Any, ScreenState: Any) -> None:
        verdict_until = next_status = next_preview = next_ping = next_open = 0.0
        idle: Any = None
        shown: Any = None
        ready = False
        while not self.stop_event.is_set():
            mono = time.monotonic()
            if not ready and (self.source_open.is_set() or self.pipeline is None):
                # Only once a code can be read (or the disk is full and the kiosk waits
                # for space, petting the watchdog): systemd then marks the unit active.
                watchdog.ready()
                ready = True
            if self.pipeline is None and mono >= next_open:
                # Started on a full disk: show the fault, keep petting the watchdog (the
                # process waits for space, it does not crash-loop) and try again.
                if self._open_journal():
                    log.warning("disk space is back: journal open")
                    next_status = mono
                else:
                    watchdog.status("disk full: waiting for space to open the journal")
                    next_open = mono + JOURNAL_RETRY_S
            if self.pipeline is not None and self._worker is None:
                self._worker = threading.Thread(target=self._work, name="scanner", daemon=True)
                self._worker.start()
            if mono >= next_status or idle is None:
                if self.pipeline is not None:
                    self.pipeline.refresh_rules()
                idle = self._idle_state(ScreenState)
                pins.set_faults(set(idle.faults))
                self._remember_faults(idle.faults)
                next_status = mono + STATUS_PERIOD_S
            event = self._next_event()
            if event is not None:
                pins.signal(event.verdict)
                shown = ScreenState.from_verdict(event.verdict, **self._common(idle))
                display.show(shown)
                verdict_until = time.monotonic() + self.cfg.display.verdict_seconds
                if self.on_event is not None:
                    self.on_event(event)
            elif verdict_until and mono >= verdict_until:
                verdict_until = 0.0
                pins.idle()
                shown = None
                if self._restart_requested():
                    log.warning("configuration changed by a provisioning QR: exiting for a restart")
                    return
            if not verdict_until:
                if mono < self._motion_until and self._preview is not None:
                    if mono >= next_preview:
                        shown = ScreenState(kind="scanning", preview=self._preview, **self._common(idle))
                        display.show(shown)
                        next_preview = mono + PREVIEW_PERIOD_S
                elif shown != idle:
                    shown = idle
                    display.show(idle)
            for ui_event in display.poll():
                if ui_event == "quit":
                    self.stop_event.set()
                elif ui_event == "guard":
                    self.guard_presses.put(mono)
            # Pet the watchdog while the scanner loop really comes round (or while the
            # kiosk waits for disk space to open its journal).
            if ready and (self.pipeline is None or self._scanner_alive()) and mono >= next_ping:
                watchdog.ping()
                next_ping = mono + WATCHDOG_PING_S
            if (self.source_done.is_set() and self.events.empty() and self.guard_presses.empty()
                    and self.provisioner.idle):
                if verdict_until and not self.headless:
                    continue  # let the last verdict be read before the window closes
                return

    def _next_event(self) -> Event | None:
        try:
            self.guard_presses.get_nowait()
        except queue.Empty:
            pass
        else:
            event = self._guard_event()
            if event is not None:
                return event
        try:
            return self.events.get(timeout=UI_PERIOD_S)
        except queue.Empty:
            return None

    def _restart_requested(self) -> bool:
        result = self.pipeline.provisioned if self.pipeline is not None else None
        return bool(result is not None and getattr(result, "restart", False))

    def _scanner_alive(self) -> bool:
        """The worker's read loop came round recently (a frame, a line, a timeout or a
        device fault): not hung in a read, a decode or a journal write."""
        if self._worker is None or not self._worker.is_alive():
            return False
        return time.monotonic() - self._last_turn_mono < SCANNER_STALL_S

    def _guard_event(self) -> Event | None:
        """The guard admits the last failed or reviewed person: logged as `override`."""
        from kiosk.display.guard import admit_last

        if self.pipeline is None or self.journal is None:
            return None  # no journal to log an override in (full disk): the door stays shut
        now = self.pipeline.clock()
        try:
            entry = admit_last(self.journal, now=now)  # within guard.GUARD_WINDOW_S
        except JournalError as exc:
            self.faults.add("disk_full")
            log.error("guard override not logged, door not opened: %s", exc)
            return None
        if entry is None:
            return None
        verdict = Verdict(Outcome.PASS, Reason.OVERRIDE, entry.scheme, entry.name_masked)
        return Event(Scan(text="override", source="guard", engine="button", at=now), verdict, entry)

    def _common(self, idle: Any) -> dict[str, Any]:
        return {"venue_name": idle.venue_name, "checkin_url": idle.checkin_url, "faults": idle.faults,
                "today_count": idle.today_count, "pending_uploads": idle.pending_uploads}

    def _idle_state(self, ScreenState: Any) -> Any:
        if self.pipeline is None or self.journal is None:
            return ScreenState(kind="idle", venue_name=self.cfg.venue.name, checkin_url=self.cfg.venue.checkin_url,
                               faults=("disk_full",))
        now = self.pipeline.clock()
        faults = set(self.faults)
        src = self._source
        if src is not None and getattr(src, "fault", None):
            faults.add("camera_fault" if self.cfg.scanner.kind in ("camera", "replay") else "scanner_fault")
        if not clock_plausible(now) or clock_synchronised_flag() is False:
            # Not synchronised yet (a Pi has no RTC): the banner tells the guard. Verdicts
            # go to review only when the clock is plainly wrong (see clock_plausible).
            faults.add("clock_unsynced")
        faults |= _status_faults(self.cfg, self.journal, self.pipeline.trust, now)
        today, pending = self.journal.screen_counts(now=now)
        return ScreenState(kind="idle", venue_name=self.cfg.venue.name, checkin_url=self.cfg.venue.checkin_url,
                           today_count=today, pending_uploads=pending, faults=tuple(sorted(faults)))

    def _remember_faults(self, faults: tuple[str, ...]) -> None:
        """Keep the faults on screen in the journal for `kiosk sync`'s heartbeat (written
        only when they change: no SD wear while nothing happens)."""
        from kiosk.sync.heartbeat import FAULTS_KEY

        if self.journal is None or faults == self._faults_kept:
            return
        try:
            self.journal.set_json(FAULTS_KEY, list(faults))
            self._faults_kept = faults
        except (JournalError, OSError, sqlite3.Error) as exc:  # a full card: the screen says so already
            log.debug("faults not kept for the heartbeat: %s", exc)

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.stop_event.set()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=5)
        self.provisioner.close()
        if self._own_journal and self.journal is not None:
            self.journal.close()

    def __enter__(self) -> "Kiosk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _status_faults(cfg: Config, journal: Journal, trust: Any, now: datetime) -> set[str]:
    """Faults derived from stored state: offline uploads, stale trust list, disk."""
    from kiosk.health import disk_fault
    from kiosk.sync import status as sync_status
    from kiosk.sync.fetcher import fetch_faults

    faults: set[str] = set()
    sync = sync_status(journal, now)
    if sync.offline:
        faults.add("offline")
    if sync.refused:
        faults.add("uploads_refused")
    if trust.stale(now, timedelta(hours=cfg.trust.max_age_hours)):
        # No trust list at all is as bad as a stale one (older than trust.max_age_hours
        # or past its own signed valid-until): nothing signed can pass.
        faults.add("trust_stale")
    faults |= fetch_faults(journal)   # collector_untrusted, or a signed document out of date
    fault = disk_fault(cfg.journal_path())
    if fault:
        faults.add(fault)
    return faults


def on_sigterm(stop: threading.Event) -> Any:
    """SIGTERM sets `stop` (systemd's stop, a clean shutdown). Returns the previous
    handler to restore, or None off the main thread, where signals cannot be caught."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: stop.set())
