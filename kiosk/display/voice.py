"""Spoken verdicts, for people who cannot see the screen (`display.voice = true`).

The clips are made once, at install time (`install.sh` runs `kiosk voice build`), by
espeak-ng's Vietnamese and English voices: one WAV per verdict in the state folder,
Vietnamese first, then English, as the screen shows them. The kiosk plays the clip
through pygame's mixer when it shows the verdict, beside the buzzer; a missing clip or
audio device only logs a warning (checking never waits for the speaker).

    >>> sorted(LINES)
    ['fail', 'pass', 'review']
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import wave
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.files import replace_durably

__all__ = ["LINES", "VoiceError", "Voice", "build_voice", "voice_dir"]

log = logging.getLogger(__name__)

#: What is said for each verdict: (Vietnamese, English).
LINES: dict[str, tuple[str, str]] = {
    "pass": ("Mời vào", "Welcome"),
    "fail": ("Không đạt, vui lòng gặp bảo vệ", "Not admitted, please see the guard"),
    "review": ("Vui lòng gặp bảo vệ", "Please see the guard"),
}
#: espeak-ng voices and speed (words per minute): slower than its default 175, for a
#: noisy entrance.
VOICES = {"vi": "vi", "en": "en-gb"}
SPEED_WPM = 150
#: Silence between the Vietnamese and the English line.
GAP_S = 0.35
ESPEAK_TIMEOUT_S = 30.0
#: The folder under the state directory that holds the clips.
FOLDER = "voice"


class VoiceError(KioskError, RuntimeError):
    """The clips cannot be made (no espeak-ng, no Vietnamese voice)."""


def voice_dir(cfg) -> Path:
    """Where `kiosk voice build` writes the clips and the kiosk looks for them."""
    from kiosk.config import state_dir

    return state_dir(cfg) / FOLDER


def _speak(text: str, voice: str, out: Path, espeak: str) -> None:
    try:
        subprocess.run([espeak, "-v", voice, "-s", str(SPEED_WPM), "-w", str(out), text], check=True,
                       capture_output=True, timeout=ESPEAK_TIMEOUT_S)
    except FileNotFoundError:
        raise VoiceError(f"{espeak} not found: install the espeak-ng package (apt-get install espeak-ng)") from None
    except subprocess.CalledProcessError as exc:
        raise VoiceError(f"{espeak} -v {voice} failed: {exc.stderr.decode(errors='replace').strip()}") from None


def _join(parts: list[Path], out: Path) -> None:
    """Concatenate WAVs of one format with a short silence between them."""
    with wave.open(str(parts[0]), "rb") as first:
        params = first.getparams()
    gap = b"\0" * (int(params.framerate * GAP_S) * params.sampwidth * params.nchannels)
    with wave.open(str(out), "wb") as joined:
        joined.setparams(params)
        for i, part in enumerate(parts):
            with wave.open(str(part), "rb") as clip:
                if clip.getparams()[:3] != params[:3]:
                    raise VoiceError(f"{part}: another WAV format than {parts[0]}")
                joined.writeframes(clip.readframes(clip.getnframes()))
            if i < len(parts) - 1:
                joined.writeframes(gap)


def build_voice(out_dir: Path, *, espeak: str | None = None) -> list[Path]:
    """Write `<verdict>.wav` (Vietnamese, then English) for every verdict into `out_dir`;
    returns the paths. Replaces clips made before; a failure leaves them as they were."""
    espeak = espeak or shutil.which("espeak-ng") or "espeak-ng"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, (vi, en) in LINES.items():
        parts = [out_dir / f".{kind}.vi.wav", out_dir / f".{kind}.en.wav"]
        try:
            _speak(vi, VOICES["vi"], parts[0], espeak)
            _speak(en, VOICES["en"], parts[1], espeak)
            tmp = out_dir / f".{kind}.wav"
            _join(parts, tmp)
            replace_durably(tmp, out_dir / f"{kind}.wav")
        finally:
            for part in parts:
                part.unlink(missing_ok=True)
        written.append(out_dir / f"{kind}.wav")
    return written


class Voice:
    """The verdict clips through pygame's mixer. `play(kind)` returns the mixer channel
    the clip plays on, or None when silent (voice off, no clip, no audio device).

        >>> with Voice(Path("/var/lib/kiosk/voice"), enabled=True) as voice:  # doctest: +SKIP
        ...     voice.play("pass")
    """

    def __init__(self, folder: Path, *, enabled: bool) -> None:
        self.folder = Path(folder)
        self._clips: dict[str, object] = {}
        self._owns_mixer = False
        if not enabled:
            return
        import pygame

        try:
            if not pygame.mixer.get_init():
                with wave.open(str(self.folder / "pass.wav"), "rb") as clip:
                    rate, channels = clip.getframerate(), clip.getnchannels()
                pygame.mixer.init(frequency=rate, size=-16, channels=channels)
                self._owns_mixer = True
            for kind in LINES:
                self._clips[kind] = pygame.mixer.Sound(str(self.folder / f"{kind}.wav"))
        except (OSError, EOFError, wave.Error, pygame.error) as exc:
            log.warning("spoken verdicts off: %s (run `kiosk voice build`)", exc)
            self._clips.clear()

    @property
    def enabled(self) -> bool:
        return bool(self._clips)

    def play(self, kind: str):
        clip = self._clips.get(kind)
        return clip.play() if clip is not None else None

    def close(self) -> None:
        self._clips.clear()
        if self._owns_mixer:
            import pygame

            self._owns_mixer = False
            pygame.mixer.quit()

    def __enter__(self) -> "Voice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
