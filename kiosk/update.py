"""Signed software updates in two slots that roll back by themselves (issue 24).

The shape follows Mender, RAUC and SWUpdate: a signed manifest names one artifact by its
SHA-256; the artifact is installed into the slot that is not running (A/B), the system
switches to it and runs it on trial, and only a trial that stays healthy is committed.
Anything else switches back to the slot that was good, without a technician.

Two halves, because the half that talks to the network must not be root:

1. `kiosk sync` (user kiosk) fetches the `update` document like every other signed
   document (same publishing key, same anti-rollback version, same valid-until). Its
   body is the *offer*:

       {"package": "kiosk", "version": "0.2.0", "file": "kiosk-0.2.0-py3-none-any.whl",
        "sha256": "<hex>", "size": 123456,
        "rollout": {"percent": 10, "venues": ["BV-01"], "devices": ["hn-bv-01"]}}

   A kiosk takes the offer when it is in the rollout (its venue or id is listed, or its
   bucket, SHA-256 of "<version>\\0<device id>" mod 100, is below `percent`: raising the
   percentage keeps everyone who already had it), the version is newer than the one
   running and not one that failed here before. It downloads the wheel from
   `/v1/update/files/<sha256>`, checks the SHA-256 and leaves envelope, wheel and
   `staged.json` in `<state dir>/update/`. Its decision goes into journal state
   `update.offer` and so into the heartbeat.

2. `kiosk update apply` (root; kiosk-update.service, started by kiosk-update.path when
   `staged.json` appears, and once at boot) copies what was staged into its own folder,
   checks the envelope again with the key it pinned on first use (the kiosk user can
   write kiosk.toml, so root does not take the key from there twice), the SHA-256, the
   version (newer than the running slot, never a known-bad one), then:

   - builds the other slot `/opt/kiosk/slots/{a,b}`: a fresh venv whose site-packages
     are hard links of the running slot's (no download, little SD wear; pip replaces
     files, it never writes into them) and `pip install --no-index` of the wheel;
   - checks `<slot>/bin/kiosk --version` names the new version;
   - writes state `trial` (durably), switches `/opt/kiosk/venv` (a symbolic link, the
     path every unit runs) with one rename, restarts kiosk and kiosk-sync;
   - commits when kiosk.service reaches `active` (Type=notify: READY=1 was sent) within
     `ready_timeout_s` and then stays up for `confirm_s` with no restart (a watchdog
     trip or a crash restarts it, which counts); otherwise switches back, restarts the
     good slot and records the version as bad, never to be tried again.

   A power cut during the trial leaves state `trial`; at boot the same command runs
   from the slot that was good (the `trusted_slot` in the state, read by the
   /opt/kiosk/bin/kiosk-update shim), and watches the trial again.

The outcome, `{state, version, from, at, detail}`, is in `/var/lib/kiosk-update/state.json`
(world-readable, no secrets), which the heartbeat carries to the fleet page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from kiosk.errors import TrustError
from kiosk.files import atomic_write, fsync_dir
from kiosk.model import iso_utc, utcnow

__all__ = ["Offer", "parse_offer", "version_key", "bucket", "selected", "stage", "Layout", "Systemd",
           "Updater", "read_state", "describe", "OFFER_KEY", "DOC_NAME", "STATE_FILE", "wheel_version"]

log = logging.getLogger("kiosk.update")

DOC_NAME = "update"
#: Journal state: the kiosk's decision on the last offer (heartbeat).
OFFER_KEY = "update.offer"
#: The root half's state (world-readable). $KIOSK_UPDATE_STATE moves it (tests).
STATE_FILE = Path("/var/lib/kiosk-update/state.json")
#: Plain release numbers only: 1.2 or 0.10.3 (no pre-releases on a hospital door).
VERSION_RE = re.compile(r"\d{1,6}(?:\.\d{1,6}){0,3}")
WHEEL_RE = re.compile(r"kiosk-(\d{1,6}(?:\.\d{1,6}){0,3})-py3-none-any\.whl")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: The largest wheel a kiosk downloads (the kiosk's own is well under 2 MB).
MAX_WHEEL_BYTES = 16 * 1024 * 1024
#: Units restarted onto a new slot, and the one whose READY=1 decides.
UNITS = ("kiosk.service", "kiosk-sync.service")
MAIN_UNIT = "kiosk.service"


def state_file() -> Path:
    return Path(os.environ.get("KIOSK_UPDATE_STATE") or STATE_FILE)


def version_key(version: str) -> tuple[int, ...]:
    """Comparable form of a release number; ValueError for anything else.

    >>> version_key("0.10.1") > version_key("0.9.9"), version_key("1.0") == version_key("1.0.0")
    (True, True)
    """
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ValueError(f"{version!r} is not a release number such as 1.2.3")
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class Offer:
    version: str
    file: str
    sha256: str
    size: int
    percent: int = 100
    venues: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"package": "kiosk", "version": self.version, "file": self.file, "sha256": self.sha256,
                "size": self.size, "rollout": {"percent": self.percent, "venues": list(self.venues),
                                               "devices": list(self.devices)}}


def parse_offer(body: bytes) -> Offer:
    """The update document's body, checked field by field (TrustError when bad)."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("package") != "kiosk":
            raise ValueError('expected an object with "package": "kiosk"')
        version, file, digest, size = data["version"], data["file"], data["sha256"], data["size"]
        version_key(version)
        match = WHEEL_RE.fullmatch(file) if isinstance(file, str) else None
        if not match or match.group(1) != version:
            raise ValueError(f"file {file!r} is not kiosk-{version}-py3-none-any.whl")
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_WHEEL_BYTES:
            raise ValueError(f"size must be 1..{MAX_WHEEL_BYTES} bytes")
        rollout = data.get("rollout") or {}
        percent = rollout.get("percent", 100)
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise ValueError("rollout.percent must be a whole number 0..100")
        venues, devices = rollout.get("venues", []), rollout.get("devices", [])
        for name, items in (("venues", venues), ("devices", devices)):
            if not isinstance(items, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in items):
                raise ValueError(f"rollout.{name} must be a list of codes")
    except (ValueError, KeyError, TypeError) as exc:
        raise TrustError(f"update offer is malformed: {exc}") from None
    return Offer(version, file, digest, size, percent, tuple(venues), tuple(devices))


