"""Issue 23 items 1, 4, 9 and 11 against the real collector: tracing finds web-form
declarations by the typed ID (every kind the form accepts), only registered venues take
declarations and self-declared check-ins are marked, a roster person is cleared only by a
declaration with the roster's phone, the form's browser-side details, and the README's
`collector issuer --trust FILE` step on a machine with no trust list yet."""

from __future__ import annotations

import json

from collector_process import run_collector


# --- item 11: the README step `collector issuer --trust trustlist.json && collector publish trust trustlist.json`

def test_issuer_makes_the_trust_list_when_none_exists_and_publish_takes_it(tmp_path):
    # Regression (issue 23 item 11): the step failed with FileNotFoundError on a new machine.
    db = f"sqlite:///{tmp_path / 'c.db'}"
    key = tmp_path / "publisher.pem"
    assert run_collector("publisher-keygen", "--out", str(key)).returncode == 0
    trust = tmp_path / "trustlist.json"
    made = run_collector("issuer", "--trust", str(trust), "--db", db)
    assert made.returncode == 0, made.stderr
    entries = json.loads(trust.read_text(encoding="utf-8"))
    assert [e["certificateType"] for e in entries] == ["HD1"]
    published = run_collector("publish", "trust", str(trust), "--key", str(key), "--db", db)
    assert published.returncode == 0, published.stderr
    assert "published trust" in published.stdout
