"""A stolen kiosk or SD card reveals no one and forges nothing (issue 11).

A day of scans (chip ID cards, signed declarations, vaccine passports and one forged
passport) goes through the real pipeline and journal with sealing on, is uploaded to a
real collector, and the kiosk's whole state (journal + WAL, state dir, config) is copied
as a thief would. With only that copy, no ID number, name or birth date is found, in
clear or as a hash that any key found on the copy opens. The collector, which holds the
seal key, still traces a case across two kiosks, including entries logged before the
kiosks' first sync, and never counts the forged passport's claimed person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import shutil
import sqlite3
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from collector_helpers import ADMIN_TOKEN, PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk.checks.denylist import MIN_N, make_denylist
from kiosk.checks import hd1
from kiosk.checks.trust import TrustStore
from kiosk.config import load_config
from kiosk.demo.material import ISSUER, demo_material, make_dcc
from kiosk.errors import ConfigError
from kiosk.journal import Journal
from kiosk.pipeline import Pipeline, open_journal
from kiosk.seal import generate_keypair
from kiosk.sync.fetcher import Fetcher
from kiosk.sync.uploader import Uploader

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)  # 08:00 in Vietnam
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
MIDDLE = ["Văn", "Thị", "Minh", "Thu", "Quốc", "Ngọc"]
GIVEN = ["An", "Bình", "Cường", "Dung", "Giang", "Hải", "Khoa", "Linh", "Mai", "Nam", "Oanh", "Phúc"]
FORGED_ID = "URN:UVCI:01:VN:FORGED#Z"
FORGED_NAME = ("Kiều", "Văn Giả")


def _people(n: int, offset: int) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        k = i + offset
        name = f"{FAMILY[k % 10]} {MIDDLE[k % 6]} {GIVEN[(k * 7) % 12]}"
        dob = datetime(1950 + k % 50, 1 + k % 12, 1 + k % 28)
        out.append({"id": f"0{79 + k % 3}{190000000 + 7919 * k:09d}"[:12], "name": name,
                    "dob": dob.strftime("%Y-%m-%d"), "dob_cccd": dob.strftime("%d%m%Y"),
                    "uvci": f"URN:UVCI:01:VN:P{k:05d}#Q"})
    return out


def _day(material, people, *, start: datetime) -> list[tuple[datetime, str, dict[str, str]]]:
    """(time, QR text, person): each person shows an ID card, a declaration or a passport."""
    scans = []
    for i, p in enumerate(people):
        at = start + timedelta(minutes=7 * i)
        kind = i % 3
        if kind == 0:
            text = f"{p['id']}|025{i:06d}|{p['name']}|{p['dob_cccd']}|Nữ|{i} Lê Lợi, Quận 1|01022022"
        elif kind == 1:
            text = hd1.issue_declaration(material.hd1_key, material.hd1_kid, issuer=ISSUER, name=p["name"],
                                         dob=p["dob"], id_number=p["id"], phone=f"0901{i:06d}", now=at)
        else:
            family, _, rest = p["name"].partition(" ")
            vac = {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                   "dn": 2, "sd": 2, "dt": (at - timedelta(days=40)).date().isoformat(), "co": "VN",
                   "is": "Bộ Y tế Việt Nam", "ci": p["uvci"]}
            text = make_dcc(material.dsc_key, material.dsc_kid, now=at, name=(family, rest), dob=p["dob"],
                            kind="v", entry=vac)
        scans.append((at, text, p))
    return scans


def _forged(at: datetime) -> str:
    """A vaccine passport signed by a key no trust list holds, using the demo signer's kid."""
    material = demo_material(T0)
    vac = {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
           "dn": 2, "sd": 2, "dt": (at - timedelta(days=40)).date().isoformat(), "co": "VN",
           "is": "Bộ Y tế Việt Nam", "ci": FORGED_ID}
    return make_dcc(ec.generate_private_key(ec.SECP256R1()), material.dsc_kid, now=at, name=FORGED_NAME,
                    dob="1980-01-01", kind="v", entry=vac)


