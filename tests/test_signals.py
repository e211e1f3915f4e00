"""What a guard sees and hears, read from the simulated pins' timed history; and the
guard button turning the last fail into an override in a real journal file."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.config import PinsConfig
from kiosk.display.guard import admit_last
from kiosk.display.signals import FAULT_PATTERNS, GUARD_REPEAT_S, Signals, UnknownFault
from kiosk.display.tones import TONES
from kiosk.journal import Journal
from kiosk.model import Outcome, Reason, Scan, Verdict

PASS = Verdict(Outcome.PASS, Reason.OK, "dcc", "Nguyễn V*** A")
FAIL = Verdict(Outcome.FAIL, Reason.EXPIRED, "dcc", "Trần T*** B")
REVIEW = Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd", "Lê H*** C")
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
PULSE_S = 0.25
#: Slack for a loaded CI machine; the tests check "at least the set time", not precision.
SLACK_S = 0.5


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def signals(clock):
    with Signals(PinsConfig(backend="mock", relay_pulse_s=PULSE_S), clock=clock) as s:
        yield s


def beeps(signals, n: int):
    assert wait_until(lambda: len(signals.on_periods("buzzer")) >= n)
    time.sleep(0.05)
    return signals.on_periods("buzzer")


def test_pass_lights_green_and_pulses_the_relay_for_the_set_time(signals):
    signals.signal(PASS)
    assert signals.green.is_lit
    assert wait_until(lambda: len(signals.on_periods("relay")) == 1)
    [(start, length)] = signals.on_periods("relay")
    assert PULSE_S <= length < PULSE_S + SLACK_S
    assert signals.relay.value == 0  # the door is locked again
    assert not any(v for _, d, v in signals.history if d == "red")
    [(_, tone)] = beeps(signals, 1)
    assert tone == pytest.approx(TONES["pass"].on_s, abs=SLACK_S)


def test_fail_lights_red_sounds_three_short_tones_and_never_opens_the_door(signals):
    signals.signal(FAIL)
    assert signals.red.is_lit and not signals.green.is_lit
    periods = beeps(signals, TONES["fail"].count)
    assert len(periods) == 3
    assert all(length < TONES["pass"].on_s for _, length in periods)
    assert signals.on_periods("relay") == []
    assert not any(v for _, d, v in signals.history if d == "green")


def test_review_blinks_both_lights_and_sounds_two_tones(signals):
    signals.signal(REVIEW)
    assert len(beeps(signals, TONES["review"].count)) == 2
    assert wait_until(lambda: len(signals.on_periods("green")) >= 2 and len(signals.on_periods("red")) >= 2)
    assert signals.on_periods("relay") == []


def test_each_verdict_has_a_distinct_buzzer_pattern():
    patterns = {(t.count, t.on_s, t.off_s) for t in TONES.values()}
    assert len(patterns) == len(TONES) == 3


def test_active_low_relay_rests_high_and_pulls_low_to_release(clock):
    cfg = PinsConfig(backend="mock", relay_pulse_s=PULSE_S, relay_active_low=True)
    with Signals(cfg, clock=clock) as s:
        pin = s.pin("relay")
        assert pin.state  # high at rest: the door stays locked from the moment we start
        s.signal(PASS)
        assert not pin.state
        assert wait_until(lambda: pin.state)
        assert [(bool(v)) for v in (st.state for st in pin.states)] == [True, False, True]
        [(_, length)] = s.on_periods("relay")
        assert PULSE_S <= length < PULSE_S + SLACK_S


def test_camera_fault_blinks_red_slowly_and_stops_when_cleared(signals):
    signals.set_faults({"camera_fault"})
    assert wait_until(lambda: len(signals.on_periods("red")) >= 1)
    [(_, length), *_] = signals.on_periods("red")
    assert length == pytest.approx(FAULT_PATTERNS["camera_fault"][0], abs=SLACK_S)
    assert not any(v for _, d, v in signals.history if d == "green")
    signals.set_faults(set())
    assert not signals.red.is_lit
    count = len(signals.history)
    time.sleep(0.3)
    assert len(signals.history) == count  # nothing blinks any more


def test_the_same_faults_again_do_not_restart_the_blink(signals):
    signals.set_faults({"offline"})
    before = len(signals.history)
    signals.set_faults({"offline"})
    assert len(signals.history) == before


def test_a_verdict_shows_over_a_fault_and_the_fault_returns_after(signals):
    signals.set_faults({"disk_full"})
    signals.signal(PASS)
    assert signals.green.is_lit and not signals.red.is_lit
    signals.set_faults({"disk_full", "offline"})  # changes during the verdict wait
    assert not signals.red.is_lit
    signals.idle()
    assert wait_until(lambda: signals.red.is_lit)
    assert not signals.green.is_lit


def test_unknown_fault_is_refused(signals):
    with pytest.raises(UnknownFault, match="gremlins"):
        signals.set_faults({"gremlins"})


def test_guard_button_fires_once_per_press(signals, clock):
    presses = []
    signals.when_guard(lambda: presses.append(clock()))
    button = signals.pin("button")
    button.drive_low()
    button.drive_high()
    button.drive_low()  # contact bounce, same instant
    button.drive_high()
    assert len(presses) == 1
    clock.t += GUARD_REPEAT_S + 0.1
    button.drive_low()
    button.drive_high()
    assert len(presses) == 2
    assert [v for _, d, v in signals.history if d == "button"][-2:] == [1, 0]


# --- guard button -> journal ------------------------------------------------------------

def record(journal: Journal, text: str, verdict: Verdict, at: datetime):
    return journal.record(Scan(text, at=at), verdict, venue="V1", device="D1")


def test_guard_button_turns_the_last_fail_into_an_override(journal_path, signals, clock):
    now = {"t": T0 + timedelta(seconds=30)}
    with Journal(journal_path) as journal:
        record(journal, "HC1:earlier", FAIL, T0 - timedelta(seconds=10))
        failed = record(journal, "HC1:expired", FAIL, T0)
        record(journal, "HC1:ok", PASS, T0 + timedelta(seconds=5))  # a pass since: not admitted again
        admitted = []
        signals.when_guard(lambda: admitted.append(admit_last(journal, now=now["t"])))
        signals.pin("button").drive_low()
        signals.pin("button").drive_high()
        [entry] = admitted
        assert entry.outcome == "pass" and entry.reason == "override"
        assert entry.override_of == failed.id
        assert entry.name_masked == "Trần T*** B"
    # A real file: reopen and find the override committed.
    with Journal(journal_path) as journal:
        overrides = [e for e in journal.entries() if e.reason == "override"]
        assert [e.override_of for e in overrides] == [failed.id]
        assert journal.last(since=T0) is None  # the newest fail is answered


def test_guard_does_nothing_when_the_fail_is_too_old_or_already_admitted(journal_path):
    with Journal(journal_path) as journal:
        old = record(journal, "HC1:old", FAIL, T0)
        assert admit_last(journal, now=T0 + timedelta(seconds=121), within_s=120) is None
        first = admit_last(journal, now=T0 + timedelta(seconds=60), within_s=120)
        assert first is not None and first.override_of == old.id
        assert admit_last(journal, now=T0 + timedelta(seconds=61), within_s=120) is None
        assert sum(e.reason == "override" for e in journal.entries()) == 1


def test_guard_admits_a_review_but_never_a_pass(journal_path):
    with Journal(journal_path) as journal:
        record(journal, "HC1:pass", PASS, T0)
        assert admit_last(journal, now=T0 + timedelta(seconds=5)) is None
        review = record(journal, "CCCD:1", REVIEW, T0 + timedelta(seconds=6))
        entry = admit_last(journal, now=T0 + timedelta(seconds=9))
        assert entry is not None and entry.override_of == review.id
