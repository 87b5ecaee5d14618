"""ShapesDrag v2 tasks, references and metrics (issue 18), on ``scenes2`` scenes of the training families or of the
held-out families.

A task edits object 0 of a scene (held-out scenes put a held-out family there): move, resize 0.7x / 1.4x, paste
(the object of a second scene into this one), appearance (object 0 takes the reference object's colour) and drag
(the object moved by five handle -> target pairs). Its ground truth is the generator's own render of the edited
scene. Reference (b), ``pixel_operation``, is what a user could do by hand: the object's pixels copied, scaled or
recoloured, the source left as it was.

Metrics against the ground truth:
* shape IoU: the edited object found in the output by its difference from the true picture without it (so ghosts
  and smears count as object) or by its colour, against the same detector on the ideally edited render;
* centroid error of that found object (px);
* ghost score: mean |output - truth| (in [0, 1] units) over the vacated area, whatever the colour;
* background PSNR outside the edit region, and background drift: the distance between the mean colours of output
  and truth there (a global tint).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

from . import scenes2

MODES = ("move", "resize 0.7x", "resize 1.4x", "paste", "appearance", "drag")
FOUND = 0.25  # |output - picture without the object| (per-pixel RGB distance, [-1, 1] units) that counts as object


@dataclasses.dataclass(frozen=True)
class Task:
    mode: str
    scene: scenes2.Scene  # the picture to edit
    target: scenes2.Scene  # ground truth
    index: int  # the edited object in ``target``
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    reference: scenes2.Scene | None = None  # paste / appearance: the second picture (its object 0)

    def source_mask(self) -> np.ndarray:
        """Where the edited object is in the input (empty for paste)."""
        if self.mode == "paste":
            return np.zeros((self.scene.size, self.scene.size), bool)
        return scenes2.visible_mask(self.scene, 0)

    def target_mask(self) -> np.ndarray:
        return scenes2.visible_mask(self.target, self.index)

    def region(self) -> np.ndarray:
        """Where the edit may change pixels: the object before and after, grown by 1 px."""
        return ndimage.binary_dilation(self.source_mask() | self.target_mask(), iterations=1)


def _fits(obj: scenes2.Obj, size: int) -> bool:
    return obj.r <= obj.cx <= size - obj.r and obj.r <= obj.cy <= size - obj.r


def _object_task(mode: str, seed: int, held_out: bool) -> Task | None:
    rng = np.random.default_rng(seed)
    sc = scenes2.random_scene(seed, held_out, n_objects=int(rng.integers(1, 4)))
    if scenes2.visible_mask(sc, 0).sum() < 0.8 * scenes2.object_mask(sc, 0).sum():
        return None  # the edited object must be mostly visible
    ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(6, 12)
    dx, dy = (0.0, 0.0) if mode.startswith("resize") else (round(dist * math.cos(ang)), round(dist * math.sin(ang)))
    scale = float(mode.split()[1][:-1]) if mode.startswith("resize") else 1.0
    target = sc.moved(0, dx, dy, scale)
    if not _fits(target.objects[0], sc.size):
        return None
    return Task(mode, sc, target, 0, dx, dy, scale)


def _two_image_task(mode: str, seed: int, held_out: bool) -> Task | None:
    rng = np.random.default_rng(seed)
    base = scenes2.random_scene(seed, held_out and mode == "appearance", n_objects=int(rng.integers(1, 3)))
    ref = scenes2.random_scene(seed + 5_000, held_out and mode == "paste", n_objects=1)
    obj = ref.objects[0]
    if mode == "appearance":
        new = dataclasses.replace(base.objects[0], colour=obj.colour, colour2=obj.colour2)
        if base.objects[0].colour == obj.colour:
            return None
        return Task(mode, base, base.with_object(0, new), 0, reference=ref)
    cx, cy = (float(v) for v in rng.uniform(obj.r, base.size - obj.r, 2))
    dx, dy = round(cx - obj.cx), round(cy - obj.cy)
    placed = dataclasses.replace(obj, cx=obj.cx + dx, cy=obj.cy + dy)
    target = dataclasses.replace(base, objects=base.objects + (placed,))
    return Task(mode, base, target, len(base.objects), dx, dy, reference=ref)


def tasks(mode: str, n: int, seed0: int, held_out: bool) -> list[Task]:
    """The first ``n`` valid tasks of ``mode`` after ``seed0``."""
    make = _two_image_task if mode in ("paste", "appearance") else _object_task
    out, seed = [], seed0
    while len(out) < n:
        seed += 1
        t = make(mode, seed, held_out)
        if t is not None:
            out.append(t)
    return out


def _warp(img: np.ndarray, alpha: np.ndarray, cx: float, cy: float, dx: float, dy: float, scale: float):
    """(img, alpha) moved by (dx, dy) and scaled about (cx, cy), bilinear; pixels from outside are empty."""
    s = img.shape[-1]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    src_x, src_y = (xx - cx - dx) / scale + cx - 0.5, (yy - cy - dy) / scale + cy - 0.5
    coords = np.stack([src_y, src_x])
    a = ndimage.map_coordinates(alpha, coords, order=1, mode="constant", cval=0.0)
    moved = np.stack([ndimage.map_coordinates(c * alpha, coords, order=1, mode="constant") for c in img])
    return moved / np.maximum(a, 1e-6), a


def pixel_operation(task: Task) -> np.ndarray:
    """Reference (b): the object's pixels copied (moved, scaled) or recoloured by hand; the source is left."""
    img = scenes2.render(task.scene)
    if task.mode == "appearance":  # every object pixel takes the reference object's mean colour
        ref = scenes2.render(task.reference)
        m, rm = scenes2.visible_mask(task.scene, 0), scenes2.visible_mask(task.reference, 0)
        out = img.copy()
        out[:, m] = ref[:, rm].mean(axis=1, keepdims=True)
        return out
    if task.mode == "paste":
        src, o = scenes2.render(task.reference), task.reference.objects[0]
        alpha = scenes2.coverage(o, src.shape[-1])
    else:
        src, o = img, task.scene.objects[0]
        alpha = scenes2.coverage(o, img.shape[-1]) * scenes2.visible_mask(task.scene, 0)
    moved, a = _warp(src, alpha, o.cx, o.cy, task.dx, task.dy, task.scale)
    return img * (1 - a) + moved * a


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays in [-1, 1], on the [0, 1] scale; identical arrays give 100 dB."""
    mse = float(np.mean(((a - b) / 2) ** 2))
    return 10 * math.log10(1 / max(mse, 1e-10))


def object_pixels(scene: scenes2.Scene, index: int, out: np.ndarray) -> np.ndarray:
    """Pixels of ``out`` that are object ``index`` of ``scene``: far from the true picture without it, or of its
    colour (so a ghost or a smear counts as object)."""
    without = scenes2.render(scene.without(index))
    differs = np.linalg.norm(out - without, axis=0) > FOUND
    return differs | named_colour(out, scene.objects[index].colour)


def near_colour(picture: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Pixels of ``picture`` (3, H, W) within FOUND of the colour ``rgb`` (3,), both in [-1, 1] (bool, H x W)."""
    return np.linalg.norm(picture - rgb.reshape(3, 1, 1), axis=0) < FOUND


