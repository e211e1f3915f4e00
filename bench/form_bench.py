"""What one citizen's declaration costs the collector (issue 14), and what the phone downloads.

Steps, each timed over the same person and compared with the baseline measured in the
same run, signing the HD1 alone (`kiosk.checks.hd1.issue_declaration`):
- validate the submitted form (collector.declarations.validate),
- the whole POST /d work without HTTP: spend the token, sign, seal, record, check-in
  (SQLite file, seal key configured),
- the result page (QR PNG + HTML),
- the form page rendered.
Then the page sizes a phone downloads (plain and gzip).

    python bench/form_bench.py               # about 15 s
    python bench/form_bench.py --n 50
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import declarations, form  # noqa: E402
from collector.storage import Store  # noqa: E402
from kiosk.checks import hd1  # noqa: E402
from kiosk.seal import generate_keypair  # noqa: E402

FORM = {"name": ["Nguyễn Thị Ngọc Ánh"], "dob": ["1990-04-30"], "sex": ["nu"], "id_number": ["079190000123"],
        "phone": ["0901234567"], "province": ["79"], "commune": ["26740"], "street": ["12 Lê Lợi"],
        "travel": ["01", "48"], "sym": [], "contact_case": ["no"], "contact_area": ["no"], "consent": ["yes"],
        "venue": ["BV-CHORAY"]}


def timed(fn: Callable[[], object], n: int) -> float:
    """Best-of-3 mean milliseconds per call over n calls."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) * 1000 / n)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="calls per step (default 100)")
    args = ap.parse_args()
    seal_private, _ = generate_keypair()
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp, Store(f"sqlite:///{tmp}/c.db") as store:
        key, kid = declarations.issuer_key(store)
        decl, errors = declarations.validate(FORM, now=now)
        assert not errors, errors

        def baseline() -> None:
            hd1.issue_declaration(key, kid, issuer=declarations.ISSUER_NAME, name=decl.name, dob=decl.dob,
                                  id_number=decl.id_number, phone=decl.phone, travel=decl.travel, now=now)

        def submit() -> None:
            declarations.use_token(store, declarations.new_token(store, now=now), now=now)
            declarations.issue(store, decl, now=now, seal_private_key=seal_private)

        issued = declarations.issue(store, decl, now=now, seal_private_key=seal_private)
        rows = [("baseline: sign the HD1 alone", timed(baseline, args.n)),
                ("validate the form", timed(lambda: declarations.validate(FORM, now=now), args.n)),
                ("POST /d work: token, sign, seal, record, check-in", timed(submit, args.n)),
                ("result page (QR PNG + HTML)", timed(lambda: form.render_result(issued), args.n)),
                ("form page", timed(lambda: form.render_form(token="t", venue="BV-CHORAY"), args.n))]
        base = rows[0][1]
        print(f"| step | ms | x baseline |\n|---|---:|---:|")
        for name, ms in rows:
            print(f"| {name} | {ms:.2f} | {ms / base:.2f} |")
        pages = {"form page /d/BV-CHORAY": form.render_form(token="x" * 40, venue="BV-CHORAY").encode(),
                 "result page": form.render_result(issued).encode(),
                 "app.js": (form.STATIC / "form.js").read_bytes(), "sw.js": (form.STATIC / "sw.js").read_bytes()}
        print(f"\n| download | bytes | gzip bytes |\n|---|---:|---:|")
        for name, body in pages.items():
            print(f"| {name} | {len(body)} | {len(gzip.compress(body))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