def _kiosk_day(tmp_path: Path, collector, *, device: str, venue: str, scans, public: str,
               deny: list[str] = ()) -> Path:
    """One kiosk, sealed, scanning its day before it ever synced; then it syncs. With
    `deny`, it first fetches a keyed deny list of those subject keys from the collector.
    Returns a copy of its whole state taken while it runs (journal, WAL, state dir, config)."""
    state = tmp_path / device / "state"
    state.mkdir(parents=True)
    token = collector.token(device, venue=venue, since=T0 - timedelta(days=1))
    config = tmp_path / device / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "{device}"\nstate_dir = "{state}"\n[venue]\ncode = "{venue}"\n'
        f'[journal]\nseal_key = "{public}"\n'
        f'[sync]\ncollector_url = "{collector.url}"\ndevice_token = "{token}"\n'
        f'publisher_key = "{PUBLISHER_KEY}"\n', encoding="utf-8")
    cfg = load_config(config)
    material = demo_material(T0)
    with open_journal(cfg) as journal:
        TrustStore(journal).import_list(material.trust_list_json, now=T0)
        if deny:
            publish_raw(collector.store, "denylist", make_denylist(deny, n=MIN_N), now=datetime.now(timezone.utc))
            with Fetcher.from_config(cfg, journal, token=token) as fetcher:
                assert fetcher.fetch("denylist") == "updated"
        clock = [T0]
        pipe = Pipeline(cfg, journal, clock=lambda: clock[0])
        for at, text, p in scans:
            clock[0] = at
            event = pipe.handle(text, source="camera", engine="zxing")
            assert event.entry.logged, event.verdict
            denied = any(k in deny for k in (f"cccd:{p['id']}", f"dcc:{p['uvci']}")) if p else False
            assert (event.verdict.reason.value == "denied") == denied, (p, event.verdict)
        with Uploader.from_config(cfg, journal, token=token) as uploader:
            assert uploader.drain().left == 0
        # The thief's copy, taken from the running kiosk: the WAL has not been checkpointed.
        stolen = tmp_path / f"stolen-{device}"
        shutil.copytree(tmp_path / device, stolen)
    assert any(p.name.endswith("-wal") for p in stolen.rglob("*"))
    return stolen


# --- the thief's tools ----------------------------------------------------------------

def _forms(p: dict[str, str]) -> dict[str, list[bytes]]:
    """Every way the person's data could be written down."""
    def variants(text: str) -> list[str]:
        plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
        ascii_ = "".join(ch for ch in plain if not unicodedata.combining(ch))
        return [unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text), ascii_,
                ascii_.upper(), ascii_.upper().replace(" ", "<")]
    return {
        "id": [p["id"].encode()],
        "name": [v.encode() for v in variants(p["name"])] + [v.encode("utf-16-le") for v in variants(p["name"])[:1]],
        "dob": [p["dob"].encode(), p["dob_cccd"].encode()],
        "uvci": [p["uvci"].encode()],
    }


def _identifier_forms(p: dict[str, str], material) -> list[str]:
    idh = hd1.hash_id(p["id"], hd1.idh_key(material.hd1_key))
    public_idh = hashlib.sha256(f"{ISSUER}|{p['id']}".encode()).hexdigest()
    bases = [p["id"], f"cccd:{p['id']}", f"dcc:{p['uvci']}", p["uvci"], idh, f"hd1:{idh}", public_idh,
             f"hd1:{public_idh}"]
    return bases + [f"subject:{b}" for b in bases] + [f"code:{b}" for b in bases]


def _keys_on(copy: Path) -> list[bytes]:
    """Every secret-looking value found anywhere on the copy, decoded every way."""
    texts: set[str] = set()
    for path in copy.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        texts.update(m.decode() for m in re.findall(rb"[0-9A-Za-z+/=_-]{16,}", data))
        if path.suffix == ".db":
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                for row in conn.execute(f'SELECT * FROM "{name}"').fetchall():
                    texts.update(str(v) for v in row if isinstance(v, str))
            conn.close()
    keys: set[bytes] = {b""}
    for t in texts:
        keys.add(t.encode())
        for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
            try:
                keys.add(decode(t))
            except (ValueError, binascii.Error):
                pass
    return sorted(keys)


def _hashes_on(copy: Path) -> set[str]:
    """Every 64-hex-digit run in the copy's bytes, at every offset (SQLite packs cells
    side by side, so a hash may run straight into the next value), and every binary value
    of a hash's length in the copy's databases (the journal keeps 16-byte HMACs), as hex."""
    found: set[str] = set()
    for path in copy.rglob("*"):
        if path.is_file():
            for m in re.findall(rb"[0-9a-fA-F]{64,}", path.read_bytes()):
                text = m.decode().lower()
                found.update(text[i:i + 64] for i in range(len(text) - 63))
            if path.suffix == ".db":
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    for row in conn.execute(f'SELECT * FROM "{name}"').fetchall():
                        found.update(v.hex() for v in row if isinstance(v, bytes) and 16 <= len(v) <= 32)
                conn.close()
    return found


