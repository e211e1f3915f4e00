"""The verdict tones: one pattern per verdict, shared by the GPIO buzzer and the speaker.

A pattern is beeps of `on_s` seconds separated by `off_s` seconds, `count` times; the
speaker plays it at `hz`. Each verdict has a distinct rhythm, so a guard who is not
looking can tell them apart: pass is one long tone, fail three short low ones,
review two medium ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["Tone", "TONES", "Sound"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tone:
    on_s: float
    off_s: float
    count: int
    hz: float

    @property
    def duration_s(self) -> float:
        return self.count * self.on_s + (self.count - 1) * self.off_s


TONES: dict[str, Tone] = {
    "pass": Tone(on_s=0.45, off_s=0.0, count=1, hz=1320.0),
    "fail": Tone(on_s=0.12, off_s=0.12, count=3, hz=330.0),
    "review": Tone(on_s=0.25, off_s=0.2, count=2, hz=660.0),
}

SAMPLE_RATE = 22050
#: Fade at each end of a beep, so the speaker does not click.
FADE_S = 0.008
VOLUME = 0.6


class Sound:
    """Verdict tones through pygame's mixer. A missing speaker or audio device only
    logs a warning: the buzzer still sounds, and checking must never stop for audio.

        >>> with Sound(enabled=True) as sound:   # doctest: +SKIP
        ...     sound.play("fail")
    """

    def __init__(self, *, enabled: bool) -> None:
        self._sounds: dict[str, object] = {}
        self.enabled = False
        if not enabled:
            return
        import pygame

        try:
            pygame.mixer.init(frequency=SAMPLE_RATE, size=-16, channels=1)
        except pygame.error as exc:
            log.warning("sound disabled: no audio device (%s)", exc)
            return
        self.enabled = True
        for kind, tone in TONES.items():
            self._sounds[kind] = self._make(tone)

    @staticmethod
    def _make(tone: Tone):
        import numpy as np
        import pygame

        freq, _size, channels = pygame.mixer.get_init()
        beep_n = int(tone.on_s * freq)
        t = np.arange(beep_n) / freq
        beep = np.sin(2 * np.pi * tone.hz * t)
        fade = max(1, min(beep_n // 2, int(FADE_S * freq)))
        ramp = np.linspace(0.0, 1.0, fade)
        beep[:fade] *= ramp
        beep[-fade:] *= ramp[::-1]
        gap = np.zeros(int(tone.off_s * freq))
        parts = []
        for i in range(tone.count):
            parts.append(beep)
            if i < tone.count - 1:
                parts.append(gap)
        wave = (np.concatenate(parts) * VOLUME * 32767).astype(np.int16)
        if channels > 1:
            wave = np.repeat(wave[:, None], channels, axis=1)
        return pygame.sndarray.make_sound(np.ascontiguousarray(wave))

    def play(self, kind: str) -> bool:
        """Start the tone for a verdict kind in the background. False when silent."""
        sound = self._sounds.get(kind)
        if sound is None:
            return False
        sound.play()
        return True

    def close(self) -> None:
        if self.enabled:
            import pygame

            self.enabled = False
            self._sounds.clear()
            pygame.mixer.quit()

    def __enter__(self) -> "Sound":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
