"""ShapesDrag v2 scenes: open-ended shape families, textured fills, occlusion, and a prompt that names them.

A scene is 1-4 objects, drawn in order (later ones occlude earlier ones), on a flat, gradient, striped or noisy
background. Every object has a family (its outline, drawn from continuous parameters, so no two objects are
alike), a named colour and a fill. Everything is a pure function of an integer seed, with the seed ranges of
``scenes.SEED_RANGES`` kept disjoint.

Families held out of training (the project's own held-out set): the shapes ``HELD_OUT_SHAPES`` and the fill
``HELD_OUT_FILLS``. Training scenes never contain them; held-out scenes put one at the edited object (index 0).

Images are float32 RGB in [-1, 1], shape (3, H, W), at ``SIZE`` x ``SIZE``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .scenes import SEED_RANGES, Editable, centroid, to_image  # noqa: F401  (shared helpers, re-exported)

SIZE = 48
SUPERSAMPLE = 4
TRAIN_SHAPES = ("disc", "ellipse", "rectangle", "triangle", "polygon", "blob", "ring", "glyph")
HELD_OUT_SHAPES = ("star", "cross", "crescent")
TRAIN_FILLS = ("flat", "two-tone", "striped", "speckled")
HELD_OUT_FILLS = ("checkered",)
BACKGROUNDS = ("flat", "gradient", "stripes", "noise")
# Named colours (RGB in [0, 1]); each object's colour is its name's colour with a little jitter.
COLOURS = {"red": (0.9, 0.1, 0.1), "orange": (1.0, 0.55, 0.05), "yellow": (0.95, 0.9, 0.1),
           "green": (0.15, 0.75, 0.2), "cyan": (0.1, 0.85, 0.9), "blue": (0.1, 0.25, 0.95),
           "purple": (0.55, 0.15, 0.8), "pink": (1.0, 0.5, 0.75), "white": (0.97, 0.97, 0.97),
           "black": (0.05, 0.05, 0.05)}
BG_COLOURS = {"gray": (0.5, 0.5, 0.5), "beige": (0.85, 0.78, 0.62), "brown": (0.45, 0.3, 0.18),
              "navy": (0.12, 0.15, 0.35), "olive": (0.45, 0.5, 0.25), "teal": (0.15, 0.45, 0.45)}


@dataclasses.dataclass(frozen=True)
class Obj:
    """One object: family, centre (cx, cy) and radius r in pixels, rotation, the family's own parameters."""

    shape: str
    cx: float
    cy: float
    r: float
    angle: float
    params: tuple[float, ...]  # family parameters (aspect, vertex angles, radial harmonics, ...)
    colour: str
    fill: str = "flat"
    colour2: str = "white"  # second tone of two-tone, striped and checkered fills
    fill_angle: float = 0.0
    fill_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Scene(Editable):
    """Drawing order is kept by every edit (``Editable``): later objects occlude earlier ones."""

    background: str
    bg_colours: tuple[str, str]
    bg_angle: float
    bg_seed: int
    objects: tuple[Obj, ...]
    size: int = SIZE

    def prompt(self) -> str:
        """What the scene shows, in the model's words: "a red star and a striped blue disc on a gray background"."""
        names = []
        for o in self.objects:
            fill = "" if o.fill == "flat" else o.fill + " "
            names.append(f"a {fill}{o.colour} {o.shape}")
        return f"{' and '.join(names)} on a {self.bg_colours[0]} background"


def _family_params(shape: str, rng: np.random.Generator) -> tuple[float, ...]:
    if shape in ("ellipse", "rectangle"):
        return (float(rng.uniform(0.45, 0.8)),)
    if shape == "polygon":  # convex: 5-7 vertices at jittered angles on the circle
        k = int(rng.integers(5, 8))
        return tuple(float(2 * math.pi * (i + rng.uniform(-0.3, 0.3)) / k) for i in range(k))
    if shape == "blob":  # concave: r(theta) = r (1 + a sin(k theta + phase)) / (1 + a)
        return (float(rng.integers(2, 5)), float(rng.uniform(0.2, 0.4)), float(rng.uniform(0, 2 * math.pi)))
    if shape == "ring":
        return (float(rng.uniform(0.45, 0.65)),)
    if shape == "glyph":  # a thick stroke through 3-4 points
        k = int(rng.integers(3, 5))
        return tuple(float(v) for v in rng.uniform(-1, 1, 2 * k)) + (float(rng.uniform(0.25, 0.4)),)
    if shape == "star":
        return (float(rng.integers(5, 7)), float(rng.uniform(0.4, 0.55)))
    if shape == "cross":
        return (float(rng.uniform(0.3, 0.42)),)
    if shape == "crescent":
        return (float(rng.uniform(0.35, 0.55)),)
    return ()


