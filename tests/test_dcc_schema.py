"""Property tests of the EU DCC schema step (kiosk.checks.dcc_schema): a certificate
built by hypothesis within the schema passes the structure step; the same certificate
with any single member broken fails with that member named."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.checks.dcc_schema import normalise, shipped_valuesets, validate

VS = shipped_valuesets().codes
TRANSLIT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ<", min_size=1, max_size=80)
FREE = st.text(min_size=0, max_size=80)
DAY = st.dates(date(2020, 1, 1), date(2023, 12, 31)).map(date.isoformat)
WHEN = st.datetimes(datetime(2020, 1, 1), datetime(2023, 12, 31)).map(
    lambda t: t.replace(microsecond=0, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z"))


def code(name):
    return st.sampled_from(sorted(VS[name]))


VAC = st.fixed_dictionaries({
    "tg": code("disease-agent-targeted"), "vp": code("vaccine-prophylaxis"),
    "mp": code("vaccine-medicinal-product"), "ma": code("vaccine-mah-manf"),
    "dn": st.integers(1, 9), "sd": st.integers(1, 9), "dt": DAY, "co": code("country-2-codes"),
    "is": FREE, "ci": FREE})
TEST = st.fixed_dictionaries({
    "tg": code("disease-agent-targeted"), "tt": code("test-type"), "sc": WHEN,
    "tr": code("test-result"), "tc": FREE, "co": code("country-2-codes"), "is": FREE, "ci": FREE},
    optional={"ma": code("test-manf"), "nm": FREE})
REC = st.fixed_dictionaries({
    "tg": code("disease-agent-targeted"), "fr": DAY, "df": DAY, "du": DAY,
    "co": code("country-2-codes"), "is": FREE, "ci": FREE})
DOB = st.one_of(st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(date.isoformat),
                st.integers(1900, 2099).map(str),
                st.tuples(st.integers(1900, 2099), st.integers(1, 12)).map(lambda ym: f"{ym[0]}-{ym[1]:02d}"))


@st.composite
def certificates(draw):
    kind, entry = draw(st.sampled_from([("v", VAC), ("t", TEST), ("r", REC)]))
    nam = draw(st.fixed_dictionaries({"fnt": TRANSLIT}, optional={"fn": FREE, "gn": FREE, "gnt": TRANSLIT}))
    ver = draw(st.sampled_from(["1.2.1", "1.3.0", "1.3.2"]))
    return {"ver": ver, "nam": nam, "dob": draw(DOB), kind: [draw(entry)]}


# One way to break each member, and the member the failure must name.
BREAKS = {
    "ver": lambda hc: {**hc, "ver": "1.3"},
    "dob": lambda hc: {**hc, "dob": "1815-02-03"},
    "nam.fnt": lambda hc: {**hc, "nam": {**hc["nam"], "fnt": "Nguyễn"}},
    "nam.gnt": lambda hc: {**hc, "nam": {**hc["nam"], "gnt": "BAO DUY"}},
    "nam.fn": lambda hc: {**hc, "nam": {**hc["nam"], "fn": "x" * 81}},
    "nam.gn": lambda hc: {**hc, "nam": {**hc["nam"], "gn": 7}},
}
ENTRY_BREAKS = {
    "tg": 840539006, "co": "vn", "is": "i" * 81, "ci": ["URN"],
    "dn": 0, "sd": "2", "dt": "2021-02-30", "vp": None, "mp": 1528, "ma": {"org": 1},
    "sc": "2021-05-12 17:04", "tr": 260415000, "tt": ["LP6464-4"], "tc": "c" * 81, "nm": "n" * 81,
    "fr": "2021-13-01", "df": "01.05.2021", "du": "",
}


@settings(max_examples=150, deadline=None)
@given(certificates())
def test_a_schema_valid_certificate_passes_the_structure_step(hc):
    assert validate(hc) is None
    assert shipped_valuesets().check(hc) is None


@settings(max_examples=150, deadline=None)
@given(certificates(), st.data())
def test_one_broken_member_fails_with_that_member_named(hc, data):
    kind = next(k for k in "vtr" if k in hc)
    entry = hc[kind][0]
    targets = [m for m in BREAKS if not (m == "nam.gnt" and hc["ver"] == "1.0.0")]
    targets += [f"{kind}[0].{k}" for k in entry if k in ENTRY_BREAKS]
    member = data.draw(st.sampled_from(targets))
    if member in BREAKS:
        broken = BREAKS[member](hc)
    else:
        key = member.split(".")[-1]
        broken = {**hc, kind: [{**entry, key: ENTRY_BREAKS[key]}]}
    problem = validate(broken)
    assert problem is not None and problem[0] == member, (member, problem)


@settings(max_examples=80, deadline=None)
@given(certificates(), st.sampled_from(["v", "t", "r"]))
def test_a_missing_required_member_is_named(hc, _):
    kind = next(k for k in "vtr" if k in hc)
    entry = hc[kind][0]
    required = [k for k in entry if k not in ("nm", "ma", "tc") or kind == "v"]
    for key in required:
        broken = {**hc, kind: [{k: v for k, v in entry.items() if k != key}]}
        assert validate(broken)[0] == f"{kind}[0].{key}"
    for key in ("ver", "nam", "dob"):
        assert validate({k: v for k, v in hc.items() if k != key})[0] == key


@given(certificates())
def test_cbor_tagged_times_normalise_to_schema_strings(hc):
    kind = next(k for k in "vtr" if k in hc)
    if kind != "t":
        return
    sc = datetime(2021, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    tagged = {**hc, "t": [{**hc["t"][0], "sc": sc}]}
    assert validate(normalise(tagged)) is None
