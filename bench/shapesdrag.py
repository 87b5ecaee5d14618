"""ShapesDrag benchmark: every edit mode on held-out scenes of the project's Shapes32 model, against ground truth,
with the copy-paste baseline and the ablations, in one run.

    python bench/run.py shapesdrag [--scenes 8]        # make bench

Variants (same banks, same scenes):
  ours                      the method with the Shapes32 settings (``move_eval.TOY_SAMPLER``, DragonDiffusion)
  (a) copy-paste            the edit's start noise as a copy-paste of inverted noise (the object's noise pasted
                            at its target; paste: the reference's noise; appearance: the reference object's noise
                            pasted on the base object), then plain DDIM: no guidance, no memory-bank attention
  (b) no bank attention     guidance, but self-attention never reads the memory bank
  (c) layer 2 only / 3 only energies on one decoder feature tap instead of both
  (d) no inpaint term       move/drag without the vacated-area term (w_inpaint 0); not applicable to paste and
                            appearance, which have none
  (e) DiffEditor schedule   the DiffEditor preset (sparse guidance, time travel) instead of DragonDiffusion
  (f) Fast preset           DragonDiffusion guiding every other step only (the "fewer guided steps" speed lever)
  (g) noise shift alone     paste and appearance: the term's own start noise (the base's noise inside the
                            target moved to the reference object's mean), then plain DDIM as in (a)
  (h) the paper's version   the official start noise where this pack changed it: move (and the move of move +
                            drag) keeps the vacated cells' inverted noise, paste starts from the reference's pasted
                            noise, appearance from unchanged noise with the mean-feature E_edit (not run for the
                            resizes, to keep the run under 20 minutes)
Writes bench/results/shapesdrag.md (tables), bench/results/shapesdrag.json and a contact sheet PNG.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..dragon_ops.sampler import Ablation
from ..nodes.sampler import edit_latent
from . import move_eval, scenes, shapesdrag_tasks, toy_model

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {
    "ours": {},
    "(a) copy-paste": {"energy_scale": 0.0, "ablation": Ablation(bank_attention=False), "naive": True},
    "(b) no bank attention": {"ablation": Ablation(bank_attention=False)},
    "(c) layer 2 only": {"ablation": Ablation(taps=(0,))},
    "(c) layer 3 only": {"ablation": Ablation(taps=(1,))},
    "(d) no inpaint term": {"inpaint": False},
    "(e) DiffEditor schedule": {"preset": "DiffEditor"},
    "(f) Fast preset": {"preset": "Fast"},
    "(g) noise shift alone": {"energy_scale": 0.0, "ablation": Ablation(bank_attention=False)},
    "(h) the paper's version": {"paper": True},
}
ONLY_FOR = {"(d)": ("move", "resize 0.7x", "resize 1.4x", "drag", "move + drag"), "(g)": ("paste", "appearance"),
            "(h)": ("move", "paste", "appearance", "move + drag")}
METRICS = ("centroid_error", "iou", "colour_error", "bg_psnr")


class Runner:
    """Inverts each scene once, then runs every variant of its edit through the pack's sampler."""

    def __init__(self, model):
        self.model, self.vae, self.cond = model, move_eval.pixel_vae(), toy_model.null_conditioning()

    def bank(self, scene: scenes.Scene):
        return move_eval.invert_image(self.model, torch.from_numpy(scenes.to_image(scenes.render(scene)))[None],
                                      self.vae)

    def edit(self, task, bank, ref_bank, variant: dict) -> tuple[np.ndarray, dict, float]:
        own = ("inpaint", "naive", "paper")
        energy = shapesdrag_tasks.energy(task, bank, ref_bank, **{k: v for k, v in variant.items() if k in own})
        settings = {**move_eval.TOY_SAMPLER, **{k: v for k, v in variant.items() if k not in own}}
        t0 = time.perf_counter()
        latent, counts, _ = edit_latent(self.model, self.cond, self.cond, bank, energy, **settings)
        seconds = time.perf_counter() - t0
        return move_eval.decode(self.vae, {"samples": latent}), counts, seconds


def applies(mode: str, variant: str) -> bool:
    return mode in ONLY_FOR.get(variant[:3], (mode,))


