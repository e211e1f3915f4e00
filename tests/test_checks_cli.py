"""The checks' commands as a user runs them: `kiosk check`, `kiosk trust import|status`,
`kiosk declaration keygen|issue`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk.demo.material import demo_material
from kiosk.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)
AT = "2021-10-01T08:00:00Z"


@pytest.fixture
def env(tmp_path, monkeypatch):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[journal]\npath = "{tmp_path / "journal.db"}"\n[venue]\ntype = "supermarket"\n',
                   encoding="utf-8")
    monkeypatch.setenv("KIOSK_CONFIG", str(cfg))
    return tmp_path


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_check_with_trust_file_and_rules(env, capsys):
    m = demo_material(NOW)
    trust = env / "trust.json"
    trust.write_bytes(m.trust_list_json)
    payloads = [text for _, text in m.payloads]
    rc = main(["check", "--json", "--at", AT, "--trust", str(trust), *payloads])
    results = lines(capsys.readouterr().out)
    assert rc == 1  # not all passed
    assert [(r["verdict"], r["reason"]) for r in results] == [m.expected[label] for label, _ in m.payloads]
    assert results[0]["name"] == "Trần T*** M"
    # A failing verdict also says which step (and payload member) failed.
    assert all(set(r) - {"detail"} == {"verdict", "reason", "scheme", "name"} for r in results)
    # ... and an app code sent to review says why (issue 17: `abc123` vs `asdf`).
    assert all(("detail" in r) == (r["verdict"] == "fail" or (r["verdict"], r["scheme"]) == ("review", "opaque"))
               for r in results)


def test_check_reads_stdin_and_no_rules(env, capsys, monkeypatch):
    import io

    m = demo_material(NOW)
    trust = env / "trust.json"
    trust.write_bytes(m.trust_list_json)
    text = dict(m.payloads)["dcc-test-too-old"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(text + "\r\n\n"))
    assert main(["check", "--json", "--no-rules", "--at", AT, "--trust", str(trust), "-"]) == 0
    assert lines(capsys.readouterr().out) == [{"verdict": "pass", "reason": "ok", "scheme": "dcc",
                                               "name": "Đặng T*** H"}]


def test_trust_import_then_check_uses_the_journal(env, capsys):
    m = demo_material(NOW)
    trust = env / "trust.json"
    trust.write_bytes(m.trust_list_json)
    revoked = env / "revoked.txt"
    revoked.write_text("00" * 32 + "\n", encoding="utf-8")
    assert main(["trust", "import", str(trust), "--revocations", str(revoked)]) == 0
    assert "2 keys imported" in capsys.readouterr().out
    assert main(["trust", "status", "--json"]) == 0
    status = lines(capsys.readouterr().out)[0]
    assert status["keys"] == 2 and status["revocations"] == 1 and not status["stale"]
    assert main(["check", "--json", "--at", AT, dict(m.payloads)["hd1-green"]]) == 0
    assert lines(capsys.readouterr().out)[0]["verdict"] == "pass"


def test_bad_trust_file_is_a_clear_error(env, capsys):
    bad = env / "bad.json"
    bad.write_text("[{\"certificateType\": \"DSC\"}]", encoding="utf-8")
    assert main(["trust", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "kid" in err


def test_bad_rules_file_is_a_clear_error(env, capsys):
    rules = env / "rules.toml"
    rules.write_text("[hd1]\nmax_age_hours = -1\n", encoding="utf-8")
    assert main(["check", "--rules", str(rules), "HC1:xyz"]) == 2
    assert "hd1.max_age_hours" in capsys.readouterr().err


def test_declaration_keygen_issue_and_check_through_the_real_command(env):
    key = env / "issuer.pem"
    run_env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def kiosk(*args, **kw):
        return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True,
                              text=True, env=run_env, timeout=60, **kw)

    made = kiosk("declaration", "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    [entry] = json.loads(made.stdout)  # a trust list of its one entry (issue 17: usable as it is)
    assert entry["certificateType"] == "HD1" and entry["country"] == "VN"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert kiosk("declaration", "keygen", "--out", str(key)).returncode == 2  # no silent overwrite
    (env / "trust.json").write_text(json.dumps([entry]), encoding="utf-8")

    issued = kiosk("declaration", "issue", "--key", str(key), "--issuer", "Sở Y tế Đà Nẵng",
                   "--name", "Hoàng Thị Thu Thủy", "--dob", "1988-02-29", "--id", "048188000321",
                   "--phone", "0935123456", "--at", AT, "--png", str(env / "decl.png"))
    assert issued.returncode == 0, issued.stderr
    text = issued.stdout.strip()
    assert text.startswith("HD1:") and (env / "decl.png").stat().st_size > 0
    sick = kiosk("declaration", "issue", "--key", str(key), "--issuer", "Sở Y tế Đà Nẵng",
                 "--name", "Hoàng Văn Nam", "--dob", "1980-01-01", "--id", "048180000111",
                 "--phone", "0935000111", "--symptom", "sot", "--at", AT).stdout.strip()

    checked = kiosk("check", "--json", "--at", "2021-10-01T12:00:00Z", "--trust", str(env / "trust.json"),
                    "--rules", str(ROOT / "kiosk" / "rules" / "hospital.toml"), text, sick)
    assert [(r["verdict"], r["reason"], r["name"]) for r in lines(checked.stdout)] == [
        ("pass", "ok", "Hoàng T*** T*** T"), ("fail", "symptoms", "Hoàng V*** N")]
    later = kiosk("check", "--json", "--no-rules", "--at", "2021-10-03T12:00:00Z",
                  "--trust", str(env / "trust.json"), text)
    assert lines(later.stdout)[0]["reason"] == "expired"

    # The PNG reads back to the same text through the kiosk's decoder.
    from kiosk.config import load_config
    from kiosk.scanner.decoder import Decoder

    decoder = Decoder(load_config(None, search=False).decoder)
    assert decoder.decode_path(env / "decl.png").texts == [text]
    decoder.close()


def test_issue_refuses_bad_input(env, capsys):
    key = env / "k.pem"
    assert main(["declaration", "keygen", "--out", str(key), "--kind", "ed25519"]) == 0
    capsys.readouterr()
    assert main(["declaration", "issue", "--key", str(key), "--issuer", "X", "--name", "A B",
                 "--dob", "1990-02-30", "--id", "1", "--phone", "1"]) == 2
    assert "dob" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["check"], ["trust", "import"], ["trust", "status"],
                                  ["declaration", "keygen"], ["declaration", "issue"]])
def test_every_command_has_help_with_an_example(argv, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert "Example: kiosk " + " ".join(argv) in capsys.readouterr().out
