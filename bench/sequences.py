"""Synthetic gate-camera sequences: a phone (or an ID card) lifted into a 640x480 camera's
view at 30 fps, then held with a shaking hand, each under one named condition.

Every sequence is drawn from `numpy.random.default_rng(seed)`: the same seed gives the
same frames. Frames are greyscale uint8 (what the kiosk's sources deliver). Each
`Sequence` says when the lift ends and the phone is held in place (`t0_frame`, the
moment a person starts waiting): time-to-read is measured from that frame's arrival.
A read during the lift itself counts as 0 ms. `in_view_frame` is the first frame with
the code wholly inside (usually 2-6 frames earlier, still heavily blurred).

Conditions (one factor pushed, the others mild):
- entry-blur:  a fast lift into view, heavy motion blur, then a short settle;
- hand-shake:  a trembling hand, motion blur of 6-16 px on most frames;
- dark-mode:   light-on-dark code on a dim screen;
- glare:       a ceiling light's reflection wandering over the code;
- low-light:   a dim gate: gain 0.2-0.35, strong sensor noise, new noise every frame;
- moire:       filming a screen: beat bands across the code;
- tilt:        the phone held 35-55 degrees out of plane;
- far-dense:   a DCC-sized code at arm's length, about 2 pixels per module;
- id-card:     a chip ID card's printed code (Vietnamese CCCD payload);
- no-code:     a phone screen with text and stripes but no code, waved about.

    >>> seq = make_sequence("hand-shake", seed=3)
    >>> len(seq.frames), seq.frames[0].shape, seq.payload[:4]
    (66, (480, 640), 'HC1:')
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import segno

__all__ = ["CONDITIONS", "CODE_CONDITIONS", "FPS", "Sequence", "held_frames", "make_sequence", "single_frames"]

FPS = 30
SIZE = (640, 480)
CODE_CONDITIONS = ("entry-blur", "hand-shake", "dark-mode", "glare", "low-light", "moire", "tilt",
                   "far-dense", "id-card")
CONDITIONS = CODE_CONDITIONS + ("no-code",)
#: Frames held after the code is in view: 1.2 s, enough to tell "within 1 s" apart.
HOLD_FRAMES = 36
_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_NAMES = ("Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Hoàng Nữ", "Phạm Đức Thắng", "Đỗ Thị Hằng",
          "Võ Minh Tuấn", "Bùi Thị Ánh", "Hoàng Quốc Việt")


@dataclass
class Sequence:
    condition: str
    seed: int
    payload: str | None
    frames: list          # greyscale uint8 frames at FPS
    t0_frame: int         # the phone comes to rest: the lift is over, the person waits
    in_view_frame: int    # first frame with the code wholly in view (often still a blur)
    module_px: float      # pixels per module at rest


def _payload(condition: str, rng) -> str:
    if condition == "id-card":
        ident = "".join(str(int(d)) for d in rng.integers(0, 10, 12))
        old = "".join(str(int(d)) for d in rng.integers(0, 10, 9))
        name = _NAMES[int(rng.integers(0, len(_NAMES)))]
        return (f"{ident}|{old}|{name}|{int(rng.integers(1, 28)):02d}0{int(rng.integers(1, 9))}19"
                f"{int(rng.integers(60, 99))}|{'Nam' if rng.random() < 0.5 else 'Nữ'}|Số {int(rng.integers(1, 200))}, "
                f"Phường Láng Hạ, Hà Nội|0101202{int(rng.integers(1, 5))}")
    if condition != "far-dense" and rng.random() < 0.3:
        n = int(rng.integers(200, 300))   # an HD1 declaration
        prefix = "HD1:"
    else:
        n = int(rng.integers(420, 560))   # a DCC (vaccine passport): version 15-17
        prefix = "HC1:"
    return prefix + "".join(_BASE45[int(i)] for i in rng.integers(0, len(_BASE45), n))


def _modules(payload: str) -> np.ndarray:
    extra = {} if payload.isascii() else {"mode": "byte", "encoding": "utf-8"}
    # DCC and HD1 use error correction Q (the EU DCC guideline); the ID card M.
    qr = segno.make(payload, error="m" if not payload.isascii() else "q", micro=False, boost_error=False, **extra)
    return np.array([list(r) for r in qr.matrix_iter(scale=1, border=0)], dtype=bool)


def _phone(payload: str | None, rng, *, module_px: float, dark: bool, card: bool) -> tuple[np.ndarray, tuple]:
    """The held object at 4x the camera's resolution (drawn sharp, shrunk by the warp),
    and the code's corners in it."""
    up = 4
    mods = _modules(payload) if payload else np.zeros((77, 77), bool)
    side = int(round(mods.shape[0] * module_px * up))
    fg, bg = (225, 20) if dark else (25, 240)
    if card:
        fg, bg = 30, 215
    code = cv2.resize(np.where(mods, fg, bg).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    if not payload:  # a payment or news screen: text lines and stripes, no finder patterns
        code = np.full((side, side), bg, np.uint8)
        for y in range(0, side, int(12 * up)):
            if rng.random() < 0.7:
                x1 = int(rng.uniform(0.5, 1.0) * side)
                cv2.rectangle(code, (0, y), (x1, y + int(5 * up)), fg, -1)
        for x in range(0, side, int(3 * up)):
            if rng.random() < 0.5:
                cv2.rectangle(code, (x, side - side // 4), (x + up, side), fg, -1)
    margin = int(4 * module_px * up) + 8 * up
    if card:
        w, h = side + 2 * margin + int(side * 1.4), side + 2 * margin
        obj = np.full((h, w), 200, np.uint8)
        cv2.rectangle(obj, (0, 0), (w - 1, int(30 * up)), 150, -1)
        for i in range(6):
            y = margin + i * side // 6
            cv2.rectangle(obj, (side + 2 * margin, y), (w - margin, y + int(6 * up)), 90, -1)
        x0, y0 = margin, margin
        obj[y0 - 4 * up: y0 + side + 4 * up, x0 - 4 * up: x0 + side + 4 * up] = bg
    else:
        w, h = side + 2 * margin + 20 * up, int((side + 2 * margin) * 1.9)
        obj = np.full((h, w), 10, np.uint8)
        bez = 10 * up
        obj[bez:h - bez, bez:w - bez] = 35 if dark else 235
        cv2.rectangle(obj, (bez, bez), (w - bez, bez + 20 * up), 90 if dark else 120, -1)
        x0, y0 = (w - side) // 2, (h - side) // 2
    obj[y0:y0 + side, x0:x0 + side] = code
    corners = np.float32([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
    return obj, corners / up, up


def _background(rng) -> np.ndarray:
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(80, 150) + 30 * np.sin(xx / rng.uniform(80, 200)) * np.cos(yy / rng.uniform(60, 150))
    img = base.astype(np.float32)
    for _ in range(int(rng.integers(4, 9))):   # door frame, posters, people
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 200)), y + int(rng.integers(20, 300))),
                      float(rng.uniform(30, 220)), -1)
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def _motion_kernel(dx: float, dy: float) -> np.ndarray | None:
    length = float(np.hypot(dx, dy))
    if length < 1.5:
        return None
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    for t in np.linspace(-0.5, 0.5, 4 * n):
        k[int(round(c + t * dy)), int(round(c + t * dx))] += 1
    return k / k.sum()


def make_sequence(condition: str, seed: int) -> Sequence:
    """One person at the gate under `condition` (see the module docstring)."""
    rng = np.random.default_rng([CONDITIONS.index(condition), seed])
    payload = None if condition == "no-code" else _payload(condition, rng)
    module_px = {"far-dense": rng.uniform(1.9, 2.3), "id-card": rng.uniform(2.8, 3.4)}.get(
        condition, rng.uniform(2.6, 3.4))
    obj, qcorners, up = _phone(payload, rng, module_px=module_px, dark=condition == "dark-mode",
                               card=condition == "id-card")
    oh, ow = obj.shape
    objf = obj.astype(np.float32)
    if condition == "moire":
        yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
        period = rng.uniform(2.6, 3.4) * up
        a = np.deg2rad(rng.uniform(3.0, 8.0))
        g = np.cos(xx * 2 * np.pi / period) * np.cos((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / (period * 1.02))
        objf *= 1.0 - rng.uniform(0.3, 0.45) * (0.5 + 0.5 * g)
    bg = _background(rng)
    w, h = SIZE
    qside = qcorners[1, 0] - qcorners[0, 0]
    # Where the code's centre rests in the frame, and the object's size in the frame.
    rest = np.array([w / 2 + rng.uniform(-60, 60), h / 2 + rng.uniform(-40, 40)])
    tilt = np.deg2rad(rng.uniform(35, 55)) if condition == "tilt" else np.deg2rad(rng.uniform(0, 15))
    tilt_axis = rng.uniform(0, np.pi)
    roll = rng.uniform(-20, 20)
    entry_frames = int(rng.integers(5, 8)) if condition == "entry-blur" else int(rng.integers(8, 13))
    settle = 6 if condition == "entry-blur" else 3
    shake = {"hand-shake": 5.0, "entry-blur": 2.5}.get(condition, 2.0)
    gain = rng.uniform(0.2, 0.35) if condition == "low-light" else (0.55 if condition == "dark-mode" else 1.0)
    noise = rng.uniform(7, 11) if condition == "low-light" else 2.5
    start = rest + np.array([rng.uniform(-150, 150), h * 0.9])
    frames, t0 = [], None
    n = entry_frames + settle + HOLD_FRAMES
    pos_prev = start.copy()
    jitter = np.zeros(2)
    glare_c = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)])
    for i in range(n):
        if i < entry_frames:
            f = (i + 1) / entry_frames
            pos = start + (rest - start) * (1 - (1 - f) ** 2)
        else:
            jitter = 0.6 * jitter + rng.normal(0, shake, 2)
            if i < entry_frames + settle:
                jitter += (rest - pos_prev) * 0.0 + rng.normal(0, shake * 1.5, 2)
            pos = rest + jitter
        vel = pos - pos_prev
        pos_prev = pos
        # Homography: object -> frame (scale, roll, out-of-plane tilt, position).
        s = 1.0 / up
        a = np.deg2rad(roll + (jitter[0] * 0.3 if i >= entry_frames else 0))
        cx, cy = qcorners.mean(axis=0) * up
        ax = np.array([np.cos(tilt_axis), np.sin(tilt_axis)])
        pts = np.float32([[0, 0], [ow, 0], [ow, oh], [0, oh]])
        rel = (pts - [cx, cy]) * s
        along = rel @ ax
        depth = 1.0 + np.sin(tilt) * along / (qside * 2.2)
        rel = rel - np.outer(along * (1 - np.cos(tilt)), ax)
        rel = rel / depth[:, None]
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        dst = (rel @ rot.T + pos).astype(np.float32)
        hmat = cv2.getPerspectiveTransform(pts, dst)
        frame = bg.copy()
        mask = cv2.warpPerspective(np.ones((oh, ow), np.float32), hmat, SIZE, flags=cv2.INTER_AREA)
        warped = cv2.warpPerspective(objf, hmat, SIZE, flags=cv2.INTER_AREA)
        frame = frame * (1 - mask) + warped
        qc = cv2.perspectiveTransform((qcorners * up).reshape(-1, 1, 2), hmat).reshape(-1, 2)
        inside = bool((qc[:, 0] >= 2).all() and (qc[:, 0] < w - 2).all() and (qc[:, 1] >= 2).all()
                      and (qc[:, 1] < h - 2).all())
        if t0 is None and inside:
            t0 = i
        if condition == "glare":
            gc = qc.mean(axis=0) + glare_c * qside + rng.normal(0, 6, 2)
            blob = np.zeros((h, w), np.float32)
            cv2.ellipse(blob, (int(gc[0]), int(gc[1])), (int(qside * 0.22), int(qside * 0.13)), 30, 0, 360, 1.0, -1)
            frame = frame + cv2.GaussianBlur(blob, (0, 0), qside * 0.05 + 2) * rng.uniform(180, 230)
        # Exposure: motion during the exposure blurs along the velocity.
        blur_scale = 0.9 if i < entry_frames else 1.2
        k = _motion_kernel(vel[0] * blur_scale, vel[1] * blur_scale)
        if k is not None:
            frame = cv2.filter2D(frame, -1, k)
        frame = cv2.GaussianBlur(frame, (0, 0), 0.6)   # lens
        frame = frame * gain + rng.standard_normal(frame.shape).astype(np.float32) * noise
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    if payload is None:
        t0 = entry_frames
    return Sequence(condition, seed, payload, frames, entry_frames, t0 if t0 is not None else n, float(module_px))


def held_frames(per_condition: int, seed: int = 1000, conditions: tuple[str, ...] = CONDITIONS,
                ) -> list[tuple[str, str | None, np.ndarray, list]]:
    """(condition, payload, frame, the 4 frames before it): for each condition, one frame
    of each of `per_condition` held-out sequences (seeds from `seed` on), at a random point
    after the code is in view (for entry-blur: during the lift itself)."""
    out = []
    for condition in conditions:
        for k in range(per_condition):
            seq = make_sequence(condition, seed + k)
            rng = np.random.default_rng([99, seed + k, CONDITIONS.index(condition)])
            lo = seq.in_view_frame if condition == "entry-blur" else seq.t0_frame
            hi = seq.t0_frame + 3 if condition == "entry-blur" else len(seq.frames)
            i = min(int(rng.integers(lo, max(lo + 1, hi))), len(seq.frames) - 1)
            out.append((condition, seq.payload, seq.frames[i], seq.frames[max(0, i - 4):i]))
    return out


def single_frames(per_condition: int, seed: int = 1000) -> list[tuple[str, str | None, np.ndarray]]:
    """(condition, payload, frame) of `held_frames`: the single-frame table's set."""
    return [(c, p, f) for c, p, f, _ in held_frames(per_condition, seed)]
