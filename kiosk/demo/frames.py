"""Synthetic gate-camera frames: a QR code (rendered with segno) on a phone screen, an ID
card or a sheet of paper, held up in front of a kiosk camera, composed with OpenCV.

Each `kind` is one situation a gate camera meets: light and dark-mode phone screens,
printed cards and paper, a strong perspective tilt, a glare blob, moiré from filming a
screen, motion blur, low light with sensor noise, small modules, and frames with no code
at all (text, barcode-like stripes). Everything is drawn from `numpy.random.default_rng(seed)`,
so a seed always gives the same picture. Used by `kiosk demo` (write_demo_frames) and
bench/decode_bench.py (synthetic_set).

    >>> img = render_scene("HC1:6BFOXN", kind="phone-dark", seed=3, size=(640, 360))
    >>> img.shape
    (360, 640, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["KINDS", "CODE_KINDS", "SynthCase", "render_scene", "write_demo_frames", "synthetic_set"]

CODE_KINDS = ("phone", "phone-dark", "card", "paper", "tilt", "glare", "moire",
              "motion-blur", "low-light", "small-modules")
KINDS = CODE_KINDS + ("no-code",)
# The demo shows a mix a visitor would recognise; dark mode and tilt included on purpose.
DEMO_KINDS = ("phone", "card", "phone-dark", "tilt", "paper", "glare")
# JPEG quality of the simulated camera pipeline (cheap webcams compress this hard).
CAMERA_JPEG_QUALITY = 80

_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_NAMES = ("Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Hoàng Nữ", "Phạm Đức Thắng", "Đỗ Thị Hằng",
          "Võ Minh Tuấn", "Bùi Thị Ánh", "Hoàng Quốc Việt")
_PLACES = ("Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng", "Huế", "Cần Thơ", "Hải Phòng")


@dataclass(frozen=True)
class SynthCase:
    """One synthetic frame for the bench: its condition, the payload (None: no code)."""

    kind: str
    payload: str | None
    image: "np.ndarray"


# -- payloads ---------------------------------------------------------------------------------

def sample_payload(rng: "np.random.Generator") -> str:
    """A realistic payload: a DCC-like HC1 string, a CCCD line in Vietnamese, or a link."""
    choice = int(rng.integers(0, 4))
    if choice == 0:
        n = int(rng.integers(180, 420))
        return "HC1:" + "".join(_BASE45[int(i)] for i in rng.integers(0, len(_BASE45), n))
    if choice == 1:
        ident = "".join(str(int(d)) for d in rng.integers(0, 10, 12))
        name = _NAMES[int(rng.integers(0, len(_NAMES)))]
        sex = "Nữ" if "Thị" in name or "Nữ" in name else "Nam"
        dob = f"{int(rng.integers(1, 29)):02d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1950, 2010))}"
        place = _PLACES[int(rng.integers(0, len(_PLACES)))]
        return f"{ident}||{name}|{dob}|{sex}|Số {int(rng.integers(1, 300))}, {place}|01012022"
    if choice == 2:
        token = "".join(_BASE45[int(i)] for i in rng.integers(0, 36, 24))
        return f"https://pc-covid.gov.vn/qr/{token}"
    n = int(rng.integers(60, 160))
    return "HD1:" + "".join(_BASE45[int(i)] for i in rng.integers(0, len(_BASE45), n))


# -- drawing helpers ----------------------------------------------------------------------------

def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts are ASCII only: drop the diacritics ("Nguyễn" -> "Nguyen")."""
    import unicodedata

    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _qr_modules(payload: str) -> "np.ndarray":
    """The QR as a boolean array (True = dark module), with the 4-module quiet zone."""
    import numpy as np
    import segno

    # Non-ASCII text goes in byte mode as UTF-8, as phone apps write it: left to itself segno
    # may pick Kanji mode for UTF-8 bytes that happen to pair up as Shift-JIS ("ềa" -> "盻‖").
    extra = {} if payload.isascii() else {"mode": "byte", "encoding": "utf-8"}
    qr = segno.make(payload, error="m", micro=False, **extra)
    return np.array([list(row) for row in qr.matrix_iter(scale=1, border=4)], dtype=bool)


