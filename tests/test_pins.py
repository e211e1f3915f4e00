"""Pin backends: chosen by config or $KIOSK_PINS, clear errors, one contract suite for all."""

from __future__ import annotations

import time

import pytest

from kiosk.config import PinsConfig
from kiosk.display.pins import BACKENDS, PinBackendError, make_pin_factory, pi_model, resolve_backend
from kiosk.display.signals import Signals
from kiosk.errors import ConfigError, DeviceClosed, KioskError
from kiosk.model import Outcome, Reason, Verdict

PASS = Verdict(Outcome.PASS, Reason.OK, "dcc", "Nguyễn V*** A")
FAIL = Verdict(Outcome.FAIL, Reason.EXPIRED, "dcc", "Nguyễn V*** A")
REVIEW = Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd", "Nguyễn V*** A")


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --- choosing a backend ------------------------------------------------------------------

def test_env_overrides_config():
    assert resolve_backend("lgpio", env={"KIOSK_PINS": "mock"}) == "mock"
    assert resolve_backend("mock", env={}) == "mock"


@pytest.mark.parametrize("model,expected", [
    ("Raspberry Pi 5 Model B Rev 1.0", "lgpio"),
    ("Raspberry Pi 4 Model B Rev 1.4", "rpigpio"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "rpigpio"),
    ("", "mock"),  # a laptop: the simulated pins, so the demo runs
])
def test_auto_picks_lgpio_on_a_pi5_rpigpio_on_older_pis(model, expected):
    assert resolve_backend("auto", env={}, model=model) == expected


def test_unknown_backend_names_where_it_came_from():
    with pytest.raises(ConfigError, match=r"\$KIOSK_PINS.*'pigpio'"):
        resolve_backend("mock", env={"KIOSK_PINS": "pigpio"})


def test_pi_model_reads_the_device_tree(tmp_path):
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert pi_model(model) == "Raspberry Pi 5 Model B Rev 1.0"
    model.write_bytes(b"Some Other Board\x00")
    assert pi_model(model) == ""
    assert pi_model(tmp_path / "missing") == ""


@pytest.mark.parametrize("backend", ["rpigpio", "lgpio"])
def test_a_backend_that_cannot_load_says_how_to_fix_it(backend):
    try:
        factory = make_pin_factory(backend)
    except PinBackendError as exc:
        message = str(exc)
        assert backend in message and "kiosk[pi]" in message and "mock" in message
        assert isinstance(exc, KioskError)
        return
    factory.close()
    pytest.skip(f"{backend} loads here (a real Pi)")


def test_signals_with_a_backend_that_cannot_load_raise_the_kiosk_error(monkeypatch):
    for backend in ("rpigpio", "lgpio"):
        try:
            make_pin_factory(backend).close()
        except PinBackendError:
            monkeypatch.setenv("KIOSK_PINS", backend)
            with pytest.raises(PinBackendError, match=backend):
                Signals(PinsConfig(backend="mock"))
            return
    pytest.skip("every backend loads here")


# --- the contract every backend keeps ----------------------------------------------------

@pytest.fixture(params=BACKENDS)
def factory(request):
    try:
        f = make_pin_factory(request.param)
    except PinBackendError as exc:
        pytest.skip(f"{request.param} cannot load here: {exc}")
    yield f
    f.close()


@pytest.fixture
def signals(factory):
    with Signals(PinsConfig(relay_pulse_s=0.2), pin_factory=factory) as s:
        yield s


def test_contract_pass_lights_green_and_releases_the_door(signals):
    signals.signal(PASS)
    assert signals.green.is_lit and not signals.red.is_lit
    assert signals.relay.value == 1
    assert wait_until(lambda: signals.relay.value == 0)  # the pulse ends by itself


def test_contract_fail_lights_red_and_keeps_the_door_shut(signals):
    signals.signal(FAIL)
    assert signals.red.is_lit and not signals.green.is_lit
    assert signals.relay.value == 0


def test_contract_review_blinks_both_lights(signals):
    signals.signal(REVIEW)
    assert wait_until(lambda: signals.green.is_lit and signals.red.is_lit)
    assert wait_until(lambda: not signals.green.is_lit and not signals.red.is_lit)


def test_contract_idle_turns_the_lights_off(signals):
    signals.signal(FAIL)
    signals.idle()
    assert not signals.red.is_lit and not signals.green.is_lit


def test_contract_fault_blinks_red_until_cleared(signals):
    signals.set_faults({"disk_full"})
    assert wait_until(lambda: signals.red.is_lit)
    assert wait_until(lambda: not signals.red.is_lit)
    signals.set_faults(set())
    assert not signals.red.is_lit and not signals.green.is_lit


def test_contract_close_is_idempotent_and_use_after_close_fails(factory):
    s = Signals(PinsConfig(), pin_factory=factory)
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(DeviceClosed):
        s.signal(PASS)


def test_contract_a_pin_already_in_use_is_a_clear_error(factory):
    with Signals(PinsConfig(), pin_factory=factory):
        with pytest.raises(PinBackendError, match="pins"):
            Signals(PinsConfig(), pin_factory=factory)


def test_kiosk_pins_env_chooses_the_simulated_pins(monkeypatch):
    monkeypatch.setenv("KIOSK_PINS", "mock")
    with Signals(PinsConfig(backend="lgpio")) as s:
        assert s.backend == "mock"
        s.signal(FAIL)
        assert s.pin("red").states[-1].state  # a MockPin, with its timed history
