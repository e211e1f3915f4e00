"""The `collector` command and its configuration."""

from __future__ import annotations

import json

import pytest

from collector import cli
from collector.config import CollectorConfigError, load
from collector.storage import Store


def test_every_command_has_help_with_an_example(capsys):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"serve", "enrol-code", "publish", "report", "count"} <= set(commands)
    for name, sub in commands.items():
        assert "Example: collector " in sub.description, name


def test_config_file_env_and_flags_in_that_order(tmp_path):
    path = tmp_path / "collector.toml"
    path.write_text('db_url = "sqlite:///from-file.db"\nport = 9000\nadmin_token = "file-token-%s"\n' % ("f" * 32))
    secret = "env-secret-" + "e" * 32
    cfg = load(path, env={"COLLECTOR_PORT": "9100", "COLLECTOR_ADMIN_TOKEN": secret}, port=9200)
    assert (cfg.db_url, cfg.port, cfg.admin_token) == ("sqlite:///from-file.db", 9200, secret)
    assert secret not in repr(cfg)


@pytest.mark.parametrize("text, words", [
    ("prot = 1", "unknown key 'prot'"),
    ("port = -3", "port"),
    ("port = [", "not valid TOML"),
])
def test_a_bad_config_names_the_file_and_the_key(tmp_path, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(CollectorConfigError) as err:
        load(path, env={})
    assert str(path) in str(err.value) and words in str(err.value)


def test_the_shipped_example_config_loads(tmp_path):
    from pathlib import Path

    import collector

    example = Path(collector.__file__).with_name("collector.example.toml")
    assert load(example, env={}).port == 8470


def test_enrol_code_publish_and_report_from_the_command_line(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main(["enrol-code", "--device", "kiosk-7", "--venue", "V7", "--db", db]) == 0
    code = capsys.readouterr().out.strip()
    with Store(db) as store:
        from datetime import datetime, timezone
        assert store.enrol("kiosk-7", code, now=datetime.now(timezone.utc))
    key = str(tmp_path / "publisher.pem")
    assert cli.main(["publisher-keygen", "--out", key]) == 0
    assert "publisher_key = " in capsys.readouterr().out
    bad = tmp_path / "deny.json"
    bad.write_text("[not json")
    assert cli.main(["publish", "denylist", str(bad), "--db", db, "--key", key]) == 2
    assert "not JSON" in capsys.readouterr().err
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(["ab" * 32]))
    assert cli.main(["publish", "denylist", str(plain), "--db", db, "--key", key]) == 2
    assert "unkeyed deny list" in capsys.readouterr().err  # SHA-256 of an ID is searchable
    subjects = tmp_path / "denied.txt"
    subjects.write_text("cccd:079190000123\tcourt order\n")
    good = tmp_path / "deny.json"
    assert cli.main(["denylist", str(subjects), "--out", str(good)]) == 0
    assert "1 subjects keyed" in capsys.readouterr().out and "079190000123" not in good.read_text()
    assert cli.main(["publish", "denylist", str(good), "--db", db]) == 2  # no key: nothing signed
    assert "no publishing key" in capsys.readouterr().err
    assert cli.main(["publish", "denylist", str(good), "--db", db, "--key", key]) == 0
    assert "ETag" in capsys.readouterr().out
    assert cli.main(["report", "--date", "2026-03-02", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("date,venue_code,entries,passes,fails,reviews,overrides")
