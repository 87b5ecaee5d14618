"""ShapesDrag benchmark tasks: one edit per mode on held-out scenes, each with its ground-truth target render,
the energy chain that asks for it (built through the pack's energy nodes), and the metrics against the target.

Modes: move, resize 0.7x and 1.4x, paste, appearance, point drag, and a move chained with a drag in one pass.
Every edited object is flat-coloured, and no other object in the scene has a colour near it, so "pixels of the
object's colour" locates it in the output.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy import ndimage

from ..nodes.energy_move import DragonEnergyMove
from ..nodes.energy_points import DragonEnergyDrag
from ..nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste
from . import move_eval, scenes

MODES = ("move", "resize 0.7x", "resize 1.4x", "paste", "appearance", "drag", "move + drag")
MODE_SEEDS = {m: scenes.SEED_RANGES["bench"][0] + 10_000 * (k + 1) for k, m in enumerate(MODES)}
TOL = move_eval.COLOUR_TOL
PAPER_APPEARANCE = {"match": "mean", "noise_shift": 0.0}


@dataclasses.dataclass(frozen=True)
class Edit:
    """One object edit: object ``index`` of the scene, moved by (dx, dy) px and scaled; ``how`` picks the node."""

    index: int
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    how: str = "move"  # "move" (DragonEnergyMove) or "drag" (DragonEnergyDrag, five handle->target pairs)


@dataclasses.dataclass(frozen=True)
class Task:
    mode: str
    scene: scenes.Scene  # the image to edit
    target: scenes.Scene  # ground truth
    objects: tuple[int, ...]  # indices of the edited objects in ``target``
    edits: tuple[Edit, ...] = ()
    reference: scenes.Scene | None = None  # paste / appearance: the second image (its object 0)
    paste_at: tuple[float, float] = (0.0, 0.0)  # paste: (dx, dy) from the reference object's place

    def region(self) -> np.ndarray:
        """Where the edit may change pixels: the edited objects before and after, grown by 1 px."""
        m = np.zeros((self.scene.size, self.scene.size), bool)
        for k in self.objects:
            m |= scenes.object_mask(self.target, k)
        for e in self.edits:
            m |= scenes.object_mask(self.scene, e.index)
        return ndimage.binary_dilation(m, iterations=1)


def _mask(scene: scenes.Scene, index: int, grow: int = 0) -> torch.Tensor:
    m = scenes.object_mask(scene, index)
    if grow:
        m = ndimage.binary_dilation(m, iterations=grow)
    return torch.from_numpy(m.astype(np.float32))[None]


def _fits(scene: scenes.Scene, index: int, obj: scenes.Obj, others_of: scenes.Scene | None = None) -> bool:
    """``obj`` lies inside the image, clear of every other object of ``others_of`` (default: ``scene``)."""
    s = scene.size
    if not (obj.r + 1 <= obj.cx <= s - obj.r - 1 and obj.r + 1 <= obj.cy <= s - obj.r - 1):
        return False
    others = [o for j, o in enumerate((others_of or scene).objects) if j != index]
    return all(math.hypot(obj.cx - o.cx, obj.cy - o.cy) >= obj.r + o.r + 2 for o in others)


def _distinct(colour, others) -> bool:
    return all(np.linalg.norm(np.subtract(colour, o.colour)) > 2 * TOL for o in others)


def _offset(rng: np.random.Generator) -> tuple[int, int]:
    ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(6, 10)
    return round(dist * math.cos(ang)), round(dist * math.sin(ang))


def _object_task(mode: str, seed: int) -> Task | None:
    rng = np.random.default_rng(seed)
    n = 2 if mode == "move + drag" else int(rng.integers(1, 3))
    sc = scenes.random_scene(seed, n_objects=n)
    if any(o.texture != "flat" or not _distinct(o.colour, sc.objects[:k] + sc.objects[k + 1:])
           for k, o in enumerate(sc.objects)):
        return None
    if mode.startswith("resize"):
        edits = (Edit(0, scale=float(mode.split()[1][:-1])),)
    elif mode == "move + drag":
        edits = (Edit(0, *_offset(rng)), Edit(1, *_offset(rng), how="drag"))
    else:
        edits = (Edit(0, *_offset(rng), how="drag" if mode == "drag" else "move"),)
    target = sc
    for e in edits:
        target = target.moved(e.index, e.dx, e.dy, e.scale)
    if not all(_fits(target, e.index, target.objects[e.index]) for e in edits):
        return None
    return Task(mode, sc, target, tuple(e.index for e in edits), edits)


def _two_image_task(mode: str, seed: int) -> Task | None:
    rng = np.random.default_rng(seed)
    base = scenes.random_scene(seed, n_objects=int(rng.integers(1, 3)))
    ref = scenes.random_scene(seed + 5_000, n_objects=1)
    obj = ref.objects[0]
    flat = obj.texture == "flat" and all(o.texture == "flat" for o in base.objects)
    if not flat or not _distinct(obj.colour, base.objects):
        return None
    if mode == "appearance":
        new = dataclasses.replace(base.objects[0], colour=obj.colour)
        return Task(mode, base, base.with_object(0, new), (0,), reference=ref)
    cx, cy = (float(v) for v in rng.uniform(obj.r + 1, base.size - obj.r - 1, 2))
    dx, dy = round(cx - obj.cx), round(cy - obj.cy)
    placed = dataclasses.replace(obj, cx=obj.cx + dx, cy=obj.cy + dy)
    target = dataclasses.replace(base, objects=base.objects + (placed,))
    if not _fits(target, len(base.objects), placed):
        return None
    return Task(mode, base, target, (len(base.objects),), reference=ref, paste_at=(dx, dy))


def tasks(mode: str, n: int, seed0: int | None = None) -> list[Task]:
    """The first ``n`` valid tasks of ``mode`` after ``seed0`` (default: the benchmark's fixed seed for it)."""
    make = _two_image_task if mode in ("paste", "appearance") else _object_task
    out, seed = [], MODE_SEEDS[mode] if seed0 is None else seed0
    while len(out) < n:
        seed += 1
        t = make(mode, seed)
        if t is not None:
            out.append(t)
    return out


def energy(task: Task, bank, ref_bank=None, inpaint: bool = True, naive: bool = False, paper: bool = False):
    """The task's DRAGON_ENERGY, built through the energy nodes (``inpaint`` False: ablation (d); ``paper``: move,
    paste and appearance with the paper's start noise (and appearance's mean match) instead of this pack's,
    ablation (h)).

    ``naive`` (baseline (a)): the edit's start noise as a copy-paste of inverted noise: the paper's start noise
    for move and paste; appearance has no copy-paste of its own, so its naive copy-paste pastes the reference
    object's inverted noise onto the base object's centre."""
    if naive and task.mode == "appearance":
        (rx, ry), (bx, by) = (scenes.centroid(scenes.object_mask(sc, 0)) for sc in (task.reference, task.scene))
        task = dataclasses.replace(task, mode="paste", paste_at=(round(bx - rx), round(by - ry)))
    chain = None
    for e in task.edits:
        if e.how == "move":
            w = {**move_eval.MOVE_WEIGHTS, **({} if inpaint else {"w_inpaint": 0.0})}
            (chain,) = DragonEnergyMove.execute(bank=bank, mask=_mask(task.scene, e.index), dx=round(e.dx),
                                                dy=round(e.dy), scale=e.scale, arrow="", energy=chain,
                                                vacated_noise="inverted" if naive or paper else "fresh", **w).args
        else:
            o = task.scene.objects[e.index]
            pts = [[o.cx + ox, o.cy + oy, o.cx + ox + e.dx, o.cy + oy + e.dy]
                   for ox, oy in ((0, 0), (o.r / 2, 0), (-o.r / 2, 0), (0, o.r / 2), (0, -o.r / 2))]
            region = _mask(task.scene, e.index, grow=2) + _mask(task.target, e.index, grow=2)
            (chain,) = DragonEnergyDrag.execute(bank=bank, mask=region.clamp(0, 1), points=str(pts), w_edit=4.0,
                                                w_content=6.0, w_inpaint=0.2 if inpaint else 0.0,
                                                energy=chain).args
    if task.mode == "paste":
        start = "reference noise" if naive or paper else "reference mean"
        (chain,) = DragonEnergyPaste.execute(bank=bank, reference_bank=ref_bank, reference_mask=_mask(
            task.reference, 0), dx=task.paste_at[0], dy=task.paste_at[1], scale=1.0, w_edit=4.0, w_content=6.0,
                                             start_noise=start).args
    elif task.mode == "appearance":
        (chain,) = DragonEnergyAppearance.execute(bank=bank, mask=_mask(task.scene, 0), reference_bank=ref_bank,
                                                  reference_mask=_mask(task.reference, 0), w_edit=3.5,
                                                  w_content=5.0,
                                                  **(PAPER_APPEARANCE if paper else move_eval.TOY_APPEARANCE)).args
    return chain


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean(((a - b) / 2) ** 2))
    return 10 * math.log10(1 / max(mse, 1e-10))


def metrics(task: Task, out: np.ndarray) -> dict[str, float]:
    """Centroid error (px), IoU with the target region, colour error (mean |out - target| in [0, 1] inside the
    target object) averaged over the edited objects; background PSNR (dB) outside ``Task.region``."""
    truth = scenes.render(task.target)
    per = []
    for k in task.objects:
        o = task.target.objects[k]
        hit = np.linalg.norm(out - np.array(o.colour, np.float32)[:, None, None], axis=0) < TOL
        tm = scenes.object_mask(task.target, k)
        tx, ty = scenes.centroid(tm)
        hx, hy = scenes.centroid(hit)
        err = math.hypot(hx - tx, hy - ty) if hit.any() else float(task.scene.size)
        iou = float((hit & tm).sum() / max((hit | tm).sum(), 1))
        per.append((err, iou, float(np.abs(out - truth)[:, tm].mean() / 2)))
    bg = ~task.region()
    err, iou, col = np.mean(per, axis=0)
    return {"centroid_error": float(err), "iou": float(iou), "colour_error": float(col),
            "bg_psnr": _psnr(out[:, bg], truth[:, bg])}