def _pick_colour(rng: np.random.Generator, avoid: set[str]) -> str:
    return str(rng.choice([c for c in COLOURS if c not in avoid]))


def random_scene(seed: int, held_out: bool = False, n_objects: int | None = None, size: int = SIZE) -> Scene:
    """Draw a scene from ``seed``. ``held_out``: object 0 is of a held-out family (a shape or, one time in four,
    a training shape with the held-out fill); the other objects stay in the training families."""
    rng = np.random.default_rng(seed)
    background = str(rng.choice(BACKGROUNDS, p=[0.2, 0.4, 0.2, 0.2]))
    bg = tuple(str(c) for c in rng.choice(list(BG_COLOURS), 2, replace=False))
    n = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1])) if n_objects is None else n_objects
    objs: list[Obj] = []
    used: set[str] = set()
    for k in range(n):
        scale = size / SIZE
        r = float(rng.uniform(6.0, 11.0)) * scale
        cx, cy = (float(v) for v in rng.uniform(r * 0.7, size - r * 0.7, 2))
        shape, fill = str(rng.choice(TRAIN_SHAPES)), str(rng.choice(TRAIN_FILLS, p=[0.4, 0.2, 0.2, 0.2]))
        if held_out and k == 0:
            if rng.uniform() < 0.25:
                fill = HELD_OUT_FILLS[0]
            else:
                shape = str(rng.choice(HELD_OUT_SHAPES))
        colour = _pick_colour(rng, used)
        used.add(colour)
        objs.append(Obj(shape, cx, cy, r, float(rng.uniform(0, 2 * math.pi)), _family_params(shape, rng), colour,
                        fill, _pick_colour(rng, {colour}), float(rng.uniform(0, math.pi)), int(rng.integers(2**31))))
    return Scene(background, bg, float(rng.uniform(0, 2 * math.pi)), int(rng.integers(2**31)), tuple(objs), size)


def _rgb(name: str, table: dict) -> np.ndarray:
    return np.array(table[name], np.float32)[:, None, None] * 2 - 1


def _smooth_noise(seed: int, size: int, cells: int) -> np.ndarray:
    grid = np.random.default_rng(seed).uniform(0, 1, (cells, cells)).astype(np.float32)
    idx = np.linspace(0, cells - 1, size)
    i0 = np.clip(idx.astype(int), 0, cells - 2)
    f = (idx - i0)[:, None]
    rows = grid[i0] * (1 - f) + grid[i0 + 1] * f
    return rows[:, i0] * (1 - f.T) + rows[:, i0 + 1] * f.T