def run(n_scenes: int, modes=shapesdrag_tasks.MODES) -> tuple[dict, dict]:
    """rows[(mode, variant)] = mean metrics, seconds, passes; sheet[mode] = images of the first task."""
    runner = Runner(toy_model.load_model())
    rows, sheet = {}, {}
    for mode in modes:
        acc: dict[str, list] = {v: [] for v in VARIANTS if applies(mode, v)}
        for k, task in enumerate(shapesdrag_tasks.tasks(mode, n_scenes)):
            bank = runner.bank(task.scene)
            ref_bank = runner.bank(task.reference) if task.reference is not None else None
            for name in acc:
                out, counts, seconds = runner.edit(task, bank, ref_bank, VARIANTS[name])
                acc[name].append({**shapesdrag_tasks.metrics(task, out), "seconds": seconds, **counts})
                if k == 0:
                    sheet.setdefault(mode, {"input": scenes.render(task.scene), "target": scenes.render(task.target),
                                            "reference": None if task.reference is None else
                                            scenes.render(task.reference)})[name] = out
        for name, results in acc.items():
            rows[(mode, name)] = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        print(f"shapesdrag: {mode} done", flush=True)
    return rows, sheet


def main_metric(mode: str) -> str:
    return "colour_error" if mode == "appearance" else "iou"


def beats(mode: str, ours: dict, base: dict) -> bool:
    m = main_metric(mode)
    return ours[m] < base[m] if m == "colour_error" else ours[m] > base[m]


def table(rows: dict, n_scenes: int, seconds: float) -> str:
    """The markdown report: ours vs (a) per mode, then every ablation."""
    modes = list(dict.fromkeys(m for m, _ in rows))
    out = [f"ShapesDrag, Shapes32 model, {n_scenes} held-out scenes per mode, 50 steps; whole run {seconds:.0f} s "
           "on this machine. Means over scenes. Main accuracy metric: IoU of the edited object's colour region "
           "with the target region (appearance: colour error inside the object).", "",
           "| mode | variant | centroid err (px) | IoU | colour err | bg PSNR (dB) | s / edit | UNet fwd (full + "
           "guidance) | bwd | beats (a) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for mode in modes:
        for name in VARIANTS:
            r = rows.get((mode, name))
            if r is None:
                continue
            verdict = "" if name == "(a) copy-paste" else ("yes" if beats(mode, r, rows[(mode, "(a) copy-paste")])
                                                           else "**no**")
            out.append(f"| {mode} | {name} | {r['centroid_error']:.2f} | {r['iou']:.3f} | {r['colour_error']:.3f} | "
                       f"{r['bg_psnr']:.1f} | {r['seconds']:.2f} | {r['full_forwards']:.0f} + "
                       f"{r['guidance_forwards']:.0f} | {r['backwards']:.0f} | {verdict} |")
    return "\n".join(out) + "\n"


def contact_sheet(sheet: dict, path: str, variants=VARIANTS, size: int = scenes.SIZE, zoom: int = 3) -> None:
    """One row per key of ``sheet`` (a mode): input | reference | target | each variant, pictures of ``size``
    pixels (also ShapesDrag v2's sheet)."""
    cols = ["input", "reference", "target", *variants]
    cell, head = size + 2, 12
    arr = np.ones((len(sheet) * cell, len(cols) * cell, 3), np.float32)
    for r, images in enumerate(sheet.values()):
        for c, name in enumerate(cols):
            if images.get(name) is not None:
                arr[r * cell + 1:r * cell + 1 + size, c * cell + 1:c * cell + 1 + size] = scenes.to_image(images[name])
    grid = Image.fromarray((arr * 255).astype(np.uint8)).resize((arr.shape[1] * zoom, arr.shape[0] * zoom),
                                                                 Image.NEAREST)
    left = int(max(ImageFont.load_default().getlength(mode) for mode in sheet)) + 8  # the row labels' column
    canvas = Image.new("RGB", (left + grid.width + 150, grid.height + 2 * head), "white")  # room for the last label
    canvas.paste(grid, (left, 2 * head))
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(cols):
        draw.text((left + c * cell * zoom + 2, (c % 2) * head), name, fill="black")
    for r, mode in enumerate(sheet):
        draw.text((2, 2 * head + r * cell * zoom + cell * zoom // 2), mode, fill="black")
    canvas.save(path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--sheet", default=os.path.join(HERE, "..", "docs", "shapesdrag_sheet.png"))
    ap.add_argument("--modes", default=",".join(shapesdrag_tasks.MODES))
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    t0 = time.time()
    rows, sheet = run(a.scenes, a.modes.split(","))
    report = table(rows, a.scenes, time.time() - t0)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "shapesdrag.md"), "w") as f:
        f.write(report)
    with open(os.path.join(a.out, "shapesdrag.json"), "w") as f:
        json.dump([{"mode": m, "variant": v, **r} for (m, v), r in rows.items()], f, indent=1)
    contact_sheet(sheet, a.sheet)
    print(report)
    print(f"shapesdrag: tables in {a.out}, contact sheet {a.sheet}")
    return rows
