"""ShapesDrag scenes: small synthetic images with exact ground truth.

A scene is 1-3 objects (disc, square, triangle, ring; flat or two-tone) on a
background (linear gradient, soft stripes or smooth noise). Everything is a
pure function of an integer seed, so training, tests and the benchmark draw
disjoint, reproducible scene sets (see ``SEED_RANGES``).

Images are float32 RGB in [-1, 1], shape (3, H, W). Every object carries its
mask, centroid, colour and shape, and a scene can be re-rendered with one object
moved, resized or swapped for another: those renders are the edit targets.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

SHAPES = ("disc", "square", "triangle", "ring")
BACKGROUNDS = ("gradient", "stripes", "noise")
SIZE = 32
SUPERSAMPLE = 4
# Disjoint seed ranges: training never sees a test or benchmark scene.
SEED_RANGES = {"train": (10_000_000, 2**31 - 1), "test": (0, 100_000), "bench": (100_000, 200_000)}


@dataclasses.dataclass(frozen=True)
class Obj:
    """One object: centre (cx, cy) and radius r in pixels, RGB colours in [-1, 1]."""

    shape: str
    cx: float
    cy: float
    r: float
    colour: tuple[float, float, float]
    texture: str = "flat"  # "flat" or "split" (two-tone, diagonal)
    colour2: tuple[float, float, float] = (0.0, 0.0, 0.0)


class Editable:
    """Edits of a frozen scene dataclass with an ``objects`` tuple of frozen objects with cx, cy and r."""

    def with_object(self, index: int, obj):
        objs = list(self.objects)
        objs[index] = obj
        return dataclasses.replace(self, objects=tuple(objs))

    def moved(self, index: int, dx: float, dy: float, scale: float = 1.0):
        """The same scene with object ``index`` moved by (dx, dy) px and scaled about its centre."""
        o = self.objects[index]
        return self.with_object(index, dataclasses.replace(o, cx=o.cx + dx, cy=o.cy + dy, r=o.r * scale))

    def without(self, index: int):
        return dataclasses.replace(self, objects=self.objects[:index] + self.objects[index + 1:])


@dataclasses.dataclass(frozen=True)
class Scene(Editable):
    background: str
    bg_colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    bg_angle: float
    bg_seed: int
    objects: tuple[Obj, ...]
    size: int = SIZE


def _saturated(rng: np.random.Generator) -> tuple[float, float, float]:
    hue = rng.uniform(0, 1)
    rgb = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)  # HSV with S=V=1
    return tuple(float(c) for c in rgb * 1.7 - 0.85)


def _muted(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(-0.55, 0.55, 3))


def random_scene(seed: int, n_objects: int | None = None, size: int = SIZE) -> Scene:
    """Draw a scene from ``seed``; objects do not overlap and stay inside the image."""
    rng = np.random.default_rng(seed)
    background = str(rng.choice(BACKGROUNDS, p=[0.6, 0.2, 0.2]))
    bg = (_muted(rng), _muted(rng))
    angle = float(rng.uniform(0, 2 * math.pi))
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15])) if n_objects is None else n_objects
    objs: list[Obj] = []
    while len(objs) < n:
        r = float(rng.uniform(4.0, 7.0)) * size / SIZE
        cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, 2))
        if any(math.hypot(cx - o.cx, cy - o.cy) < r + o.r + 2 for o in objs):
            continue
        texture = "split" if rng.uniform() < 0.25 else "flat"
        objs.append(Obj(str(rng.choice(SHAPES)), cx, cy, r, _saturated(rng), texture, _saturated(rng)))
    return Scene(background, bg, angle, int(rng.integers(2**31)), tuple(objs), size)


def _background(scene: Scene) -> np.ndarray:
    s = scene.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1)
    u = math.cos(scene.bg_angle) * xx + math.sin(scene.bg_angle) * yy
    if scene.background == "gradient":
        w = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    elif scene.background == "stripes":
        w = 0.5 + 0.5 * np.sin(u * 2 * math.pi * 2.5)
    else:  # smooth noise: a 5x5 random grid, bilinearly upsampled
        grid = np.random.default_rng(scene.bg_seed).uniform(0, 1, (5, 5)).astype(np.float32)
        idx = np.linspace(0, 4, s)
        i0 = np.clip(idx.astype(int), 0, 3)
        f = (idx - i0)[:, None]
        rows = grid[i0] * (1 - f) + grid[i0 + 1] * f
        w = rows[:, i0] * (1 - f.T) + rows[:, i0 + 1] * f.T
    c0, c1 = (np.array(c, np.float32)[:, None, None] for c in scene.bg_colours)
    return c0 * (1 - w) + c1 * w


def _coverage(obj: Obj, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled coverage of the object (H, W) in [0, 1], and which tone each pixel takes."""
    n = size * SUPERSAMPLE
    c = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    yy, xx = np.meshgrid(c, c, indexing="ij")
    dx, dy = xx - obj.cx, yy - obj.cy
    if obj.shape == "disc":
        inside = dx**2 + dy**2 <= obj.r**2
    elif obj.shape == "square":
        half = obj.r * 0.85
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif obj.shape == "ring":
        d = np.sqrt(dx**2 + dy**2)
        inside = (d <= obj.r) & (d >= obj.r * 0.5)
    else:  # upright triangle inscribed in the circle of radius r
        top, base = -obj.r, obj.r * 0.6
        t = np.clip((dy - top) / (base - top), 0, 1)
        inside = (dy >= top) & (dy <= base) & (np.abs(dx) <= t * obj.r * 0.95)
    tone = (dx + dy) > 0
    pool = inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    tone2 = (inside & tone).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return pool.astype(np.float32), tone2.astype(np.float32)


def render(scene: Scene) -> np.ndarray:
    """The scene as float32 RGB (3, H, W) in [-1, 1]."""
    img = _background(scene)
    for o in scene.objects:
        alpha, alpha2 = _coverage(o, scene.size)
        col = np.array(o.colour, np.float32)[:, None, None]
        if o.texture == "split":
            col2 = np.array(o.colour2, np.float32)[:, None, None]
            fill = np.where(alpha > 0, (col * (alpha - alpha2) + col2 * alpha2) / np.maximum(alpha, 1e-6), 0)
        else:
            fill = col
        img = img * (1 - alpha) + fill * alpha
    return img.astype(np.float32)


def object_mask(scene: Scene, index: int) -> np.ndarray:
    """Boolean (H, W) mask of object ``index``: pixels it covers by more than half (occlusion ignored)."""
    return _coverage(scene.objects[index], scene.size)[0] > 0.5


def visible_mask(scene: Scene, index: int) -> np.ndarray:
    """Like ``object_mask`` but minus the objects drawn on top of it."""
    m = object_mask(scene, index)
    for j in range(index + 1, len(scene.objects)):
        m &= ~object_mask(scene, j)
    return m


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) centroid of a boolean mask in pixel coordinates (pixel centres at +0.5)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (float("nan"), float("nan"))
    return (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)


def batch(seeds: range | list[int], size: int = SIZE) -> np.ndarray:
    """Rendered scenes for ``seeds`` stacked as (N, 3, H, W)."""
    return np.stack([render(random_scene(s, size=size)) for s in seeds])


def to_image(x: np.ndarray) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> ComfyUI IMAGE layout (H, W, 3) in [0, 1]."""
    return np.clip((np.transpose(x, (1, 2, 0)) + 1) / 2, 0, 1)
