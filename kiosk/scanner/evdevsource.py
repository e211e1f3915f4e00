"""Keyboard-mode USB QR scanners, read from their input device (`scanner.kind = "evdev"`).

Most cheap USB scanners are keyboards. Under systemd the kiosk has no terminal, so what
such a scanner "types" reaches nobody; and a console keyboard layout (AZERTY, a
Vietnamese input method) would corrupt it anyway. This source opens the scanner's
`/dev/input/event*` device with python-evdev, grabs it (EVIOCGRAB: the text reaches no
console or login prompt) and decodes the key codes itself, as a US HID keyboard,
whatever layout the system has:

- plain keys with Shift and Caps Lock: US layout -> ASCII (Enter or keypad Enter ends
  a code);
- Alt + keypad digits ("Alt codes", the scanners' "Alt+Keypad" / "Unicode (Windows)"
  mode): Alt held, the decimal code point on the keypad, Alt released -> that character
  (a leading 0 means the Windows-1252 byte, as Windows does: Alt+0233 is é);
- Ctrl+Shift+U, hex digits, Space or Enter: the IBus/GTK Unicode entry that scanners'
  Linux "Unicode" modes emit (U+1EC5 for ễ).

Vietnamese text (a CCCD chip card's name and address) therefore arrives intact in
either Unicode mode. A device that goes away is a fault, reopened with the same
backoff as the serial source.

    >>> decoder = KeyDecoder()
    >>> [decoder.feed(code, value) for code, value in key_events("HC1:A")] and decoder.feed(KEY_ENTER, 1)
    'HC1:A'
"""

from __future__ import annotations

import logging
import select
from typing import Any, Iterator

from kiosk.model import utcnow
from kiosk.scanner.base import Line, Source
from kiosk.scanner.serialport import MAX_LINE_BYTES

__all__ = ["EvdevSource", "KeyDecoder", "key_events", "alt_code_events", "unicode_hex_events"]

log = logging.getLogger(__name__)

# Linux input event codes (linux/input-event-codes.h): the same on every layout.
EV_KEY = 1
KEY_ENTER, KEY_KPENTER, KEY_SPACE, KEY_TAB, KEY_BACKSPACE = 28, 96, 57, 15, 14
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTCTRL, KEY_RIGHTCTRL = 42, 54, 29, 97
KEY_LEFTALT, KEY_RIGHTALT, KEY_CAPSLOCK, KEY_U = 56, 100, 58, 22
PRESS, RELEASE, REPEAT = 1, 0, 2

