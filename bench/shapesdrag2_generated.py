"""ShapesDrag v2, generated pictures (issue 22): move an object in a picture the proxy model has just generated,
from the bank its generation recorded (DragonSampleToMemoryBank: no inversion), at the paper's settings.

    python bench/run.py shapesdrag2_generated [--scenes 8]

A task takes a ShapesDrag v2 move task (training or held-out families): its scene's prompt and its move (dx, dy).
The proxy generates a picture from that prompt (CFG 4, the task's seed). No render of the generated picture
exists, so the object is found in it by colour: the largest connected region within ``t2.FOUND`` of the prompt's
colour for object 0. A task whose picture has no such region of ``MIN_PIXELS`` or more, or whose moved region
would leave the picture, is skipped (the count is reported). The ideal result is that region translated.

Variants (the same bank and the same start-noise copy-paste of the move term):
  ours, DragonDiffusion / ours, Preview      the method (cfg 0: the bank's own CFG), the preview preset
  guidance off                               energy_scale 0, bank attention on
  (a) copy-paste                             energy_scale 0, no bank attention: the noise copy-paste alone
Metrics: shape IoU of the found object (same detector) against the translated one, its centroid error, the ghost
(the share of the vacated area still of the object's colour) and the background PSNR outside both places (grown
by 2 px) against the generated picture.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
from scipy import ndimage

from ..dragon_ops import paper
from ..dragon_ops.sampler import Ablation
from ..nodes.energy_move import DragonEnergyMove
from ..nodes.generation import DragonSampleToMemoryBank
from ..nodes.sampler import edit_latent
from . import move_eval, proxy_model, scenes2
from . import shapesdrag2_tasks as t2
from .shapesdrag2 import SAMPLER

HERE = os.path.dirname(os.path.abspath(__file__))
MIN_PIXELS = 20
VARIANTS = {"ours, DragonDiffusion": {"preset": "DragonDiffusion"}, "ours, Preview": {"preset": "Preview"},
            "guidance off": {"preset": "DragonDiffusion", "energy_scale": 0.0},
            "(a) copy-paste": {"preset": "DragonDiffusion", "energy_scale": 0.0,
                               "ablation": Ablation(bank_attention=False)}}


def found(picture: np.ndarray, colour: str) -> np.ndarray:
    """The largest connected region of ``picture`` of the named colour (within t2.FOUND; bool, H x W)."""
    return t2.largest(t2.named_colour(picture, colour))


def shifted(mask: np.ndarray, dx: int, dy: int) -> np.ndarray | None:
    """``mask`` translated by (dx, dy), or None if part of it would leave the picture."""
    ys, xs = np.nonzero(mask)
    s = mask.shape[0]
    if ys.min() + dy < 0 or xs.min() + dx < 0 or ys.max() + dy >= s or xs.max() + dx >= s:
        return None
    out = np.zeros_like(mask)
    out[ys + dy, xs + dx] = True
    return out


def metrics(picture: np.ndarray, out: np.ndarray, source: np.ndarray, target: np.ndarray,
            colour: str) -> dict[str, float]:
    near = t2.named_colour(out, colour)
    obj = t2.largest(near)
    (ty, tx), (oy, ox) = (np.argwhere(m).mean(axis=0) if m.any() else (np.nan, np.nan) for m in (target, obj))
    err = math.hypot(ox - tx, oy - ty) if obj.any() else float(picture.shape[-1])
    vacated = source & ~target
    bg = ~ndimage.binary_dilation(source | target, iterations=2)
    return {"shape_iou": t2.iou(obj, target), "centroid_error": err,
            "ghost": float(near[vacated].mean()) if vacated.any() else 0.0,
            "bg_psnr": t2.psnr(out[:, bg], picture[:, bg])}


def run(n_scenes: int, steps: int) -> tuple[dict, dict]:
    model, text = proxy_model.load()
    vae = move_eval.pixel_vae()
    cfg = paper.MODES["move"].cfg
    rows, skipped = {}, {}
    for held_out in (False, True):
        family = "held-out" if held_out else "training"
        acc, skipped[family] = {v: [] for v in VARIANTS}, 0
        candidates = t2.tasks("move", 4 * n_scenes, seed0=300_000 + 10_000 * held_out, held_out=held_out)
        for seed, task in enumerate(candidates):
            if len(acc["(a) copy-paste"]) == n_scenes:
                break
            pos, neg = proxy_model.encode(text, task.scene.prompt()), proxy_model.encode(text, "")
            image, _, bank = DragonSampleToMemoryBank.execute(
                model=model, positive=pos, negative=neg, latent={"samples": torch.zeros(1, 3, scenes2.SIZE,
                                                                                        scenes2.SIZE)},
                seed=seed, steps=steps, cfg=cfg, bank_precision="fp16", bank_device="cpu").args
            picture = move_eval.decode(vae, image)
            colour = task.scene.objects[0].colour
            source = found(picture, colour)
            target = shifted(source, int(task.dx), int(task.dy)) if source.sum() >= MIN_PIXELS else None
            if target is None:
                skipped[family] += 1
                continue
            (energy,) = DragonEnergyMove.execute(bank=bank, mask=torch.from_numpy(source.astype(np.float32))[None],
                                                 dx=int(task.dx), dy=int(task.dy), scale=1.0, arrow="",
                                                 **paper.MODES["move"].weights).args
            for name, variant in VARIANTS.items():
                latent, counts, _ = edit_latent(model, pos, neg, bank, energy, **{**SAMPLER, **variant})
                out = move_eval.decode(vae, {"samples": latent})
                acc[name].append({**metrics(picture, out, source, target, colour), **counts})
        for name, results in acc.items():
            rows[(family, name)] = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
            rows[(family, name)]["n"] = len(results)
        print(f"shapesdrag2_generated: {family} families done ({skipped[family]} skipped)", flush=True)
    return rows, skipped


def table(rows: dict, skipped: dict, seconds: float, steps: int) -> str:
    out = [f"ShapesDrag v2, generated pictures (moves), ShapesText48 proxy, CFG 4, {steps} steps; whole run "
           f"{seconds:.0f} s; skipped (no object of the prompt's colour, or the move leaves the picture): "
           f"{skipped}. Means over tasks.", "",
           "| families | variant | shape IoU | centroid err (px) | ghost | bg PSNR (dB) | UNet full / truncated / bwd "
           "| n |", "|---|---|---|---|---|---|---|---|"]
    for (family, name), r in rows.items():
        out.append(f"| {family} | {name} | {r['shape_iou']:.3f} | {r['centroid_error']:.2f} | {r['ghost']:.3f} | "
                   f"{r['bg_psnr']:.1f} | {r['full_forwards']:.0f} / {r['guidance_forwards']:.0f} / "
                   f"{r['backwards']:.0f} | {r['n']} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=paper.STEPS)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args(argv)
    t0 = time.time()
    rows, skipped = run(a.scenes, a.steps)
    report = table(rows, skipped, time.time() - t0, a.steps)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "shapesdrag2_generated.md"), "w") as f:
        f.write(report)
    with open(os.path.join(a.out, "shapesdrag2_generated.json"), "w") as f:
        json.dump({"skipped": skipped, "rows": [{"families": fam, "variant": v, **r} for (fam, v), r in rows.items()]},
                  f, indent=1)
    print(report)
    return rows