def test_a_copy_of_a_kiosk_after_a_day_of_scans_reveals_no_one(tmp_path):
    private, public = generate_keypair()
    material = demo_material(T0)
    people = _people(24, 0)
    scans = _day(material, people, start=T0) + [(T0 + timedelta(hours=5), _forged(T0 + timedelta(hours=5)), None)]
    with RunningCollector(open_store("sqlite", tmp_path), seal_private_key=private) as collector:
        # Two of the day's people are on the deny list (an ID card and a passport).
        stolen = _kiosk_day(tmp_path, collector, device="kiosk-1", venue="CHO-BEN-THANH", scans=scans,
                            public=public, deny=[f"cccd:{people[0]['id']}", f"dcc:{people[2]['uvci']}"])
        assert collector.store.count_entries(device_id="kiosk-1") == len(scans)
    raw = b"".join(p.read_bytes() for p in stolen.rglob("*") if p.is_file())
    assert raw.count(b"SQLite format 3") >= 1 and len(raw) > 10_000  # the copy is the real journal
    # 1. Nothing in clear.
    forged = {"id": [FORGED_ID.encode()], "name": [b"Gi\xe1\xba\xa3", "Văn Giả".encode()]}
    for p in people:
        for what, forms in _forms(p).items():
            for form in forms:
                assert form not in raw, f"{what} of {p['name']} in clear on the card: {form!r}"
    for what, forms in forged.items():
        for form in forms:
            assert form not in raw, f"forged {what} on the card"
    # 2. No hash that a key on the copy opens: every identifier form, with every secret
    # found on the copy, as salted SHA-256 (either order) and HMAC-SHA256.
    on_card = _hashes_on(stolen)
    keys = _keys_on(stolen)

    assert len(on_card) > 20 and len(keys) > 20
    tried = 0
    for p in people:
        for form in (f.encode() for f in _identifier_forms(p, material)):
            for key in keys:
                candidates = {hashlib.sha256(key + form).hexdigest(), hashlib.sha256(form + key).hexdigest(),
                              hmac.new(key, form, hashlib.sha256).hexdigest()}
                candidates |= {c[:32] for c in candidates}  # truncated to 16 bytes, as the journal keeps them
                tried += 3
                hit = candidates & on_card
                assert not hit, f"{p['id']} opened with a key found on the card ({form!r})"
    assert tried > 100_000


def test_tracing_across_two_sealed_kiosks_and_the_forged_passport(tmp_path):
    """The collector keys each person from the sealed identifier: a case is traced across
    two kiosks that logged before their first sync; a forged passport names no one."""
    private, public = generate_keypair()
    material = demo_material(T0)
    case, neighbour, other = _people(3, 40)
    forged_at = T0 + timedelta(minutes=3)
    market = [(T0, _day(material, [case], start=T0)[0][1], case),
              (T0 + timedelta(minutes=2), _day(material, [neighbour], start=T0)[0][1], neighbour),
              (forged_at, _forged(forged_at), None)]
    bus_at = T0 + timedelta(hours=3)
    bus = [(bus_at, _day(material, [case], start=bus_at)[0][1], case),
           (bus_at + timedelta(hours=6), _day(material, [other], start=bus_at)[0][1], other)]
    with RunningCollector(open_store("sqlite", tmp_path), seal_private_key=private) as collector:
        _kiosk_day(tmp_path, collector, device="kiosk-market", venue="CHO-BEN-THANH", scans=market, public=public)
        _kiosk_day(tmp_path, collector, device="kiosk-bus", venue="BX-MIEN-DONG", scans=bus, public=public)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        answer = requests.get(f"{collector.url}/v1/trace", headers=admin, timeout=10, params={
            "subject": f"cccd:{case['id']}", "window_minutes": 30}).json()
        forged = requests.get(f"{collector.url}/v1/trace", headers=admin, timeout=10, params={
            "subject": f"dcc:{FORGED_ID}", "at": forged_at.isoformat()}).json()
        at_market = requests.get(f"{collector.url}/v1/trace", headers=admin, timeout=10, params={
            "venue": "CHO-BEN-THANH", "at": forged_at.isoformat(), "window_minutes": 30}).json()
    assert sorted(w["venue"] for w in answer["windows"]) == ["BX-MIEN-DONG", "CHO-BEN-THANH"]
    opened = {p["id"]: p for p in answer["people"]}
    named = {(p["venue_code"], p["is_case"], case["name"] in (p["personal"] or ""),
              neighbour["name"] in (p["personal"] or "")) for p in opened.values()}
    assert named == {("CHO-BEN-THANH", True, True, False), ("CHO-BEN-THANH", False, False, True),
                     ("CHO-BEN-THANH", False, False, False),  # the forged scan: no one
                     ("BX-MIEN-DONG", True, True, False)}
    assert all(p["opened"] for p in opened.values() if p["personal"])
    # The forged passport's claimed person appears in no answer, by key or by name.
    assert forged["count"] == 0
    for person in at_market["people"]:
        text = (person["personal"] or "") + (person["name_masked"] or "")
        assert FORGED_ID not in text and "Kiều" not in text and "Giả" not in text
        if person["reason"] == "unknown_key":
            assert person["subject_hash"] is None and person["personal"] is None