def bucket(version: str, device_id: str) -> int:
    """0..99: the device's place in this version's staged rollout."""
    digest = hashlib.sha256(f"{version}\0{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def selected(offer: Offer, device_id: str, venue_code: str) -> bool:
    """Is this kiosk in the offer's rollout?

    >>> o = Offer("1.1", "kiosk-1.1-py3-none-any.whl", "0" * 64, 1, percent=0, venues=("BV-01",))
    >>> selected(o, "a", "BV-01"), selected(o, "a", "TH-02")
    (True, False)
    """
    if venue_code and venue_code in offer.venues or device_id in offer.devices:
        return True
    return bucket(offer.version, device_id) < offer.percent


def wheel_version(data: bytes) -> str:
    """The Version: of the kiosk wheel in `data` (ValueError when it is not one)."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"kiosk-[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise ValueError("no kiosk-*.dist-info/METADATA inside")
            meta = zf.read(names[0]).decode("utf-8", "replace")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a wheel (zip): {exc}") from None
    version = _metadata_version(meta)
    if version is None:
        raise ValueError("its METADATA has no Version")
    return version


def _metadata_version(text: str) -> str | None:
    """The `Version:` of a distribution's METADATA text (a wheel's or an installed one's)."""
    found = re.search(r"^Version: *(\S+)", text, re.M)
    return found.group(1) if found else None


def read_state(path: Path | None = None) -> dict[str, Any]:
    """The root half's last outcome ({} when it never ran or the file is unreadable)."""
    try:
        data = json.loads((path or state_file()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- half 1: the kiosk user stages an offer (an importer of kiosk.sync.fetcher) ---------

def stage(fetcher: Any, doc: Any) -> None:
    """Importer for the `update` document: decide, download, check, stage."""
    from kiosk import __version__

    cfg = getattr(fetcher, "config", None)
    offer = parse_offer(doc.body)
    now = fetcher.clock()

    def decide(decision: str, detail: str) -> None:
        fetcher.journal.set_json(OFFER_KEY, {"version": offer.version, "decision": decision,
                                             "detail": detail, "at": iso_utc(now)}, now=now)
        log.info("update %s: %s (%s)", offer.version, decision, detail)

    if cfg is None:
        return decide("ignored", "no kiosk configuration to judge the rollout by")
    if not cfg.update.enabled:
        return decide("ignored", "update.enabled is false in the config")
    root = read_state()
    if version_key(offer.version) <= version_key(__version__):
        return decide("refused", f"not newer than the running {__version__} (a downgrade or the same)")
    if offer.version in root.get("bad", []):
        return decide("refused", f"{offer.version} failed its trial here before")
    if not selected(offer, cfg.device.id, cfg.venue.code):
        return decide("waiting", f"not in this rollout ({offer.percent} %, bucket "
                                 f"{bucket(offer.version, cfg.device.id)})")
    data = fetcher.get_bytes(f"/v1/update/files/{offer.sha256}", what=f"update {offer.file}")
    if len(data) != offer.size or hashlib.sha256(data).hexdigest() != offer.sha256:
        raise TrustError(f"update {offer.file} does not match the SHA-256 in the signed offer")
    folder = cfg.state_path() / "update"
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        for old in folder.glob("kiosk-*.whl"):  # one staged wheel at a time on the card
            old.unlink()
        atomic_write(folder / offer.file, data, mode=0o644)
        atomic_write(folder / "offer.cose", fetcher.last_envelope, mode=0o644)
        # Last: its appearance is what starts kiosk-update.service (kiosk-update.path).
        atomic_write(folder / "staged.json", json.dumps({"version": offer.version, "file": offer.file,
                                                         "at": iso_utc(now)}), mode=0o644)
    except OSError as exc:
        raise TrustError(f"cannot stage update {offer.version} in {folder}: {exc.strerror or exc}") from None
    decide("staged", f"downloaded {offer.file} ({offer.size} bytes), SHA-256 checked")


# --- half 2: root installs, switches, watches and rolls back -----------------------------

@dataclass
class Layout:
    prefix: Path = Path("/opt/kiosk")
    staged: Path = Path("/var/lib/kiosk/update")
    state_dir: Path = field(default_factory=lambda: state_file().parent)

    @property
    def link(self) -> Path:
        return self.prefix / "venv"

    def slot(self, name: str) -> Path:
        return self.prefix / "slots" / name

    def current(self) -> str:
        """The slot /opt/kiosk/venv points at ('a' or 'b')."""
        target = os.readlink(self.link) if self.link.is_symlink() else ""
        name = Path(target).name
        if name not in ("a", "b"):
            raise TrustError(f"{self.link} is not a link to slots/a or slots/b (run install.sh once)")
        return name


def slot_version(slot: Path) -> str | None:
    for meta in slot.glob("lib/python3*/site-packages/kiosk-*.dist-info/METADATA"):
        version = _metadata_version(meta.read_text(encoding="utf-8", errors="replace"))
        if version:
            return version
    return None


class Systemd:
    """The two things the updater asks of systemd."""

    def restart(self, *units: str) -> None:
        subprocess.run(["systemctl", "restart", "--no-block", *units], check=True, capture_output=True)

    def show(self, unit: str) -> dict[str, str]:
        out = subprocess.run(["systemctl", "show", unit, "-p", "ActiveState", "-p", "SubState", "-p",
                              "NRestarts", "-p", "Result", "-p", "ExecMainStatus"],
                             capture_output=True, text=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _read_nofollow(path: Path, limit: int) -> bytes:
    """Read a file the kiosk user staged without following a planted link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TrustError(f"{path} is larger than {limit} bytes")
    return data


class Updater:
    """`kiosk update apply`: one pass (resolve a pending trial, then a staged offer)."""

    def __init__(self, layout: Layout, *, publisher_key: str, services: Any = None,
                 ready_timeout_s: float = 120.0, confirm_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.layout = layout
        self.config_key = publisher_key.strip()
        self.services = services or Systemd()
        self.ready_timeout_s = ready_timeout_s
        self.confirm_s = confirm_s
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic
        self.state_path = layout.state_dir / "state.json"

    # --- state ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return read_state(self.state_path)

    def _save(self, **changes: Any) -> dict[str, Any]:
        state = {**self.state(), **changes, "at": iso_utc(self.clock())}
        self.layout.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(self.state_path, json.dumps(state, sort_keys=True), mode=0o644)
        return state

    def _outcome(self, state: str, version: str, previous: str | None, detail: str, **extra: Any) -> dict:
        log.info("update %s: %s (%s)", version, state, detail)
        return self._save(state=state, version=version, **{"from": previous}, detail=detail, **extra)

    def _pinned_key(self) -> str:
        """The publishing key root trusts: pinned from kiosk.toml on first use."""
        pin = self.layout.state_dir / "publisher_key"
        if pin.exists():
            pinned = pin.read_text().strip()
            if self.config_key and self.config_key != pinned:
                raise TrustError(f"sync.publisher_key in the config differs from the key pinned in {pin}; "
                                 f"if the health department rotated its key, delete {pin} as root")
            return pinned
        if not self.config_key:
            raise TrustError("no sync.publisher_key: updates are refused")
        self.layout.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(pin, self.config_key + "\n", mode=0o600)
        return self.config_key

    # --- the pass ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        state = self.state()
        if state.get("state") == "trial":
            return self._watch(state["version"], state.get("from"), state["slot"], state["trusted_slot"],
                               restarted=False)
        if not (self.layout.staged / "staged.json").exists():
            return state
        try:
            return self._apply_staged()
        finally:  # judged, whatever the outcome: kiosk-update.path must not start it again
            (self.layout.staged / "staged.json").unlink(missing_ok=True)

    def _apply_staged(self) -> dict[str, Any]:
        from kiosk.checks.signed import SignedDocError, load_public_key, open_document

        current = self.layout.current()
        running = slot_version(self.layout.slot(current)) or "0"
        staged = self.layout.staged
        try:
            marker = json.loads(_read_nofollow(staged / "staged.json", 4096))
            envelope = _read_nofollow(staged / "offer.cose", 1024 * 1024)
        except (OSError, ValueError, TrustError) as exc:
            return self._outcome("refused", "?", running, f"staged files unreadable: {exc}")
        version = str(marker.get("version", "?"))[:40]
        try:
            key = load_public_key(self._pinned_key())
            doc = open_document(envelope, key, name=DOC_NAME, now=self.clock(),
                                held_version=self.state().get("doc_version"))
            offer = parse_offer(doc.body)
        except (SignedDocError, TrustError, ValueError) as exc:
            return self._outcome("refused", version, running, f"offer refused: {exc}")
        version = offer.version
        if version_key(version) <= version_key(running):
            return self._outcome("refused", version, running, f"a downgrade (or the same): running {running}")
        if version in self.state().get("bad", []):
            return self._outcome("refused", version, running, "failed its trial here before")
        try:
            wheel = _read_nofollow(staged / offer.file, MAX_WHEEL_BYTES)
        except OSError as exc:
            return self._outcome("refused", version, running, f"wheel unreadable: {exc}")
        if hashlib.sha256(wheel).hexdigest() != offer.sha256 or wheel_version(wheel) != version:
            return self._outcome("refused", version, running, "the wheel does not match the signed offer")
        other = "b" if current == "a" else "a"
        try:
            self._build(other, offer.file, wheel, version)
        except (OSError, subprocess.SubprocessError, TrustError) as exc:
            return self._outcome("failed", version, running, f"installing into slot {other} failed: {exc}"[:300])
        self._save(state="trial", version=version, **{"from": running}, slot=other, trusted_slot=current,
                   doc_version=doc.version, detail=f"on trial in slot {other}")
        self._switch(other)
        return self._watch(version, running, other, current, restarted=True)

    def _build(self, name: str, file: str, wheel: bytes, version: str) -> None:
        layout = self.layout
        src, dst = layout.slot(layout.current()), layout.slot(name)
        shutil.rmtree(dst, ignore_errors=True)
        base = _base_python(src)
        subprocess.run([base, "-m", "venv", "--without-pip", str(dst)], check=True, capture_output=True)
        (site_src,) = src.glob("lib/python3*/site-packages")
        site_dst = dst / site_src.relative_to(src)
        shutil.rmtree(site_dst, ignore_errors=True)
        shutil.copytree(site_src, site_dst, symlinks=True, copy_function=_link_or_copy)
        wheels = layout.state_dir / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        wheels.mkdir(mode=0o700, parents=True)
        (wheels / file).write_bytes(wheel)
        result = subprocess.run([str(dst / "bin" / "python"), "-m", "pip", "install", "--no-index",
                                 "--find-links", str(wheels), "--disable-pip-version-check",
                                 "--no-warn-script-location", "-q", f"kiosk=={version}"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines() or ["pip failed"]
            raise TrustError(f"pip: {said[-1]}")
        said = subprocess.run([str(dst / "bin" / "kiosk"), "--version"], capture_output=True, text=True,
                              timeout=120)
        if said.returncode != 0 or version not in said.stdout:
            raise TrustError(f"{dst}/bin/kiosk --version said {said.stdout.strip() or said.stderr.strip()[-200:]!r}")
        os.sync()

    def _switch(self, name: str) -> None:
        tmp = self.layout.prefix / ".venv.switch"
        tmp.unlink(missing_ok=True)
        os.symlink(f"slots/{name}", tmp)
        os.replace(tmp, self.layout.link)
        fsync_dir(self.layout.prefix)

    def _watch(self, version: str, previous: str | None, slot: str, trusted: str, *, restarted: bool) -> dict:
        if restarted:
            self.services.restart(*UNITS)
        start = self.monotonic()
        ready_at = None
        first = None
        while self.monotonic() - start < self.ready_timeout_s:
            s = self.services.show(MAIN_UNIT)
            if s.get("ActiveState") == "active" and s.get("SubState") == "running":
                ready_at, first = self.monotonic(), s.get("NRestarts", "0")
                break
            self.sleep(1.0)
        if ready_at is None:
            s = self.services.show(MAIN_UNIT)
            return self._rollback(version, previous, trusted,
                                  f"did not reach READY=1 within {self.ready_timeout_s:g} s "
                                  f"({s.get('ActiveState')}/{s.get('SubState')}, result {s.get('Result')}, "
                                  f"exit status {s.get('ExecMainStatus')})")
        while self.monotonic() - ready_at < self.confirm_s:
            self.sleep(1.0)
            s = self.services.show(MAIN_UNIT)
            if s.get("ActiveState") != "active" or s.get("NRestarts", "0") != first:
                return self._rollback(version, previous, trusted,
                                      f"restarted during its {self.confirm_s:g} s trial "
                                      f"(result {s.get('Result')}, exit status {s.get('ExecMainStatus')})")
        return self._outcome("installed", version, previous, f"ran {self.confirm_s:g} s after READY=1 in slot {slot}",
                             slot=slot, trusted_slot=slot)

    def _rollback(self, version: str, previous: str | None, trusted: str, why: str) -> dict:
        self._switch(trusted)
        bad = sorted(set(self.state().get("bad", [])) | {version}, key=version_key)
        # The outcome first: the restarted kiosk-sync's first heartbeat carries it.
        state = self._outcome("rolled_back", version, previous, f"{why}; back on {previous} (slot {trusted})",
                              slot=trusted, trusted_slot=trusted, bad=bad)
        self.services.restart(*UNITS)
        return state


def _base_python(slot: Path) -> str:
    """The system interpreter the running slot was made from (pyvenv.cfg's home)."""
    try:
        cfg = dict(line.split("=", 1) for line in (slot / "pyvenv.cfg").read_text().splitlines() if "=" in line)
        home = Path(cfg["home"].strip())
        names = [p.name for p in slot.glob("lib/python3*")]  # python3.11: the same minor version
        for name in names + ["python3"]:
            if (home / name).exists():
                return str(home / name)
    except (OSError, KeyError):
        pass
    return getattr(sys, "_base_executable", sys.executable)


def describe(outcome: Mapping[str, Any], *, at: bool = False) -> str:
    """One line on an update outcome (`kiosk update status`, the fleet page):
    'rolled_back 0.3.0 (from 0.2.0): did not reach READY=1 ...'."""
    when = f" at {outcome.get('at')}" if at else ""
    return (f"{outcome.get('state')} {outcome.get('version')} (from {outcome.get('from')}){when}: "
            f"{outcome.get('detail') or ''}").strip()


def summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the heartbeat carries of the root half's state."""
    return {k: state.get(k) for k in ("state", "version", "from", "at", "detail") if state.get(k) is not None}
