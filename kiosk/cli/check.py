"""Commands of the checks: `kiosk check`, `kiosk trust import|status`,
`kiosk declaration keygen|issue`. Each opens a library object and calls one function."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from kiosk.cli._common import add_command, add_group, config_from, print_json, progress_on_terminal
from kiosk.errors import ConfigError, TrustError

__all__ = ["register", "check_payloads", "parse_at"]

#: Why a code of no known scheme went to review rather than failing.
OPAQUE_REVIEW = ("maybe a personal app code (6 or more characters), which cannot be verified offline: "
                 "the venue rules send it to the guard")


def parse_at(text: str | None) -> datetime:
    """`--at` value -> aware datetime (UTC when no offset is given); None -> now."""
    if not text:
        from kiosk.model import utcnow

        return utcnow()
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at {text!r}: expected an ISO 8601 time such as 2021-09-01T08:00:00Z") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def check_payloads(payloads: Iterable[str], *, now: datetime, trust: Any, rules: Any,
                   clock_synced: bool = True, lapsed: Iterable[str] = ()) -> list[dict[str, Any]]:
    """What `kiosk check --json` prints, one dict per payload (the function tests call)."""
    from kiosk.checks import evaluate

    out = []
    lapsed = frozenset(lapsed)
    for text in payloads:
        verdict, _ = evaluate(text, now=now, trust=trust, rules=rules, clock_synced=clock_synced, lapsed=lapsed)
        out.append(verdict.as_dict())
    return out


def _trust_for(args: argparse.Namespace, cfg: Any, now: datetime):
    from kiosk.checks.trust import TrustStore

    if args.trust:
        try:
            data = Path(args.trust).read_bytes()
        except OSError as exc:
            raise TrustError(f"{args.trust}: cannot read trust list: {exc.strerror}") from None
        try:
            return TrustStore.from_list(data, now=now), None
        except TrustError as exc:
            raise TrustError(f"{args.trust}: {exc}") from None
    path = cfg.journal_path()
    if not path.exists():
        return None, None
    from kiosk.journal import Journal

    journal = Journal(path)
    return TrustStore(journal), journal


def cmd_check(args: argparse.Namespace) -> int:
    """Check QR texts and print one verdict per payload (`-` reads lines from stdin).

    Without --trust the configured journal's trust list is used; without --rules the
    venue's rules from the config; --no-rules checks only decoding, structure (the EU DCC
    JSON schema), signature, key usage and validity period, as the EU conformance suite
    does; a DCC's codes against the EU value sets are business rules, checked with the
    rules. A failing verdict says which step and member failed: with --json as
    `"detail": {"step": "schema", "member": "t[0].tr", "message": ...}` (a forged
    certificate fails at `signature`, a badly issued one at `schema`, an unknown code at
    `valuesets`). Every verdict that is not a pass says
    why in words too: `asdf` fails (too short to be any code the kiosk knows), `abc123`
    goes to review (it may be a personal app code, which cannot be verified offline, and
    the venue rules send those to the guard).

    Exit codes: 0 every payload passed, 1 at least one failed or went to review, 2 bad
    input (an unreadable trust list or rules file, a bad --at).

    Example: kiosk check --json --no-rules --at 2021-06-01T10:00:00Z --trust list.json 'HC1:...'
    """
    from kiosk.checks.rules import load_rules, load_rules_file

    cfg = config_from(args)
    now = parse_at(args.at)
    if args.no_rules:
        rules = None
    elif args.rules:
        rules = load_rules_file(args.rules)
    else:
        rules = load_rules(cfg)
    payloads: list[str] = []
    for p in args.payload:
        if p == "-":
            payloads.extend(line.rstrip("\r\n") for line in sys.stdin if line.strip())
        else:
            payloads.append(p)
    trust, journal = _trust_for(args, cfg, now)
    lapsed: frozenset[str] = frozenset()
    if journal is not None:
        # The configured journal's documents: judged as the kiosk would judge them at --at.
        from kiosk.checks.freshness import Freshness

        lapsed = Freshness(journal, grace=timedelta(hours=cfg.trust.grace_hours),
                           trust_max_age=timedelta(hours=cfg.trust.max_age_hours)).lapsed(now)
    try:
        results = check_payloads(payloads, now=now, trust=trust, rules=rules, lapsed=lapsed)
    finally:
        if journal is not None:
            journal.close()
    for r in results:
        if r["verdict"] == "review" and r["scheme"] == "opaque" and not r.get("detail"):
            r["detail"] = {"step": "policy", "message": OPAQUE_REVIEW}
        if args.json:
            print_json(r)
        else:
            where = r.get("detail") or {}
            failed = f"  [{where.get('step')} {where['member']}]" if "member" in where else ""
            why = f"  ({where['message']})" if where.get("message") and not failed else ""
            print(f"{r['verdict']:<7} {r['reason']:<24} {r['scheme']:<9} {r['name'] or ''}{failed}{why}".rstrip())
    return 0 if all(r["verdict"] == "pass" for r in results) else 1


def cmd_trust_import(args: argparse.Namespace) -> int:
    """Import a trust list (EU gateway JSON, DSC and HD1 entries) into the journal,
    replacing the current one atomically; --revocations also replaces the revocation list
    (a file of hex hashes, one per line).

    Example: kiosk trust import trustlist.json --revocations revoked.txt
    """
    from kiosk.checks.trust import TrustStore

    from kiosk.journal import Journal
    from kiosk.model import utcnow
    from kiosk.sync.fetcher import HELD_KEY

    cfg = config_from(args)
    now = utcnow()
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise TrustError(f"{args.file}: cannot read trust list: {exc.strerror}") from None
    with Journal(cfg.journal_path()) as journal:
        store = TrustStore(journal)
        try:
            result = store.import_list(data, now=now)
        except TrustError as exc:
            raise TrustError(f"{args.file}: {exc}") from None
        revoked = None
        if args.revocations:
            try:
                lines = Path(args.revocations).read_text(encoding="utf-8").split()
            except (OSError, UnicodeDecodeError) as exc:
                raise TrustError(f"{args.revocations}: cannot read revocation list: {exc}") from None
            revoked = store.import_revocations(lines, now=now, progress=progress_on_terminal("revocations"))
    print(f"{cfg.journal_path()}: {result.keys} keys imported"
          + (f", {result.skipped} entries of other types skipped" if result.skipped else "")
          + (f", {revoked} revocations" if revoked is not None else ""))
    return 0


def cmd_trust_status(args: argparse.Namespace) -> int:
    """Show the trust list's size and age, and whether it is older than trust.max_age_hours.

    Example: kiosk trust status --json
    """
    from kiosk.checks.trust import TrustStore

    from kiosk.journal import Journal
    from kiosk.model import utcnow
    from kiosk.sync.fetcher import HELD_KEY

    cfg = config_from(args)
    now = utcnow()
    with Journal(cfg.journal_path()) as journal:
        store = TrustStore(journal)
        age = store.age(now)
        revocations = journal.db.conn.execute("SELECT count(*) FROM revocations").fetchone()[0]
        info = {"keys": len(store), "revocations": revocations,
                "age_hours": None if age is None else round(age.total_seconds() / 3600, 1),
                "stale": store.stale(now, timedelta(hours=cfg.trust.max_age_hours)),
                # What the kiosk holds of each signed document (version, signed at, valid until).
                "signed": journal.get_json(HELD_KEY) or {}}
    if args.json:
        print_json(info)
    else:
        print(f"keys {info['keys']}, revocations {info['revocations']}, age "
              + ("never imported" if age is None else f"{info['age_hours']} h")
              + (" (STALE)" if info["stale"] else ""))
        for name, held in sorted(info["signed"].items()):
            print(f"{name}: version {held['version']}, signed {held['iat']}, valid until {held['exp']}")
    return 1 if info["stale"] else 0


def cmd_declaration_keygen(args: argparse.Namespace) -> int:
    """Make a declaration issuer key: write the private key (PEM, mode 0600) and print
    a trust list holding its one entry (type HD1): `kiosk check --trust`, `kiosk trust
    import` and `collector publish trust` take it as it is (or add the entry to a list).

    Example: kiosk declaration keygen --out issuer.pem > entry.json && kiosk trust import entry.json
    """
    import os

    from kiosk.checks import hd1
    from kiosk.checks.trust import KIND_HD1, trust_entry

    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out}: exists; use --force to replace it")
    key, kid = hd1.generate_key(args.kind)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(hd1.private_pem(key))
    print_json([trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()), args.country)])
    return 0


def cmd_declaration_issue(args: argparse.Namespace) -> int:
    """Sign a health declaration with an issuer key and print its QR text (HD1:...).

    Example: kiosk declaration issue --key issuer.pem --issuer "Sở Y tế Demo" --name "Trần Thị Mai" --dob 1990-04-30 --id 079190000123 --phone 0901234567
    """
    from kiosk.checks import hd1

    try:
        key = hd1.load_private_key(Path(args.key).read_bytes())
    except OSError as exc:
        raise ConfigError(f"{args.key}: cannot read key: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{args.key}: not a usable PEM private key: {exc}") from None
    now = parse_at(args.at)
    try:
        text = hd1.issue_declaration(
            key, hd1.kid_for(key.public_key()), issuer=args.issuer, name=args.name, dob=args.dob,
            id_number=args.id, phone=args.phone, symptoms=args.symptom or (), contact=args.contact,
            travel=args.travel or (), status=args.status, now=now,
            valid_for=timedelta(hours=args.valid_hours))
    except ValueError as exc:
        raise ConfigError(f"declaration: {exc}") from None
    if args.png:
        import segno

        segno.make(text, error="m").save(args.png, scale=6, border=4)
    print(text)
    return 0


def register(sub) -> None:
    """Add `kiosk check`, `kiosk trust` and `kiosk declaration`."""
    from kiosk.checks.hd1 import STATUSES

    p = add_command(sub, "check", cmd_check)
    p.add_argument("payload", nargs="+", metavar="PAYLOAD", help="QR text, or - for lines on stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per payload")
    p.add_argument("--at", metavar="ISO-8601", help="check as of this time (default: now)")
    p.add_argument("--trust", metavar="FILE", help="trust list JSON (default: the journal's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rules", metavar="FILE", help="venue rules TOML (default: from the config)")
    g.add_argument("--no-rules", action="store_true",
                   help="only decoding, signature, key usage and validity period")

    tsub = add_group(sub, "trust", help="import or inspect the trust list",
                     description="Import a trust list into the journal, or show what the kiosk holds.\n\n"
                                 "Example: kiosk trust import trustlist.json && kiosk trust status")
    p = add_command(tsub, "import", cmd_trust_import)
    p.add_argument("file", help="trust list JSON")
    p.add_argument("--revocations", metavar="FILE", help="hex hashes, one per line")
    p = add_command(tsub, "status", cmd_trust_status)
    p.add_argument("--json", action="store_true", help="one JSON object")

    dsub = add_group(sub, "declaration", help="make declaration issuer keys and declarations",
                     description="Make a declaration issuer key (and its trust list), then sign HD1: "
                                 "declarations with it.\n\n"
                                 "Example: kiosk declaration keygen --out issuer.pem > entry.json\n"
                                 "         kiosk declaration issue --key issuer.pem --issuer \"Sở Y tế Demo\" "
                                 "--name \"Trần Thị Mai\" --dob 1990-04-30 --id 079190000123 --phone 0901234567")
    p = add_command(dsub, "keygen", cmd_declaration_keygen)
    p.add_argument("--out", required=True, metavar="KEY.pem", help="where to write the private key")
    p.add_argument("--kind", choices=("ec", "ed25519"), default="ec", help="ES256 (default) or EdDSA")
    p.add_argument("--country", default="VN", help="country of the trust list entry")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p = add_command(dsub, "issue", cmd_declaration_issue)
    p.add_argument("--key", required=True, metavar="KEY.pem", help="the issuer's private key (declaration keygen)")
    p.add_argument("--issuer", required=True, metavar="NAME", help="who issues it, as shown to the guard")
    p.add_argument("--name", required=True, help="the person's full name (masked on the screen)")
    p.add_argument("--dob", required=True, metavar="YYYY-MM-DD", help="the person's date of birth")
    p.add_argument("--id", required=True, metavar="ID", help="ID number (only its salted hash is signed)")
    p.add_argument("--phone", required=True, help="the person's phone number, for contact tracing")
    p.add_argument("--symptom", action="append", metavar="CODE", help="a declared symptom (repeatable)")
    p.add_argument("--contact", action="store_true", help="declares contact with a case")
    p.add_argument("--travel", action="append", metavar="PROVINCE", help="a province travelled in (repeatable)")
    p.add_argument("--status", choices=STATUSES, default="green",
                   help="health status colour (default: green; red fails at every venue)")
    p.add_argument("--valid-hours", type=float, default=24.0, metavar="H",
                   help="hours the declaration stays valid (default: 24)")
    p.add_argument("--at", metavar="ISO-8601", help="issue as of this time (default: now)")
    p.add_argument("--png", metavar="FILE", help="also write the QR code as a PNG")