def test_a_kiosk_without_the_seal_key_refuses_a_remote_collector(tmp_path):
    cfg = load_config(None, search=False, overrides={
        "device.state_dir": str(tmp_path), "sync.collector_url": "https://collector.soyte.example"})
    with pytest.raises(ConfigError, match="journal.seal_key") as err:
        open_journal(cfg)
    assert "collector keygen" in str(err.value)
    assert not (tmp_path / "journal.db").exists()  # nothing was logged unsealed
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "kiosk.cli", "--set", f"device.state_dir={tmp_path}", "--set",
                          "sync.collector_url=https://collector.soyte.example", "--set", "scanner.kind=stdin",
                          "run", "--headless", "--max-scans", "1"], input="079190000123|x\n", capture_output=True,
                         text=True, timeout=120, env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert run.returncode == 2 and "key 'journal.seal_key' is required" in run.stderr
    assert not (tmp_path / "journal.db").exists()


def test_config_show_masks_the_device_token(tmp_path):
    import subprocess
    import sys

    token = "tok-" + "s3cr3t" * 6
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[sync]\ndevice_token = "{token}"\n', encoding="utf-8")
    run = [sys.executable, "-m", "kiosk.cli", "--config", str(config), "config", "show"]
    shown = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert token not in shown.stdout and 'device_token = "***"' in shown.stdout
    revealed = subprocess.run([*run, "--reveal-secrets"], capture_output=True, text=True, timeout=60)
    assert f'device_token = "{token}"' in revealed.stdout


def test_a_non_utf8_scanner_line_is_not_logged(caplog):
    """Regression: the whole ID card line went to journald as hex."""
    import logging

    from kiosk.scanner.serialport import decode_line

    line = "079190000123|025123456|Nguyễn Thị Hoa|15041990".encode("cp1258", errors="replace") + b"\xff"
    with caplog.at_level(logging.DEBUG):
        decode_line(line, where="serial /dev/qrscanner")
    logged = caplog.text
    assert "not valid UTF-8" in logged
    assert "079190000123" not in logged and line.hex()[:24] not in logged and "Hoa" not in logged


def test_doctor_says_why_a_kiosk_without_the_seal_key_will_not_start(tmp_path):
    from kiosk.doctor import FAIL, OK, Doctor

    remote = load_config(None, search=False, overrides={
        "device.state_dir": str(tmp_path), "sync.collector_url": "https://collector.soyte.example"})
    (check,) = [c for c in Doctor(remote).run() if c.name == "sealing"]
    assert check.status == FAIL and "journal.seal_key" in check.detail and "refuse to start" in check.detail
    _, public = generate_keypair()
    sealed = load_config(None, search=False, overrides={
        "device.state_dir": str(tmp_path), "sync.collector_url": "https://collector.soyte.example",
        "journal.seal_key": public})
    (check,) = [c for c in Doctor(sealed).run() if c.name == "sealing"]
    assert check.status == OK


def test_kiosk_run_prints_and_logs_no_personal_data(tmp_path):
    """`kiosk run` as systemd runs it (stdout and stderr go to journald): an ID card, a
    passport, and a passport whose birth date the schema refuses (its check quoted it)."""
    import subprocess
    import sys

    material = demo_material(T0)
    (p,) = _people(1, 60)
    family, _, rest = p["name"].partition(" ")
    vac = {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
           "dn": 2, "sd": 2, "dt": "2026-10-01", "co": "VN", "is": "Bộ Y tế Việt Nam", "ci": p["uvci"]}
    now = datetime.now(timezone.utc)
    bad_dob = "1990-13-45"
    codes = [_day(material, [p], start=now)[0][1],
             make_dcc(material.dsc_key, material.dsc_kid, now=now, name=(family, rest), dob=p["dob"], kind="v",
                      entry=vac),
             make_dcc(material.dsc_key, material.dsc_kid, now=now, name=(family, rest), dob=bad_dob, kind="v",
                      entry=vac)]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    for json_flag in ([], ["--json"]):
        run = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "--set", f"device.state_dir={tmp_path}", "--set",
             "scanner.kind=stdin", "--set", "pins.backend=mock", "run", "--headless", *json_flag,
             "--max-scans", str(len(codes))], input="\n".join(codes) + "\n", capture_output=True,
            text=True, env=env, timeout=120)
        out = run.stdout + run.stderr
        assert run.stdout.count("\n") >= len(codes), out
        for secret in (p["id"], p["name"], p["dob"], p["dob_cccd"], p["uvci"], bad_dob, rest):
            assert secret not in out, f"{secret!r} printed by kiosk run {json_flag}"
