"""What a thief's search of the ID space costs, and what the kiosk pays for it (issue 11).

Part 1, one guess: the hashes a stolen card used to hold (SHA-256 of salt + identifier;
SHA-256 of `cccd:<id>` in the deny list) against what it holds now: the repeat-scan
HMAC under a key that lives only in memory (a guess needs the key, which is not on the
card: no search at all), and the deny list's scrypt at several costs. For each, the
core-years to search the plausible space of 12-digit ID numbers (about 2.5 x 10^10:
province and century/sex codes, birth year, six serial digits), measured on this core.

Part 2, what a scan costs the kiosk: `Journal.record` of a chip ID card entry, plain
(loopback collector) and sealed to the collector's X25519 key, and the deny check's
scrypt once per person.

    python bench/sealing_bench.py                # about 20 s
    python bench/sealing_bench.py --seconds 1
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.checks.denylist import DEFAULT_LANES, DEFAULT_N, DEFAULT_R, DenyParams, deny_hash  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.model import Credential, Outcome, Reason, Scan, Verdict  # noqa: E402
from kiosk.seal import generate_keypair, sealer_for  # noqa: E402

#: Plausible 12-digit ID numbers: 63 province codes x 4 century/sex codes x 100 birth
#: years x 10^6 serials = 2.5 x 10^10 (the issue's figure).
ID_SPACE = 63 * 4 * 100 * 10 ** 6
CORE_YEAR_S = 365.25 * 24 * 3600


def _rate(fn: Callable[[int], None], seconds: float) -> float:
    """Seconds of CPU per call of fn, timed on this process's CPU clock (the machine is shared)."""
    n, used, i = 0, 0.0, 0
    while used < seconds or n < 3:
        t = time.process_time()
        fn(i)
        used += time.process_time() - t
        n += 1
        i += 1
    return used / n


def part1(seconds: float) -> None:
    salt = secrets.token_bytes(16)
    key = secrets.token_bytes(32)
    ident = [f"cccd:0791{90000000 + i:08d}".encode() for i in range(1000)]
    rows = [
        ("old: SHA-256(salt + subject) (salt on the card)", lambda i: hashlib.sha256(salt + ident[i % 1000]).digest(), "baseline"),
        ("old: deny list SHA-256(cccd:<id>)", lambda i: hashlib.sha256(ident[i % 1000]).digest(), ""),
        ("new: HMAC-SHA256, key in memory only", lambda i: hmac.new(key, ident[i % 1000], hashlib.sha256).digest(),
         "key not on the card: no search possible"),
    ]
    for n, lanes, note in ((DEFAULT_N, 1, "one lane"), (DEFAULT_N * 2, 1, ""),
                           (DEFAULT_N * 4, 1, "scrypt-v1 as first published (still read)"),
                           (DEFAULT_N, DEFAULT_LANES, "as published: lanes on the kiosk's cores at once")):
        params = DenyParams(salt, n, DEFAULT_R, 1, lanes)
        rows.append((f"new: deny list scrypt {lanes} x N=2^{n.bit_length() - 1} r={DEFAULT_R} "
                     f"({128 * n * DEFAULT_R // 2 ** 20} MiB a lane)",
                     lambda i, p=params: deny_hash(ident[i % 1000].decode(), p), note))
    base = None
    print(f"\nPart 1: one guess, and a search of {ID_SPACE:.2e} ID numbers on one core")
    print(f"| hash | µs per guess | ratio | core-years for the ID space | note |")
    print("|---|---:|---:|---:|---|")
    for name, fn, note in rows:
        per = _rate(fn, seconds if "scrypt" not in name else max(seconds, 2.0))
        base = base or per
        years = per * ID_SPACE / CORE_YEAR_S
        shown = "n/a (no key)" if "memory only" in name else f"{years:,.3g}"
        print(f"| {name} | {per * 1e6:,.1f} | {per / base:,.0f}x | {shown} | {note} |")


def part2(seconds: float) -> None:
    _, public = generate_keypair()
    verdict = Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd", "Nguyễn T*** H")
    with tempfile.TemporaryDirectory() as tmp:
        plain = Journal(Path(tmp) / "plain.db", repeat_window_s=0)
        sealed = Journal(Path(tmp) / "sealed.db", repeat_window_s=0, sealer=sealer_for(public))

        def record(journal: Journal) -> Callable[[int], None]:
            def go(i: int) -> None:
                cred = Credential("cccd", name="Nguyễn Thị Hoa", subject_key=f"cccd:0791{i:08d}",
                                  personal={"id": f"0791{i:08d}", "name": "Nguyễn Thị Hoa",
                                            "dob": "1990-04-15", "address": "12 Lê Lợi, Quận 1"})
                journal.record(Scan(f"0791{i:08d}|...|{os.urandom(4).hex()}"), verdict, cred,
                               venue="V1", device="D1")
            return go

        params = DenyParams(secrets.token_bytes(16), DEFAULT_N, DEFAULT_R, 1, DEFAULT_LANES)
        rows = [("Journal.record, unsealed (loopback collector)", record(plain), "baseline"),
                ("Journal.record, sealed (X25519 + ChaCha20-Poly1305)", record(sealed), ""),
                (f"deny check: scrypt {DEFAULT_LANES} x N=2^{DEFAULT_N.bit_length() - 1} once per person (CPU of all lanes)",
                 lambda i: deny_hash(f"cccd:0791{i:08d}", params), "only while a deny list is held")]
        print("\nPart 2: what one scan costs the kiosk (CPU, this core; a Pi 4 core is about 3-4x slower)")
        print("| step | ms per scan | ratio | note |")
        print("|---|---:|---:|---|")
        base = None
        for name, fn, note in rows:
            per = _rate(fn, max(seconds, 1.0))
            base = base or per
            print(f"| {name} | {per * 1e3:,.2f} | {per / base:,.1f}x | {note} |")
        plain.close()
        sealed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    part1(args.seconds)
    part2(args.seconds)


if __name__ == "__main__":
    main()
