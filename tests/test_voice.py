"""Spoken verdicts (issue 17): clips made by the real espeak-ng (its Vietnamese and
English voices), checked as WAVs that are not silent and of a plausible length, and a
pass that plays the pass clip through pygame's mixer (SDL's dummy audio driver)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.display.voice import LINES, Voice, VoiceError, build_voice

ROOT = Path(__file__).resolve().parent.parent

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None and os.environ.get("CI") != "true",
                                  reason="espeak-ng not installed (scripts/setup.sh --dev installs it)")


def _samples(path: Path) -> tuple[np.ndarray, float]:
    with wave.open(str(path), "rb") as clip:
        assert clip.getsampwidth() == 2
        data = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")
        return data, clip.getnframes() / clip.getframerate()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None and os.environ.get("CI") != "true":
        pytest.skip("espeak-ng not installed")  # with CI=true the build below fails instead
    out = tmp_path_factory.mktemp("voice")
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "voice", "build", "--out", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert sorted(Path(line).name for line in result.stdout.split()) == ["fail.wav", "pass.wav", "review.wav"]
    return out


@needs_espeak
@pytest.mark.parametrize("kind", sorted(LINES))
def test_each_clip_is_speech_of_a_plausible_length(clips, kind):
    data, seconds = _samples(clips / f"{kind}.wav")
    words = sum(len(line.split()) for line in LINES[kind])
    assert 0.25 * words < seconds < 1.0 * words + 1.5, f"{seconds:.2f} s for {words} words"
    rms = float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))
    assert rms > 300, f"nearly silent (RMS {rms:.0f})"
    # Speech, not a tone: loud and quiet stretches alternate (the gap between the languages).
    window = len(data) // 40
    loud = [float(np.abs(data[i:i + window]).mean()) for i in range(0, len(data) - window, window)]
    assert min(loud) < 0.1 * max(loud)


@needs_espeak
def test_the_fail_line_is_longer_than_the_pass_line(clips):
    assert _samples(clips / "fail.wav")[1] > _samples(clips / "pass.wav")[1] + 1.0


def test_without_espeak_the_build_says_what_to_install(tmp_path):
    with pytest.raises(VoiceError, match="apt-get install espeak-ng"):
        build_voice(tmp_path, espeak=str(tmp_path / "no-espeak-ng"))
    assert not list(tmp_path.glob("*.wav"))


@needs_espeak
def test_a_pass_plays_the_pass_clip_through_the_mixer(clips, monkeypatch):
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    with Voice(clips, enabled=True) as voice:
        assert voice.enabled
        channel = voice.play("pass")
        assert channel is not None and channel.get_busy()
        _, seconds = _samples(clips / "pass.wav")
        assert abs(channel.get_sound().get_length() - seconds) < 0.05  # the pass clip, not another


@needs_espeak
def test_the_window_speaks_a_verdict_when_voice_is_on(clips, monkeypatch, tmp_path):
    from kiosk.config import load_config
    from kiosk.display import ScreenState
    from kiosk.display.backends import PygameDisplay

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    state = tmp_path / "state"
    shutil.copytree(clips, state / "voice")
    cfg = load_config(None, search=False, overrides={"device.state_dir": str(state), "display.voice": True,
                                                     "display.backend": "pygame"})
    with PygameDisplay(cfg) as display:
        assert display.voice.enabled
        display.show(ScreenState(kind="fail", venue_name="Chợ"))
        import pygame

        assert pygame.mixer.get_busy()


def test_voice_off_or_without_clips_is_silent_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    with Voice(tmp_path, enabled=False) as off:
        assert not off.enabled and off.play("pass") is None
    with Voice(tmp_path / "none", enabled=True) as missing:
        assert not missing.enabled and missing.play("pass") is None