def named_colour(picture: np.ndarray, name: str) -> np.ndarray:
    """Pixels of ``picture`` (3, H, W) in [-1, 1] within FOUND of the scene generator's colour ``name``."""
    return near_colour(picture, scenes2._rgb(name, scenes2.COLOURS))


def largest(near: np.ndarray) -> np.ndarray:
    """The largest connected region of the mask ``near`` (itself if it has none)."""
    labels, n = ndimage.label(near)
    if n == 0:
        return near
    sizes = ndimage.sum(near, labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def metrics(task: Task, out: np.ndarray) -> dict[str, float]:
    truth = scenes2.render(task.target)
    # the edited object in the output, found by the same detector as in the ground truth
    found, tm = (object_pixels(task.target, task.index, pic) for pic in (out, truth))
    (tx, ty), (fx, fy) = scenes2.centroid(tm), scenes2.centroid(found)
    err = math.hypot(fx - tx, fy - ty) if found.any() else float(task.scene.size)
    vacated = task.source_mask() & ~tm
    ghost = float(np.abs(out - truth)[:, vacated].mean() / 2) if vacated.any() else 0.0
    bg = ~task.region()
    drift = float(np.linalg.norm(out[:, bg].mean(axis=1) - truth[:, bg].mean(axis=1)) / 2)
    return {"shape_iou": iou(found, tm), "centroid_error": float(err), "ghost": ghost,
            "bg_psnr": psnr(out[:, bg], truth[:, bg]), "bg_drift": drift,
            "colour_error": float(np.abs(out - truth)[:, tm].mean() / 2) if tm.any() else 1.0}
