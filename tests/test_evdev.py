"""Keyboard-mode USB scanners read from their input device (issue 17): the key-code
decoding on recorded event sequences (US keys with Shift, Vietnamese through Alt codes
and through the Linux Unicode hex mode), and the device itself through a virtual
keyboard (python-evdev's UInput) where /dev/uinput exists."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.scanner.evdevsource import (KEY_CAPSLOCK, KEY_ENTER, KEY_LEFTALT, PRESS, RELEASE, EvdevSource,
                                       KeyDecoder, alt_code_events, key_events, unicode_hex_events)

CCCD = "079201001234|025123456|Nguyễn Thị Hoa|15081990|Nữ|12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|01022022"


def decode(events) -> list[str]:
    decoder = KeyDecoder()
    return [text for code, value in events if (text := decoder.feed(code, value)) is not None]


# A recorded sequence (evtest on a GM65-style scanner in US mode): "Hc1:" then Enter,
# with a key repeat and a Shift held across two letters.
RECORDED = [(42, 1), (35, 1), (35, 0), (42, 0), (46, 1), (46, 2), (46, 0), (2, 1), (2, 0),
            (42, 1), (39, 1), (39, 0), (42, 0), (28, 1), (28, 0)]


def test_a_recorded_us_sequence_with_shift_and_key_repeat():
    assert decode(RECORDED) == ["Hcc1:"]  # the repeat (value 2) types again, as a keyboard does


def test_vietnamese_through_alt_codes():
    # "ễ" is U+1EC5: Alt held, keypad 7 8 7 7, Alt released.
    events = alt_code_events("Nguyễn", enter=True)
    assert (KEY_LEFTALT, PRESS) in events and (KEY_LEFTALT, RELEASE) in events
    assert decode(events) == ["Nguyễn"]
    assert decode(alt_code_events(CCCD, enter=True)) == [CCCD]


def test_vietnamese_through_the_linux_unicode_hex_mode():
    assert decode(unicode_hex_events(CCCD, enter=True)) == [CCCD]


def test_alt_code_with_a_leading_zero_is_a_windows_1252_byte():
    # Alt+0233 is é on Windows (code page 1252); Alt+233 would be U+00E9 too, Alt+0128 is €.
    keypad = {"0": 82, "1": 79, "2": 80, "3": 81, "8": 72}
    events = [(KEY_LEFTALT, PRESS)] + [(keypad[d], v) for d in "0128" for v in (1, 0)] + [(KEY_LEFTALT, RELEASE)]
    assert decode(events + [(KEY_ENTER, 1)]) == ["€"]


def test_caps_lock_swaps_letters_only():
    events = [(KEY_CAPSLOCK, 1), (KEY_CAPSLOCK, 0)] + key_events("aB1!", enter=True)
    assert decode(events) == ["Ab1!"]


def test_an_endless_code_is_dropped_not_kept_forever():
    decoder = KeyDecoder(max_chars=10)
    for code, value in key_events("A" * 50):
        decoder.feed(code, value)
    assert decoder.feed(KEY_ENTER, 1) is None
    assert decode(key_events("OK", enter=True)) == ["OK"]  # and the next code reads again


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=200))
def test_any_ascii_text_round_trips(text):
    assert decode(key_events(text, enter=True)) == ([text] if text else [])


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60))
def test_any_text_round_trips_through_both_unicode_modes(text):
    assert decode(alt_code_events(text, enter=True)) == [text]
    assert decode(unicode_hex_events(text, enter=True)) == [text]


# --- the device: a virtual keyboard through the kernel --------------------------------------

def _uinput():
    evdev = pytest.importorskip("evdev")
    if not os.path.exists("/dev/uinput"):
        pytest.skip("no /dev/uinput here: no virtual input device can be made")
    try:
        return evdev, evdev.UInput(name="kiosk-test-qrscanner")
    except OSError as exc:
        pytest.skip(f"/dev/uinput cannot be opened: {exc}")


def test_a_virtual_scanner_is_grabbed_read_and_its_unplugging_is_a_fault():
    evdev, ui = _uinput()
    with ui:
        time.sleep(0.2)  # udev makes the event node
        with EvdevSource(ui.device.path, backoff_max_s=0.5) as source:
            for code, value in alt_code_events("HD1:Nguyễn", enter=True):
                ui.write(evdev.ecodes.EV_KEY, code, value)
                ui.syn()
            line = source.read(timeout=2.0)
            assert line is not None and line.text == "HD1:Nguyễn"
    assert source.closed


def test_a_missing_scanner_is_a_fault_that_the_source_retries(tmp_path):
    pytest.importorskip("evdev")
    with EvdevSource(str(tmp_path / "event-missing"), backoff_max_s=0.5) as missing:
        assert missing.read(timeout=0.1) is None
        assert missing.fault and "cannot be opened" in missing.fault