#: US HID layout: key code -> (plain, with Shift).
US_KEYS: dict[int, tuple[str, str]] = {
    **{code: (d, s) for code, d, s in zip(range(2, 12), "1234567890", "!@#$%^&*()")},
    12: ("-", "_"), 13: ("=", "+"), 26: ("[", "{"), 27: ("]", "}"), 39: (";", ":"), 40: ("'", '"'),
    41: ("`", "~"), 43: ("\\", "|"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
    86: ("\\", "|"),
    **{code: (c, c.upper()) for code, c in zip(range(16, 26), "qwertyuiop")},
    **{code: (c, c.upper()) for code, c in zip(range(30, 39), "asdfghjkl")},
    **{code: (c, c.upper()) for code, c in zip(range(44, 51), "zxcvbnm")},
}
#: Keypad keys: digits for Alt codes, and what they type otherwise (Num Lock on).
KEYPAD: dict[int, str] = {71: "7", 72: "8", 73: "9", 75: "4", 76: "5", 77: "6", 79: "1", 80: "2", 81: "3",
                          82: "0", 83: ".", 55: "*", 74: "-", 78: "+", 98: "/"}
_LETTERS = {code for code, (plain, _) in US_KEYS.items() if plain.isalpha()}
_HEX_DIGITS = set("0123456789abcdef")
#: Longest Alt code or Unicode hex run taken: U+10FFFF is 1114111 (7 digits), 6 hex digits.
MAX_CODE_DIGITS = 7


class KeyDecoder:
    """Key events in, one complete code (str) out per Enter; layout-independent.

    `feed(code, value)` takes one EV_KEY event (value 1 press, 0 release, 2 repeat) and
    returns the finished line at Enter, else None.
    """

    def __init__(self, *, max_chars: int = MAX_LINE_BYTES) -> None:
        self.max_chars = max_chars
        self._held: set[int] = set()
        self._caps = False
        self._text: list[str] = []
        self._alt_digits = ""        # keypad digits typed while Alt is held
        self._hex: str | None = None  # Ctrl+Shift+U entry in progress: its hex digits
        self._too_long = False

    def _mods(self) -> tuple[bool, bool, bool]:
        shift = bool(self._held & {KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
        ctrl = bool(self._held & {KEY_LEFTCTRL, KEY_RIGHTCTRL})
        alt = bool(self._held & {KEY_LEFTALT, KEY_RIGHTALT})
        return shift, ctrl, alt

    def _put(self, text: str) -> None:
        if len(self._text) >= self.max_chars:
            self._too_long = True
            return
        self._text.append(text)

    def feed(self, code: int, value: int) -> str | None:
        if value == RELEASE:
            self._held.discard(code)
            if code in (KEY_LEFTALT, KEY_RIGHTALT) and self._alt_digits and not (
                    self._held & {KEY_LEFTALT, KEY_RIGHTALT}):
                digits, self._alt_digits = self._alt_digits, ""
                self._put(_alt_char(digits))
            return None
        if value == REPEAT and code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTCTRL, KEY_RIGHTCTRL,
                                        KEY_LEFTALT, KEY_RIGHTALT):
            return None
        if value == PRESS:
            self._held.add(code)
        shift, ctrl, alt = self._mods()
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT):
            return None
        if code == KEY_CAPSLOCK:
            if value == PRESS:
                self._caps = not self._caps
            return None
        if self._hex is not None:
            return self._hex_key(code, shift)
        if ctrl and shift and code == KEY_U:
            self._hex = ""
            return None
        if alt:
            if code in KEYPAD and KEYPAD[code].isdigit() and len(self._alt_digits) < MAX_CODE_DIGITS:
                self._alt_digits += KEYPAD[code]
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            return self._end_line()
        if ctrl:
            return None  # no control characters in a QR text
        if code in US_KEYS:
            plain, shifted = US_KEYS[code]
            upper = shift != (self._caps and code in _LETTERS)
            self._put(shifted if upper else plain)
        elif code in KEYPAD:
            self._put(KEYPAD[code])
        elif code == KEY_TAB:
            self._put("\t")
        return None

    def _hex_key(self, code: int, shift: bool) -> str | None:
        assert self._hex is not None
        if code in (KEY_SPACE, KEY_ENTER, KEY_KPENTER):
            digits, self._hex = self._hex, None
            if digits:
                self._put(_code_point(int(digits, 16)))
            return None
        char = US_KEYS.get(code, (KEYPAD.get(code, ""),))[0]
        if char in _HEX_DIGITS and len(self._hex) < MAX_CODE_DIGITS - 1:
            self._hex += char
        elif code == KEY_BACKSPACE:
            self._hex = self._hex[:-1]
        return None

    def _end_line(self) -> str | None:
        text, self._text = "".join(self._text), []
        too_long, self._too_long = self._too_long, False
        if too_long:
            log.warning("evdev: a code longer than %d characters dropped", self.max_chars)
            return None
        return text or None


def _code_point(value: int) -> str:
    """A code point as text; one that is none (a surrogate, past U+10FFFF) is U+FFFD."""
    if 0 < value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
        return chr(value)
    return "\ufffd"


def _alt_char(digits: str) -> str:
    """Alt + keypad digits as Windows reads them: 0NNN is a Windows-1252 byte, else the
    decimal Unicode code point (what scanners' Unicode Alt mode sends)."""
    value = int(digits)
    if digits.startswith("0") and value < 256:
        return bytes([value]).decode("cp1252", errors="replace")
    return _code_point(value)


# --- what a scanner sends, for tests and for recording ---------------------------------

_CHAR_KEYS = {plain: (code, False) for code, (plain, _) in US_KEYS.items()}
_CHAR_KEYS.update({shifted: (code, True) for code, (plain, shifted) in US_KEYS.items() if shifted != plain})
_CHAR_KEYS[" "] = (KEY_SPACE, False)
_KEYPAD_DIGIT = {digit: code for code, digit in KEYPAD.items() if digit.isdigit()}


def _tap(code: int) -> list[tuple[int, int]]:
    return [(code, PRESS), (code, RELEASE)]


def key_events(text: str, *, enter: bool = False) -> list[tuple[int, int]]:
    """The key events a US-keyboard scanner sends for ASCII `text` (Shift as needed)."""
    events: list[tuple[int, int]] = []
    for char in text:
        code, shift = _CHAR_KEYS[char]
        events += ([(KEY_LEFTSHIFT, PRESS)] + _tap(code) + [(KEY_LEFTSHIFT, RELEASE)]) if shift else _tap(code)
    return events + (_tap(KEY_ENTER) if enter else [])


def _mixed(text: str, enter: bool, other) -> list[tuple[int, int]]:
    """ASCII as plain keys, every other character as `other(char)`'s events."""
    events: list[tuple[int, int]] = []
    for char in text:
        events += key_events(char) if char in _CHAR_KEYS else other(char)
    return events + (_tap(KEY_ENTER) if enter else [])


def _alt_code(char: str) -> list[tuple[int, int]]:
    digits = [e for digit in str(ord(char)) for e in _tap(_KEYPAD_DIGIT[digit])]
    return [(KEY_LEFTALT, PRESS), *digits, (KEY_LEFTALT, RELEASE)]


def _unicode_hex(char: str) -> list[tuple[int, int]]:
    start = [(KEY_LEFTCTRL, PRESS), (KEY_LEFTSHIFT, PRESS), *_tap(KEY_U), (KEY_LEFTSHIFT, RELEASE),
             (KEY_LEFTCTRL, RELEASE)]
    return start + key_events(f"{ord(char):x}") + _tap(KEY_SPACE)


def alt_code_events(text: str, *, enter: bool = False) -> list[tuple[int, int]]:
    """Alt-code mode: ASCII as keys, every other character as Alt + its decimal code point."""
    return _mixed(text, enter, _alt_code)


def unicode_hex_events(text: str, *, enter: bool = False) -> list[tuple[int, int]]:
    """Linux Unicode mode: ASCII as keys, others as Ctrl+Shift+U, hex digits, Space."""
    return _mixed(text, enter, _unicode_hex)


# --- the source --------------------------------------------------------------------------

class EvdevSource(Source):
    """Codes from a keyboard-mode scanner's input device, grabbed while open."""

    kind = "scanner"

    def __init__(self, device: str, *, backoff_max_s: float = 30.0, grab: bool = True) -> None:
        super().__init__(name=device, backoff_max_s=backoff_max_s)
        self.device_path = device
        self.grab = grab
        self._dev: Any = None
        self._decoder = KeyDecoder()
        self._ready: list[str] = []

    def _open(self) -> None:
        import evdev  # python-evdev, the [pi] extra: loaded only when this source is chosen

        dev = evdev.InputDevice(self.device_path)
        try:
            if self.grab:
                dev.grab()  # the scanned text reaches no console, no login prompt
        except OSError:
            dev.close()
            raise
        self._dev = dev
        self._decoder = KeyDecoder()  # a half-read code from before a fault is gone

    def _events(self, timeout: float) -> Iterator[tuple[int, int]]:
        ready, _, _ = select.select([self._dev.fd], [], [], max(0.0, timeout))
        if not ready:
            return
        for event in self._dev.read():  # OSError (ENODEV) when the scanner is unplugged
            if event.type == EV_KEY:
                yield event.code, event.value

    def _read_item(self, timeout: float) -> Line | None:
        if not self._ready:
            for code, value in self._events(timeout):
                text = self._decoder.feed(code, value)
                if text is not None:
                    self._ready.append(text)
        if not self._ready:
            return None
        self._recovered()
        return Line(text=self._ready.pop(0), at=utcnow())

    def _release(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            try:
                if self.grab:
                    dev.ungrab()
            except OSError:
                pass  # unplugged: nothing to give back
            dev.close()
