"""Issue 17, screens: no awkward line breaks, nothing on the bottom edge, counts that say
what they count, the same message in both languages, names that look masked. Every
screen is rendered by the real pygame renderer (SDL's dummy driver) at every size; the
PNGs of `kiosk screens` were looked at too."""

from __future__ import annotations

import pytest

from kiosk.display import texts
from kiosk.display.screen import SIZES
from kiosk.model import mask_name

pytestmark = pytest.mark.usefixtures("dummy_sdl")

#: Words that must never end a line: each starts a pair that reads as one ("Đang / đọc
#: mã…", "bình / thường", "khoá / tin cậy", "điện / thoại" were broken there).
PAIR_STARTS = ("Đang", "đọc", "bình", "khoá", "tin", "điện", "nhân", "khai", "chờ", "ghi")


@pytest.fixture
def dummy_sdl(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def drawn_lines(tmp_path, size, monkeypatch) -> list[str]:
    """Every line the renderer laid out while `kiosk screens` drew every state at `size`."""
    from kiosk.demo.screens import write_screens
    from kiosk.display import draw

    seen: list[str] = []
    real = draw._fit.__wrapped__

    def recording(*args):
        result = real(*args)
        seen.extend(result[1])
        return result

    monkeypatch.setattr(draw, "_fit", recording)
    write_screens(tmp_path, [size], venue_name="Siêu thị Demo", checkin_url="https://example.vn/c/DEMO",
                  font="", nested=False)
    return seen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_line_breaks_inside_a_word_pair_at_any_size(tmp_path, size, monkeypatch):
    lines = drawn_lines(tmp_path, size, monkeypatch)
    assert lines
    broken = [line for line in lines if line.split(" ")[-1] in PAIR_STARTS or line.startswith("·")]
    assert broken == []
    shown = " ".join(lines).replace(texts.NBSP, " ")
    assert "Đang đọc mã…" in shown and "bình thường" in shown


def test_the_bottom_lines_keep_clear_of_the_bezel_at_800x480(tmp_path):
    import pygame

    from kiosk.demo.screens import write_screens

    paths = write_screens(tmp_path, [(800, 480)], venue_name="Siêu thị Demo", checkin_url="https://example.vn/c/D",
                          font="", nested=False)
    image = pygame.image.load(str(next(p for p in paths if p.name == "idle.png")))
    w, h = image.get_size()
    background = image.get_at((w // 2, h - 2))
    lowest = max(y for y in range(h) for x in range(0, w, 2) if image.get_at((x, y)) != background)
    assert h - 1 - lowest >= 30, f"text {h - 1 - lowest} px from the bottom edge"


def test_offline_count_says_what_it_counts_in_both_languages(tmp_path, monkeypatch):
    lines = " ".join(drawn_lines(tmp_path, (1024, 600), monkeypatch)).replace(texts.NBSP, " ")
    from kiosk.demo.screens import SAMPLE_PENDING

    assert f"({SAMPLE_PENDING} lượt chờ gửi)" in lines and f"({SAMPLE_PENDING} waiting to upload)" in lines
    assert f"Offline ({SAMPLE_PENDING})" not in lines


def test_vietnamese_and_english_ask_for_the_same_person():
    for kind, (_, detail) in texts.FAULT_TEXTS.items():
        if "call the staff" in detail.en:
            assert "gọi nhân viên" in detail.vi.replace(texts.NBSP, " "), kind
            assert "kỹ thuật" not in detail.vi, kind


@pytest.mark.parametrize("name,shown", [("Trần Mai", "Trần M***"), ("Nguyễn Văn An", "Nguyễn V*** A"),
                                        ("Lê Thị Hồng Nhung", "Lê T*** H*** N"), ("Mai", "M***")])
def test_a_masked_name_always_shows_a_mask_mark(name, shown):
    assert mask_name(name) == shown
