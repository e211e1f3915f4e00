"""The screen: every state at every size, readable colours, Vietnamese without boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame
import pytest

from kiosk.cli import main
from kiosk.config import load_config, replace
from kiosk.display import KINDS, SIZES, ScreenState, open_display, render_state
from kiosk.display import layouts
from kiosk.display import screen as screen_mod
from kiosk.display import texts
from kiosk.demo.screens import sample_states
from kiosk.display.fonts import VIETNAMESE_SAMPLE, find_fonts, missing_glyphs
from kiosk.display.backends import HeadlessDisplay, PygameDisplay, display_available, headless, window
from kiosk.display.draw import draw_text
from kiosk.display.layouts import BACKGROUNDS
from kiosk.display.screen import BadScreenState, PreviewShape, safe_name
from kiosk.errors import ConfigError, DeviceClosed
from kiosk.model import Outcome, Reason, Verdict

URL = "https://kiosk.invalid/checkin/BV-QNG-01"
VENUE = "Bệnh viện Đa khoa Tỉnh Quảng Ngãi"


def state(kind: str, **kw) -> ScreenState:
    base = dict(venue_name=VENUE, checkin_url=URL, today_count=7, pending_uploads=3)
    base.update(kw)
    return ScreenState(kind, **base)


def pixels(surface) -> np.ndarray:
    """(H, W, 3) array of a surface."""
    return pygame.surfarray.array3d(surface).swapaxes(0, 1)


def dominant(surface) -> tuple[int, int, int]:
    flat = pixels(surface).reshape(-1, 3).astype(np.int32)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    top = int(np.bincount(packed).argmax())
    return top >> 16, (top >> 8) & 255, top & 255


@pytest.fixture(scope="module")
def fonts():
    found = find_fonts("")
    if found.regular is None:
        pytest.fail("no font covering Vietnamese on this system: apt install fonts-dejavu-core")
    return found


# --- texts -----------------------------------------------------------------------------

def test_every_reason_has_a_vietnamese_and_an_english_line():
    for reason in Reason:
        text = texts.reason_text(reason)
        assert text is not None, reason
        assert text.vi.strip() and text.en.strip(), reason
        assert text.vi != text.en, reason
    assert texts.reason_text("expired") == texts.REASON_TEXTS[Reason.EXPIRED]
    assert texts.reason_text("no_such_reason") is None


def test_every_fault_and_verdict_has_both_languages():
    for kind in screen_mod.FAULT_KINDS:
        title, detail = texts.fault_text(kind, pending=12)
        assert title.vi and title.en and detail.vi and detail.en
    assert "12" in texts.fault_text("offline", pending=12)[1].vi
    assert set(texts.VERDICT_TEXTS) == {"pass", "fail", "review"}


def all_screen_text() -> str:
    parts = [VIETNAMESE_SAMPLE, "Nguyễn V*** A", VENUE]
    for b in [*texts.REASON_TEXTS.values(), *texts.VERDICT_TEXTS.values(),
              *(t for pair in texts.FAULT_TEXTS.values() for t in pair),
              texts.IDLE_HOW, texts.IDLE_PHONE, texts.IDLE_TODAY, texts.SCANNING, texts.SCANNING_HOLD]:
        parts += [b.vi, b.en]
    return " ".join(parts)


def test_font_has_a_glyph_for_every_letter_the_screen_shows(fonts):
    text = all_screen_text()
    assert missing_glyphs(fonts.regular, text) == ""
    assert missing_glyphs(fonts.bold, text) == ""
    assert fonts.covers_vietnamese


def test_glyph_check_catches_pygames_builtin_font():
    # The regression the font lookup exists for: the built-in font draws ễ ờ ự as boxes.
    assert set("ễờự") <= set(missing_glyphs(None, "Nguyễn ờ ự"))


def test_font_override_must_exist():
    with pytest.raises(ConfigError, match="fonts-dejavu-core"):
        find_fonts("/nonexistent/font.ttf")


# --- rendering -------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_state_renders_at_every_size(size, fonts):
    for name, st in sample_states(VENUE, URL).items():
        surface = render_state(st, size, fonts)
        assert surface.get_size() == size, name
        # Something besides the background was drawn (text, icon, QR).
        arr = pixels(surface)
        assert (arr != np.array(dominant(surface))).any(axis=2).mean() > 0.02, name


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind,channel", [("pass", "green"), ("fail", "red"), ("review", "amber")])
def test_verdict_screens_are_green_red_amber(kind, channel, size, fonts):
    surface = render_state(state(kind, name="Nguyễn V*** A", reason=Reason.EXPIRED), size, fonts)
    r, g, b = dominant(surface)
    assert (r, g, b) == BACKGROUNDS[kind]
    if channel == "green":
        assert g > 2 * r and g > 2 * b
    elif channel == "red":
        assert r > 3 * g and r > 3 * b
    else:
        assert r > 200 and 120 < g < 200 and b < 60


def test_verdict_word_is_drawn_where_people_look(fonts):
    w, h = 800, 480
    surface = render_state(state("fail", reason=Reason.EXPIRED), (w, h), fonts)
    arr = pixels(surface)
    # The right part of the top band holds "KHÔNG ĐẠT": white text on red.
    band = arr[int(h * 0.05):int(h * 0.4), int(w * 0.3):w - 20]
    white = (band > 230).all(axis=2).mean()
    assert white > 0.08


def test_review_text_is_dark_on_amber(fonts):
    arr = pixels(render_state(state("review", reason=Reason.IDENTITY_ONLY), (800, 480), fonts))
    assert (arr < 40).all(axis=2).mean() > 0.03


def test_banner_shows_faults_on_any_screen(fonts):
    plain = pixels(render_state(state("pass", reason=Reason.OK), (800, 480), fonts))
    with_banner = pixels(render_state(state("pass", reason=Reason.OK, faults=("offline",)), (800, 480), fonts))
    top = slice(0, 30)
    assert (with_banner[top] == np.array(layouts.BANNER_BG)).all(axis=2).mean() > 0.5
    assert not (plain[top] == np.array(layouts.BANNER_BG)).all(axis=2).any()


def test_idle_with_a_camera_fault_shows_the_fault_not_scan_here(fonts):
    st = state("idle", faults=("camera_fault", "offline"))
    assert screen_mod.shown_kind(st) == "camera_fault"
    assert screen_mod.shown_kind(state("idle", faults=("offline",))) == "idle"


def test_idle_qr_code_reads_back_as_the_venue_checkin_url(fonts):
    zxingcpp = pytest.importorskip("zxingcpp")
    arr = pixels(render_state(state("idle"), (800, 480), fonts))
    results = zxingcpp.read_barcodes(np.ascontiguousarray(arr))
    assert URL in [r.text for r in results]


def test_scanning_draws_the_preview_and_a_target_box(fonts):
    frame = np.full((240, 320), 128, np.uint8)
    arr = pixels(render_state(state("scanning", preview=frame), (800, 480), fonts))
    assert (arr == np.array(layouts.TARGET)).all(axis=2).sum() > 200
    assert (arr == 128).all(axis=2).mean() > 0.1
    # A colour camera frame comes as BGR (OpenCV): a blue scene must look blue.
    bgr = np.zeros((240, 320, 3), np.uint8)
    bgr[..., 0] = 200
    arr_colour = pixels(render_state(state("scanning", preview=bgr), (800, 480), fonts))
    assert (arr_colour == np.array([0, 0, 200])).all(axis=2).mean() > 0.1
    # Without a camera the box is still drawn.
    arr = pixels(render_state(state("scanning"), (800, 480), fonts))
    assert (arr == np.array(layouts.TARGET)).all(axis=2).sum() > 200


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_long_text_is_fitted_inside_its_box_never_clipped(size, fonts):
    surface = pygame.Surface(size)
    long_text = " ".join(t.vi for t in texts.REASON_TEXTS.values())
    box = pygame.Rect(10, 10, size[0] // 3, size[1] // 5)
    drawn = draw_text(surface, long_text, box, fonts.bold, max_size=200, color=(255, 255, 255), max_lines=3)
    assert box.contains(drawn)
    drawn = draw_text(surface, "VUI LÒNG GẶP BẢO VỆ", box, fonts.bold, max_size=400, color=(255, 255, 255))
    assert box.contains(drawn) and drawn.h > box.h // 3


def test_name_never_shows_an_id_number():
    assert safe_name("Nguyễn V*** A 012345678901") == "Nguyễn V*** A ***"
    assert safe_name("Nguye\u0302\u0303n V*** A") == "Nguyễn V*** A"  # combining accents composed
    assert safe_name(None) is None


def test_screen_state_rejects_unknown_kinds_and_orders_faults():
    with pytest.raises(BadScreenState):
        ScreenState("party")
    with pytest.raises(BadScreenState):
        ScreenState("idle", faults=("gremlins",))
    st = ScreenState("idle", faults=("offline", "camera_fault", "offline"))
    assert st.faults == ("camera_fault", "offline")
    assert ScreenState("idle", preview=np.zeros((2, 2))) == ScreenState("idle", preview=np.ones((2, 2)))
    v = Verdict(Outcome.FAIL, Reason.REVOKED, "dcc", "Lê H*** C")
    assert ScreenState.from_verdict(v, venue_name="X") == ScreenState("fail", venue_name="X", name="Lê H*** C",
                                                                         reason=Reason.REVOKED)


# --- displays --------------------------------------------------------------------------

def cfg_with(**dotted):
    return replace(load_config(None, search=False), **dotted)


BACKENDS = {
    "headless": {"display.backend": "headless", "display.size": "1024x600"},
    "pygame": {"display.backend": "pygame", "display.size": "1024x600", "display.sound": False},
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backend_keeps_the_display_contract(backend, monkeypatch, tmp_path):
    """One contract over every backend: a Display, sized as configured, shows what it is
    given (screenshot), a closed display refuses to be used and closes twice quietly."""
    from kiosk.display.backends import Display

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    display = open_display(cfg_with(**BACKENDS[backend]))
    with display:
        assert isinstance(display, Display) and not display.closed
        assert tuple(display.size) == (1024, 600)
        display.show(state("scanning", preview=np.full((720, 1280), 128, np.uint8)))
        display.show(state("review", reason=Reason.IDENTITY_ONLY))
        assert display.poll() == []
        display.screenshot(tmp_path / "shot.png")
        shot = pygame.image.load(str(tmp_path / "shot.png"))
        assert shot.get_size() == (1024, 600) and dominant(shot) == BACKGROUNDS["review"]
    assert display.closed
    display.close()
    for use in (lambda: display.show(state("idle")), display.poll):
        with pytest.raises(DeviceClosed):
            use()


def test_headless_display_records_states_and_events(tmp_path):
    with open_display(cfg_with(), headless=True) as display:
        assert isinstance(display, HeadlessDisplay)
        display.show(state("idle"))
        display.show(state("fail", reason=Reason.EXPIRED))
        assert [s.kind for s in display.history] == ["idle", "fail"]
        display.inject("guard")
        assert display.poll() == ["guard"] and display.poll() == []
        display.screenshot(tmp_path / "shot.png")
        assert dominant(pygame.image.load(str(tmp_path / "shot.png"))) == BACKGROUNDS["fail"]
    display.close()  # idempotent
    with pytest.raises(DeviceClosed):
        display.show(state("idle"))


def test_auto_backend_runs_headless_without_a_display(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(window, "_dri_cards", lambda: [])
    with open_display(cfg_with(**{"display.backend": "auto"})) as display:
        assert isinstance(display, HeadlessDisplay)


def test_display_available_rules():
    assert display_available({"DISPLAY": ":0"}, dri_cards=[], on_pi=False)
    assert display_available({"SDL_VIDEODRIVER": "dummy"}, dri_cards=[], on_pi=False)
    assert display_available({}, dri_cards=[Path("/dev/dri/card0")], on_pi=True)
    assert not display_available({}, dri_cards=[Path("/dev/dri/card0")], on_pi=False)
    assert not display_available({}, dri_cards=[], on_pi=True)


def test_pygame_window_shows_states_and_maps_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    cfg = cfg_with(**{"display.backend": "pygame", "display.size": "1024x600", "display.sound": True})
    with open_display(cfg) as display:
        assert isinstance(display, PygameDisplay)
        assert display.size == (1024, 600)
        display.show(state("pass", reason=Reason.OK))
        display.screenshot(tmp_path / "pass.png")
        assert dominant(pygame.image.load(str(tmp_path / "pass.png"))) == BACKGROUNDS["pass"]
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_g, mod=0, unicode="g", scancode=0))
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="", scancode=0))
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        assert display.poll() == ["guard", "quit", "quit"]
    display.close()
    with pytest.raises(DeviceClosed):
        display.poll()


def test_sound_plays_each_verdict_tone(monkeypatch):
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    from kiosk.display.tones import Sound

    with Sound(enabled=True) as sound:
        if not sound.enabled:
            pytest.skip("no audio driver, even the dummy one")
        assert all(sound.play(kind) for kind in ("pass", "fail", "review"))
        assert not sound.play("idle")
    assert not Sound(enabled=False).play("pass")


# --- kiosk screens -----------------------------------------------------------------------

def test_kiosk_screens_one_size(tmp_path, capsys):
    assert main(["screens", "--out", str(tmp_path), "--size", "800x480"]) == 0
    names = {p.stem for p in tmp_path.glob("*.png")}
    assert set(KINDS) <= names
    assert pygame.image.load(str(tmp_path / "fail.png")).get_size() == (800, 480)
    assert str(tmp_path / "idle.png") in capsys.readouterr().out


def test_kiosk_screens_every_size(tmp_path):
    assert main(["screens", "--out", str(tmp_path)]) == 0
    for w, h in SIZES:
        folder = tmp_path / f"{w}x{h}"
        assert set(KINDS) <= {p.stem for p in folder.glob("*.png")}
        assert pygame.image.load(str(folder / "review.png")).get_size() == (w, h)


def test_kiosk_screens_bad_size_is_a_clear_error(tmp_path, capsys):
    assert main(["screens", "--out", str(tmp_path), "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_importing_the_display_package_loads_no_hardware_library():
    import subprocess
    import sys

    code = ("import sys, kiosk.display, kiosk.display.signals, kiosk.display.guard, kiosk.cli.screens, kiosk.demo.screens, "
            "kiosk.display.pins, kiosk.display.tones; "
            "print(sorted(m for m in ('pygame', 'gpiozero', 'RPi', 'lgpio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"


def test_no_desktop_with_a_drm_card_uses_kms(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(window, "_dri_cards", lambda: [Path("/dev/dri/card1")])
    window._prepare_video_driver()
    import os

    assert os.environ["SDL_VIDEODRIVER"] == "kmsdrm"
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("SDL_VIDEODRIVER")
    window._prepare_video_driver()
    assert "SDL_VIDEODRIVER" not in os.environ


def test_headless_history_is_bounded_for_long_runs():
    with HeadlessDisplay() as display:
        for i in range(headless.HISTORY_MAX + 5):
            display.show(state("idle", today_count=i))
        assert len(display.history) == headless.HISTORY_MAX
        assert display.history[-1].today_count == headless.HISTORY_MAX + 4


#: What a headless display may keep after 10,000 scanning states, all told: its bounded
#: history of small states. One 720p frame alone is 0.9 MB; keeping frames kept ~900 MB.
HEADLESS_RETAINED_MAX = 4 * 1024 * 1024


def test_headless_display_memory_stays_flat_over_10000_preview_frames():
    """Issue 16: `kiosk run --headless` grew from 67 MB to 534 MB in 5 minutes, because
    every recorded scanning state kept its camera frame."""
    import gc
    import tracemalloc

    with HeadlessDisplay() as display:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(10_000):
                # A new frame each time, as a camera delivers them.
                display.show(state("scanning", today_count=i, preview=np.zeros((720, 1280), np.uint8)))
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert retained < HEADLESS_RETAINED_MAX, f"{retained / 2**20:.0f} MB retained"
        assert len(display.history) == headless.HISTORY_MAX
        last = display.history[-1]
        assert last.today_count == 9_999 and last.preview == PreviewShape((720, 1280), "uint8")
        assert last.frame is None


def test_kiosk_screens_as_a_user_runs_it(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    env.pop("PYGAME_HIDE_SUPPORT_PROMPT", None)
    out = subprocess.run([sys.executable, "-m", "kiosk.cli", "screens", "--out", str(tmp_path), "--size", "1024x600"],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent,
                         check=True)
    listed = out.stdout.split()
    # stdout is exactly the list of files written (no library greeting mixed in).
    assert listed and all(Path(p).is_file() and p.endswith(".png") for p in listed)
    assert pygame.image.load(str(tmp_path / "idle.png")).get_size() == (1024, 600)


# --- properties of the small parsers -------------------------------------------------------

from hypothesis import given, strategies as hs  # noqa: E402


@given(hs.integers(10, 99999), hs.integers(10, 99999))
def test_parse_size_round_trips(w, h):
    assert screen_mod.parse_size(f"{w}x{h}") == (w, h)


@given(hs.text(max_size=20))
def test_parse_size_answers_any_text_with_a_size_or_a_config_error(text):
    try:
        w, h = screen_mod.parse_size(text)
    except ConfigError as exc:
        assert "WIDTHxHEIGHT" in str(exc)
    else:
        assert w >= 10 and h >= 10


@given(hs.text(max_size=40))
def test_safe_name_never_lets_an_id_number_through(name):
    import re

    shown = safe_name(name)
    assert shown is None or not re.search(r"\d{%d,}" % screen_mod.ID_DIGITS, shown)