def _background(scene: Scene) -> np.ndarray:
    s = scene.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1)
    u = math.cos(scene.bg_angle) * xx + math.sin(scene.bg_angle) * yy
    if scene.background == "flat":
        w = np.zeros((s, s), np.float32)
    elif scene.background == "gradient":
        w = 0.6 * (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    elif scene.background == "stripes":
        w = 0.3 + 0.3 * np.sin(u * 2 * math.pi * 3)
    else:
        w = 0.7 * _smooth_noise(scene.bg_seed, s, 6)
    c0, c1 = (_rgb(c, BG_COLOURS) for c in scene.bg_colours)
    return c0 * (1 - w) + c1 * w


def _inside(o: Obj, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Boolean supersampled shape of ``o``, for offsets (dx, dy) from its centre, already rotated."""
    r, p = o.r, o.params
    d, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    if o.shape == "disc":
        return d <= r
    if o.shape == "ellipse":
        return (dx / r) ** 2 + (dy / (r * p[0])) ** 2 <= 1
    if o.shape == "rectangle":
        return (np.abs(dx) <= r * 0.9) & (np.abs(dy) <= r * 0.9 * p[0])
    if o.shape in ("triangle", "polygon"):
        angles = (-math.pi / 2, math.pi / 6, 5 * math.pi / 6) if o.shape == "triangle" else p
        inside = np.ones_like(d, bool)
        pts = [(r * math.cos(a), r * math.sin(a)) for a in angles]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
            inside &= (x1 - x0) * (dy - y0) - (y1 - y0) * (dx - x0) >= 0
        return inside
    if o.shape == "blob":
        k, a, phase = p
        return d <= r * (1 + a * np.sin(k * theta + phase)) / (1 + a)
    if o.shape == "ring":
        return (d <= r) & (d >= r * p[0])
    if o.shape == "glyph":
        pts = np.array(p[:-1]).reshape(-1, 2) * r * 0.8
        width, inside = r * p[-1], np.zeros_like(d, bool)
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            vx, vy = x1 - x0, y1 - y0
            t = np.clip(((dx - x0) * vx + (dy - y0) * vy) / max(vx * vx + vy * vy, 1e-6), 0, 1)
            inside |= np.hypot(dx - x0 - t * vx, dy - y0 - t * vy) <= width / 2
        return inside
    if o.shape == "star":
        k, inner = p
        wave = np.abs(((theta * k / (2 * math.pi)) % 1) - 0.5) * 2  # 1 at a tip, 0 between tips
        return d <= r * (inner + (1 - inner) * wave)
    if o.shape == "cross":
        arm = r * p[0]
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    if o.shape == "crescent":
        return (d <= r) & (np.hypot(dx - r * p[0] * 1.2, dy) > r * 0.85)
    raise ValueError(f"unknown shape family {o.shape!r}")


def coverage(o: Obj, size: int) -> np.ndarray:
    """Supersampled coverage of ``o`` (H, W) in [0, 1]."""
    n = size * SUPERSAMPLE
    c = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    yy, xx = np.meshgrid(c, c, indexing="ij")
    ca, sa = math.cos(o.angle), math.sin(o.angle)
    dx, dy = xx - o.cx, yy - o.cy
    rx, ry = ca * dx + sa * dy, -sa * dx + ca * dy
    inside = _inside(o, rx, ry)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)


def _fill(o: Obj, size: int) -> np.ndarray:
    """The object's colour field (3, H, W): its fill pattern, in object coordinates (it moves with the object)."""
    c1, c2 = _rgb(o.colour, COLOURS), _rgb(o.colour2, COLOURS)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    scale = o.r / 8.0
    u = (math.cos(o.fill_angle) * (xx - o.cx) + math.sin(o.fill_angle) * (yy - o.cy)) / scale
    v = (-math.sin(o.fill_angle) * (xx - o.cx) + math.cos(o.fill_angle) * (yy - o.cy)) / scale
    if o.fill == "flat":
        w = np.zeros((size, size), np.float32)
    elif o.fill == "two-tone":
        w = (u > 0).astype(np.float32)
    elif o.fill == "striped":
        w = ((np.floor(u / 2.5) % 2) == 1).astype(np.float32)
    elif o.fill == "checkered":
        w = (((np.floor(u / 3) + np.floor(v / 3)) % 2) == 1).astype(np.float32)
    else:  # speckled: the colour darkened and lightened by smooth noise
        noise = _smooth_noise(o.fill_seed, size, 8)
        return c1 * (0.75 + 0.5 * noise)
    return c1 * (1 - w) + c2 * w


def render(scene: Scene) -> np.ndarray:
    """The scene as float32 RGB (3, H, W) in [-1, 1]."""
    img = _background(scene)
    for o in scene.objects:
        alpha = coverage(o, scene.size)
        img = img * (1 - alpha) + _fill(o, scene.size) * alpha
    return np.clip(img, -1, 1).astype(np.float32)


def object_mask(scene: Scene, index: int) -> np.ndarray:
    """Boolean (H, W) mask of object ``index``: pixels it covers by more than half (occlusion ignored)."""
    return coverage(scene.objects[index], scene.size) > 0.5


def visible_mask(scene: Scene, index: int) -> np.ndarray:
    """``object_mask`` minus the objects drawn on top of it."""
    m = object_mask(scene, index)
    for j in range(index + 1, len(scene.objects)):
        m &= ~object_mask(scene, j)
    return m


def batch(seeds, held_out: bool = False) -> tuple[np.ndarray, list[str]]:
    """Rendered scenes for ``seeds`` as (N, 3, H, W), and their prompts."""
    sc = [random_scene(s, held_out) for s in seeds]
    return np.stack([render(s) for s in sc]), [s.prompt() for s in sc]