def _qr_image(payload: str, module_px: int, *, dark: int = 20, light: int = 245) -> "np.ndarray":
    import cv2
    import numpy as np

    mods = _qr_modules(payload)
    img = np.where(mods, dark, light).astype(np.uint8)
    side = mods.shape[0] * module_px
    return cv2.cvtColor(cv2.resize(img, (side, side), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)


def _background(rng, size: tuple[int, int]) -> "np.ndarray":
    """A gate: a wall gradient, a door frame, a poster, soft shapes of people, some noise."""
    import cv2
    import numpy as np

    w, h = size
    base = rng.uniform(90, 170)
    grad = np.linspace(base - 30, base + 30, w, dtype=np.float32)[None, :].repeat(h, 0)
    img = np.dstack([grad * rng.uniform(0.85, 1.1) for _ in range(3)])
    for _ in range(int(rng.integers(3, 7))):  # door frames, posters, shoulders
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        bw, bh = int(rng.integers(60, w // 2)), int(rng.integers(60, h))
        colour = [float(c) for c in rng.uniform(30, 220, 3)]
        cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, -1)
    for _ in range(int(rng.integers(1, 3))):
        centre = (int(rng.integers(0, w)), int(rng.integers(h // 2, h)))
        axes = (int(rng.integers(80, 220)), int(rng.integers(120, 300)))
        cv2.ellipse(img, centre, axes, 0, 0, 360, [float(c) for c in rng.uniform(40, 120, 3)], -1)
    # Out of focus behind the person: blur at quarter size (same look, 16x less work).
    small = cv2.resize(img.astype(np.float32), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_LINEAR)


def _distractors(scene, rng) -> "np.ndarray":
    """Signs on the wall behind the person: printed text and a barcode-like sticker."""
    import cv2
    import numpy as np

    h, w = scene.shape[:2]
    img = np.clip(scene, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        x, y = int(rng.integers(0, w - 320)), int(rng.integers(0, h - 130))
        cv2.rectangle(img, (x - 10, y - 10), (x + 300, y + 110), (235, 235, 230), -1)
        if rng.random() < 0.5:
            for bx in range(x, x + 280, 5):
                if rng.random() < 0.55:
                    cv2.rectangle(img, (bx, y), (bx + int(rng.integers(1, 4)), y + 90), (20, 20, 20), -1)
        else:
            _put_lines(img, rng, ["KHU VUC KIEM TRA", "Xuat trinh ma QR"], (x, y + 40), 0.8, (30, 30, 30), 40)
    return img.astype(np.float32)


def _put_lines(img, rng, lines: list[str], org: tuple[int, int], scale: float, colour, step: int) -> None:
    import cv2

    x, y = org
    for text in lines:
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(scale * 2)), cv2.LINE_AA)
        y += step


def _phone(payload: str | None, rng, *, dark_mode: bool, module_px: int) -> tuple["np.ndarray", tuple]:
    """A phone: black bezel, a screen with a status bar, a title, the code, a caption."""
    import cv2
    import numpy as np

    qr = (_qr_image(payload, module_px, dark=235, light=18) if dark_mode else _qr_image(payload, module_px)) \
        if payload else None
    qside = qr.shape[0] if qr is not None else 29 * module_px
    sw, sh = qside + 80, int((qside + 80) * 2.0)
    bezel = 28
    phone = np.full((sh + 2 * bezel, sw + 2 * bezel, 3), 15, np.uint8)
    screen_bg = (24, 24, 28) if dark_mode else (250, 250, 247)
    ink = (235, 235, 235) if dark_mode else (30, 30, 30)
    screen = np.full((sh, sw, 3), screen_bg, np.uint8)
    cv2.rectangle(screen, (0, 0), (sw, 40), (200, 110, 0) if not dark_mode else (90, 60, 30), -1)
    _put_lines(screen, rng, ["PC-COVID"], (16, 28), 0.8, (255, 255, 255), 30)
    _put_lines(screen, rng, ["Ma QR ca nhan", "Da tiem 3 mui"], (20, 90), 0.9, ink, 36)
    top = (sh - qside) // 2
    if qr is not None:
        screen[top:top + qside, 40:40 + qside] = qr
    else:  # a payment screen with stripes instead of a code
        for x in range(40, 40 + qside, 6):
            if rng.random() < 0.6:
                cv2.rectangle(screen, (x, top), (x + int(rng.integers(1, 5)), top + qside // 3), ink, -1)
    _put_lines(screen, rng, ["Dua ma vao camera"], (20, top + qside + 50), 0.8, ink, 30)
    phone[bezel:bezel + sh, bezel:bezel + sw] = screen
    cv2.circle(phone, (phone.shape[1] // 2, bezel // 2), 5, (50, 50, 50), -1)  # front camera
    return phone, (bezel + 40, bezel + top, bezel + 40 + qside, bezel + top + qside)


def _card(payload: str | None, rng, *, module_px: int, paper: bool = False) -> tuple["np.ndarray", tuple]:
    """A printed ID card (photo box, text lines, code in a corner) or an A5 sheet of paper."""
    import numpy as np

    qr = _qr_image(payload, module_px, dark=35, light=235) if payload else None
    qside = qr.shape[0] if qr is not None else 29 * module_px
    if paper:
        w, h = int(qside * 1.5), int(qside * 2.0)
        tint = (232, 236, 238)
    else:
        w, h = int(qside * 2.6), int(qside * 1.6)
        tint = (225, 236, 240)  # the CCCD's pale blue-beige
    card = np.full((h, w, 3), tint, np.uint8)
    shade = np.linspace(rng.uniform(0.9, 1.0), rng.uniform(1.0, 1.05), w, dtype=np.float32)[None, :, None]
    card = (card.astype(np.float32) * shade).clip(0, 255).astype(np.uint8)
    name = _ascii(_NAMES[int(rng.integers(0, len(_NAMES)))])
    if paper:
        _put_lines(card, rng, ["TO KHAI Y TE", name, "Ngay: 12/08/2021"], (20, 40), 0.8, (40, 40, 40), 34)
        box = ((w - qside) // 2, h - qside - 20, (w - qside) // 2 + qside, h - 20)
    else:
        import cv2

        cv2.rectangle(card, (0, 0), (w, int(h * 0.16)), (60, 60, 170), -1)
        _put_lines(card, rng, ["CAN CUOC CONG DAN"], (20, int(h * 0.11)), 0.9, (255, 255, 255), 30)
        cv2.rectangle(card, (20, int(h * 0.25)), (20 + int(w * 0.22), int(h * 0.85)), (150, 150, 160), -1)
        _put_lines(card, rng, [name, "So: 0010890" + "".join(str(int(d)) for d in rng.integers(0, 10, 5)),
                               "Ngay sinh: 01/01/1990"], (int(w * 0.27), int(h * 0.32)), 0.7, (40, 40, 40), 30)
        box = (w - qside - 12, h - qside - 12, w - 12, h - 12)
    if qr is not None:
        card[box[1]:box[3], box[0]:box[2]] = qr
    return card, box


def _place(scene, obj, rng, *, scale: float, tilt: float, angle: float) -> tuple["np.ndarray", "np.ndarray"]:
    """Warp `obj` into `scene` with rotation and perspective tilt, as if held in front of it."""
    import cv2
    import numpy as np

    h, w = obj.shape[:2]
    sh, sw = scene.shape[:2]
    ow, oh = w * scale, h * scale
    cx = sw / 2 + rng.uniform(-0.15, 0.15) * sw
    cy = sh / 2 + rng.uniform(-0.1, 0.1) * sh
    corners = np.array([[-ow / 2, -oh / 2], [ow / 2, -oh / 2], [ow / 2, oh / 2], [-ow / 2, oh / 2]])
    # Perspective: one side further from the camera looks shorter.
    side = int(rng.integers(0, 4))
    shrink = 1.0 - tilt
    if side == 0:
        corners[[0, 3], 1] *= shrink
    elif side == 1:
        corners[[1, 2], 1] *= shrink
    elif side == 2:
        corners[[0, 1], 0] *= shrink
    else:
        corners[[2, 3], 0] *= shrink
    corners += rng.normal(0, 0.01 * max(ow, oh), corners.shape)
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (corners @ rot.T + [cx, cy]).astype(np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(obj, m, (sw, sh), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (sw, sh), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    return scene * (1 - alpha) + warped.astype(np.float32) * alpha, m


def _glare(img, rng, centre: tuple[int, int]) -> "np.ndarray":
    """A ceiling light reflected in the screen or laminate, over part of the code."""
    import cv2
    import numpy as np

    h, w = img.shape[:2]
    blob = np.zeros((h, w), np.float32)
    cv2.ellipse(blob, centre, (int(rng.integers(35, 80)), int(rng.integers(20, 50))),
                float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    blob = cv2.GaussianBlur(blob, (0, 0), 18) * rng.uniform(200, 260)
    return img + blob[..., None]


def _moire(obj, rng) -> "np.ndarray":
    """Filming a screen: its pixel grid beats against the sensor's, leaving wavy light and
    dark bands across the code. Modelled as two fine gratings at a small angle, whose
    product holds the low-frequency beat that survives the lens blur."""
    import numpy as np

    h, w = obj.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(2.5, 3.5)
    a = np.deg2rad(rng.uniform(3.0, 8.0))
    g1 = np.cos(xx * 2 * np.pi / period)
    g2 = np.cos((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / (period * rng.uniform(0.97, 1.03)))
    return obj * (1.0 - rng.uniform(0.35, 0.5) * (0.5 + 0.5 * g1 * g2))[..., None]


def _motion_blur(img, rng) -> "np.ndarray":
    import cv2
    import numpy as np

    length = int(rng.integers(5, 9))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    m = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, m, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel)


def _camera(img, rng, *, gain: float = 1.0, noise: float = 3.0) -> "np.ndarray":
    """The sensor: exposure, vignetting, noise, then JPEG compression."""
    import cv2
    import numpy as np

    h, w = img.shape[:2]
    yy, xx = np.ogrid[0:h, 0:w]
    vignette = (1.0 - 0.35 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)).astype(np.float32)
    img = img.astype(np.float32) * (vignette * np.float32(gain))[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, CAMERA_JPEG_QUALITY])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# -- public API ---------------------------------------------------------------------------------

def render_scene(payload: str | None, *, kind: str, seed: int, size: tuple[int, int] = (1280, 720)) -> "np.ndarray":
    """A BGR uint8 camera frame (height, width, 3) showing `payload` as a QR in situation `kind`.

    `kind="no-code"` ignores the payload and draws a scene without any QR code.
    """
    import cv2
    import numpy as np

    if kind not in KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind != "no-code" and not payload:
        raise ValueError("a payload is needed for a scene with a code")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    w, h = size
    scene = _background(rng, size)
    if kind == "no-code":
        scene = _distractors(scene, rng)
    code = None if kind == "no-code" else payload
    module_px = 4
    tilt, angle = rng.uniform(0.0, 0.12), rng.uniform(-12, 12)
    carrier = {"phone": "phone", "phone-dark": "phone-dark", "card": "card", "paper": "paper",
               "moire": "phone", "glare": "phone"}.get(kind) or \
        ("phone", "phone-dark", "card", "paper")[int(rng.integers(0, 4))]
    if kind == "tilt":
        tilt, angle = rng.uniform(0.25, 0.4), rng.uniform(-35, 35)
    if carrier.startswith("phone"):
        obj, box = _phone(code, rng, dark_mode=carrier == "phone-dark", module_px=module_px)
    else:
        obj, box = _card(code, rng, module_px=module_px, paper=carrier == "paper")
    # Scale so the code covers a realistic share of the frame: about 4 px per module at 720p,
    # about 1.6 px for "small-modules" (held far away, or a dense code).
    target_module = rng.uniform(1.5, 1.8) if kind == "small-modules" else rng.uniform(3.0, 4.5)
    scale = target_module * (h / 720.0) / module_px
    if obj.shape[0] * scale > h * 1.2:
        scale = h * 1.2 / obj.shape[0]
    obj = obj.astype(np.float32)
    if kind == "moire":
        obj = _moire(obj, rng)
    img, m = _place(scene, obj, rng, scale=scale, tilt=tilt, angle=angle)
    gain, noise = rng.uniform(0.9, 1.1), rng.uniform(1.5, 4.0)
    if kind == "glare":
        # Somewhere over the code, not necessarily its middle.
        gx = box[0] + rng.uniform(0.2, 0.8) * (box[2] - box[0])
        gy = box[1] + rng.uniform(0.2, 0.8) * (box[3] - box[1])
        centre = cv2.perspectiveTransform(np.array([[[gx, gy]]], np.float32), m)[0, 0]
        img = _glare(img, rng, (int(centre[0]), int(centre[1])))
    elif kind == "motion-blur":
        img = _motion_blur(img, rng)
    elif kind == "low-light":
        gain, noise = rng.uniform(0.18, 0.3), rng.uniform(5.0, 8.0)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.9))  # lens softness
    return _camera(img, rng, gain=gain, noise=noise)


def write_demo_frames(payloads: list[str], out_dir: Path, *, seed: int = 0) -> list[Path]:
    """Write one PNG per payload (a mix of phone, dark mode, card, tilted, paper, glare scenes)
    plus two frames with no code, in replay order. Returns the paths written.

    >>> write_demo_frames(["HC1:...", "0010..|..|Nguyễn Văn An|..."], Path("/tmp/demo"))  # doctest: +SKIP
    [PosixPath('/tmp/demo/frame-001.png'), ...]
    """
    import cv2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, str | None]] = [(DEMO_KINDS[i % len(DEMO_KINDS)], p) for i, p in enumerate(payloads)]
    plan.insert(min(1, len(plan)), ("no-code", None))
    plan.append(("no-code", None))
    paths = []
    for i, (kind, payload) in enumerate(plan, start=1):
        path = out_dir / f"frame-{i:03d}.png"
        image = render_scene(payload, kind=kind, seed=seed * 1000 + i)
        if not cv2.imwrite(str(path), image):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def synthetic_set(n: int, seed: int = 0) -> list[SynthCase]:
    """`n` frames cycling through every kind (no-code included), with realistic payloads."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        payload = None if kind == "no-code" else sample_payload(rng)
        cases.append(SynthCase(kind=kind, payload=payload, image=render_scene(payload, kind=kind, seed=seed * 100003 + i)))
    return cases
