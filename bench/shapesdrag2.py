"""ShapesDrag v2 (issue 18): every mode on the prompt-conditioned proxy model (ShapesText48) at the paper's settings
and the nodes' defaults (the paper's method), on training-family and held-out-family scenes, against the
references a user would pick instead.

    python bench/run.py shapesdrag2 [--scenes 8] [--steps 50]

Variants (same banks, same scenes; the sampler's defaults otherwise: cfg per mode, guidance until 30, bank from 5):
  ours, DragonDiffusion / ours, DiffEditor   the method, both presets
  ours, Preview                              the preview preset (13 steps of the same bank, 3 guided)
  guidance off                               the same start noise and bank attention, energy_scale 0
  ours, pack's start noise (+ guidance off)  DragonDiffusion with this pack's start-noise variants (move and
                                             resize: fresh vacated noise; paste: the reference's mean; appearance:
                                             noise_shift 1; drag has none), and the same with energy_scale 0
  (a) copy-paste                             the paper's start noise, then plain DDIM: no guidance, no bank
                                             (appearance has no start-noise change of its own: a reconstruction)
  (b) pixel operation                        the object's pixels copied / scaled / recoloured, the source left
  (c) pixel + inpaint                        (b), then the vacated area inpainted by the same model through
                                             ComfyUI's own path (SetLatentNoiseMask + KSampler), as
                                             Inpaint4Drag-style tools do; paste and appearance vacate nothing
Writes bench/results/shapesdrag2.md and .json. The proxy's weights must exist (``make train-proxy``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import nodes as comfy_nodes
import numpy as np
import torch
from scipy import ndimage

from ..dragon_ops import paper, presets
from ..dragon_ops.sampler import Ablation
from ..nodes.energy_move import DragonEnergyMove
from ..nodes.energy_points import DragonEnergyDrag
from ..nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste
from ..nodes.inversion import DDIMInvertToMemoryBank
from ..nodes.sampler import edit_latent
from . import move_eval, proxy_model, scenes2, shapesdrag
from . import shapesdrag2_tasks as t2

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLER = {"seed": 42, "cfg": 0.0, "energy_scale": 1.0, "start_step": 0, "guidance_until": paper.GUIDANCE_UNTIL,
           "bank_start_step": paper.BANK_FROM, "guidance_cap": 0.0}  # the node's defaults


@dataclasses.dataclass(frozen=True)
class Variant:
    """A variant of the method: the sampler's settings (over SAMPLER) and the energy's start noise."""

    settings: dict
    pack_noise: bool = False  # the energy with this pack's start-noise variant


GUIDED = {"ours, DragonDiffusion": Variant({"preset": "DragonDiffusion"}),
          "ours, DiffEditor": Variant({"preset": "DiffEditor"}),
          "ours, Preview": Variant({"preset": "Preview"}),
          "guidance off": Variant({"preset": "DragonDiffusion", "energy_scale": 0.0}),
          "ours, pack's start noise": Variant({"preset": "DragonDiffusion"}, pack_noise=True),
          "guidance off, pack's start noise": Variant({"preset": "DragonDiffusion", "energy_scale": 0.0},
                                                      pack_noise=True),
          "(a) copy-paste": Variant({"preset": "DragonDiffusion", "energy_scale": 0.0,
                                     "ablation": Ablation(bank_attention=False)})}
PIXEL = ("(b) pixel operation", "(c) pixel + inpaint")
VARIANTS = (*GUIDED, *PIXEL)
METRICS = ("shape_iou", "centroid_error", "ghost", "bg_psnr", "bg_drift", "colour_error")


def _mask(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(m.astype(np.float32))[None]


class Runner:
    """The proxy model, its text encoder and the pixel VAE; inverts a picture and runs every variant of a task."""

    def __init__(self, steps: int = paper.STEPS, weights: str = proxy_model.WEIGHTS, cfg: float = 0.0,
                 refine: int = paper.REFINE):
        self.model, self.text = proxy_model.load(weights)
        self.vae = proxy_model.vae(proxy_model.model_arch(self.model))
        self.steps, self.refine = steps, refine
        self.settings = {**SAMPLER, "cfg": cfg, "guidance_until": presets.at(paper.GUIDANCE_UNTIL, steps),
                         "bank_start_step": presets.at(paper.BANK_FROM, steps)}  # the paper's, scaled to ``steps``
        self.inpaint_cfg = cfg or paper.CFG_EMPTY_EDIT

    def cond(self, prompt: str):
        return proxy_model.encode(self.text, prompt)

    def bank(self, scene: scenes2.Scene):
        image = torch.from_numpy(scenes2.to_image(scenes2.render(scene)))[None]
        (latent,) = comfy_nodes.VAEEncode().encode(self.vae, image)
        return DDIMInvertToMemoryBank.execute(model=self.model, latent=latent, conditioning=self.cond(scene.prompt()),
                                              steps=self.steps, bank_precision="fp16", bank_device="cpu",
                                              refine=self.refine).args[1]

    def energy(self, task: t2.Task, bank, ref_bank, pack_noise: bool = False):
        """The task's energy through its node; ``pack_noise``: with this pack's start-noise variant."""
        o = task.scene.objects[0]
        if task.mode == "paste":
            return DragonEnergyPaste.execute(bank=bank, reference_bank=ref_bank, reference_mask=_mask(
                scenes2.object_mask(task.reference, 0)), dx=int(task.dx), dy=int(task.dy), scale=1.0,
                start_noise="reference mean" if pack_noise else "reference noise",
                **paper.MODES["paste"].weights).args[0]
        if task.mode == "appearance":
            return DragonEnergyAppearance.execute(bank=bank, mask=_mask(scenes2.object_mask(task.scene, 0)),
                                                  reference_bank=ref_bank, reference_mask=_mask(
                                                      scenes2.object_mask(task.reference, 0)),
                                                  noise_shift=1.0 if pack_noise else 0.0,
                                                  **paper.MODES["appearance"].weights).args[0]
        mask = _mask(scenes2.object_mask(task.scene, 0))
        if task.mode == "drag":  # five handles on the object, each dragged by the move
            pts = [[o.cx + ox, o.cy + oy, o.cx + ox + task.dx, o.cy + oy + task.dy]
                   for ox, oy in ((0, 0), (o.r / 2, 0), (-o.r / 2, 0), (0, o.r / 2), (0, -o.r / 2))]
            region = ndimage.binary_dilation(task.region(), iterations=2)
            return DragonEnergyDrag.execute(bank=bank, mask=_mask(region), points=str(pts),
                                            **paper.MODES["drag"].weights).args[0]
        return DragonEnergyMove.execute(bank=bank, mask=mask, dx=int(task.dx), dy=int(task.dy), scale=task.scale,
                                        arrow="", vacated_noise="fresh" if pack_noise else "inverted",
                                        **paper.MODES["move"].weights).args[0]

    def guided(self, task: t2.Task, bank, energy, settings: dict) -> tuple[np.ndarray, dict]:
        """The edit with the sampler's ``settings`` (over the runner's): the decoded picture and its UNet passes."""
        pos, neg = self.cond(task.scene.prompt()), self.cond("")
        latent, counts, _ = edit_latent(self.model, pos, neg, bank, energy, **{**self.settings, **settings})
        return move_eval.decode(self.vae, {"samples": latent}), counts

    def inpaint(self, task: t2.Task, image: np.ndarray) -> np.ndarray:
        """Reference (c): the vacated area of ``image`` regenerated by the model (SetLatentNoiseMask + KSampler)."""
        vacated = ndimage.binary_dilation(task.source_mask() & ~task.target_mask(), iterations=1)
        if not vacated.any():
            return image
        (latent,) = comfy_nodes.VAEEncode().encode(self.vae, torch.from_numpy(scenes2.to_image(image))[None])
        latent = {**latent, "noise_mask": _mask(vacated).reshape(1, 1, *vacated.shape)}  # as SetLatentNoiseMask
        (out,) = comfy_nodes.common_ksampler(self.model, 42, self.steps, self.inpaint_cfg, "ddim", "normal",
                                             self.cond(task.target.prompt()), self.cond(""), latent, denoise=1.0)
        return move_eval.decode(self.vae, out)

    def run_task(self, task: t2.Task, variants=VARIANTS) -> dict[str, tuple[np.ndarray, dict]]:
        """Every variant in ``variants`` on one task: (picture, UNet passes) by name. Only what they need is made."""
        chosen = {name: v for name, v in GUIDED.items() if name in variants}
        out = {}
        if chosen:
            bank = self.bank(task.scene)
            ref_bank = self.bank(task.reference) if task.reference is not None else None
            energies = {p: self.energy(task, bank, ref_bank, p) for p in {v.pack_noise for v in chosen.values()}}
            out = {name: self.guided(task, bank, energies[v.pack_noise], v.settings) for name, v in chosen.items()}
        if set(PIXEL) & set(variants):
            pixel = t2.pixel_operation(task)
            out[PIXEL[0]] = (pixel, {})
            if PIXEL[1] in variants:
                out[PIXEL[1]] = (self.inpaint(task, pixel), {})
        return {name: out[name] for name in variants}


def run(n_scenes: int, steps: int, modes=t2.MODES, cfg: float = 0.0, variants=VARIANTS,
        weights: str = proxy_model.WEIGHTS) -> tuple[dict, dict]:
    """(rows of mean metrics per mode, family and variant; the first scene's pictures per mode and family)."""
    runner = Runner(steps, weights, cfg=cfg)
    rows, sheet = {}, {}
    for mode in modes:
        for held_out in (False, True):
            family = "held-out" if held_out else "training"
            acc = {v: [] for v in variants}
            for task in t2.tasks(mode, n_scenes, seed0=200_000 + 10_000 * t2.MODES.index(mode), held_out=held_out):
                out = runner.run_task(task, variants)
                if f"{mode}, {family}" not in sheet:  # the first scene's pictures
                    sheet[f"{mode}, {family}"] = {
                        "input": scenes2.render(task.scene), "target": scenes2.render(task.target),
                        "reference": None if task.reference is None else scenes2.render(task.reference),
                        **{name: img for name, (img, _) in out.items()}}
                for name, (img, counts) in out.items():
                    acc[name].append({**t2.metrics(task, img), **counts})
            for name, results in acc.items():
                rows[(mode, family, name)] = {
                    **{k: float(np.mean([r[k] for r in results])) for k in results[0]},
                    "shape_iou_std": float(np.std([r["shape_iou"] for r in results])), "n": len(results)}
            print(f"shapesdrag2: {mode}, {family} families done", flush=True)
    return rows, sheet


def other_weights(weights: str) -> str:
    """The weights' file name when they are not the judge's, else ""."""
    return "" if weights == proxy_model.WEIGHTS else os.path.basename(weights)


def table(rows: dict, seconds: float, steps: int, cfg: float = 0.0, weights: str = proxy_model.WEIGHTS) -> str:
    settings = (f"CFG {cfg:g} in every variant (a settings ablation; the paper's settings otherwise)" if cfg
                else "the paper's settings and defaults")
    model = f" (weights {other_weights(weights)})" if other_weights(weights) else ""
    out = [f"ShapesDrag v2, ShapesText48 proxy{model}, {settings}, {steps} steps; whole run "
           f"{seconds:.0f} s. Means over scenes (n per row); shape IoU ± its std.", "",
           "| mode | families | variant | shape IoU | centroid err (px) | ghost | bg PSNR (dB) | bg drift | colour err "
           "| n |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (mode, family, name), r in rows.items():
        out.append(f"| {mode} | {family} | {name} | {r['shape_iou']:.3f} ± {r['shape_iou_std']:.3f} | "
                   f"{r['centroid_error']:.2f} | {r['ghost']:.3f} | {r['bg_psnr']:.1f} | {r['bg_drift']:.3f} | "
                   f"{r['colour_error']:.3f} | {r['n']} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=paper.STEPS)
    ap.add_argument("--modes", default=",".join(t2.MODES))
    ap.add_argument("--cfg", type=float, default=0.0,
                    help="one CFG for every variant, (c)'s inpainting included (0: the paper's per mode)")
    ap.add_argument("--variants", default=";".join(VARIANTS), help="semicolon-separated, from the list above")
    ap.add_argument("--weights", default=proxy_model.WEIGHTS,
                    help="the proxy's weights (default: the judge's); e.g. a newer EMA from bench/out")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--name", default="", help="result files' name (default shapesdrag2, with _cfgN and the weights' "
                    "file name when those are not the defaults)")
    ap.add_argument("--sheet", default="", help="write a contact sheet here: the first scene of each mode and family")
    a = ap.parse_args(argv)
    variants = tuple(v.strip() for v in a.variants.split(";"))
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"--variants: unknown {sorted(unknown)}; choose from {list(VARIANTS)}")
    t0 = time.time()
    rows, sheet = run(a.scenes, a.steps, a.modes.split(","), a.cfg, variants, a.weights)
    if a.sheet:
        shapesdrag.contact_sheet(sheet, a.sheet, variants, scenes2.SIZE)
    report = table(rows, time.time() - t0, a.steps, a.cfg, a.weights)
    tags = [f"cfg{a.cfg:g}"] if a.cfg else []
    tags += [os.path.splitext(other_weights(a.weights))[0]] if other_weights(a.weights) else []
    name = a.name or "_".join(["shapesdrag2", *tags])
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"{name}.md"), "w") as f:
        f.write(report)
    with open(os.path.join(a.out, f"{name}.json"), "w") as f:
        json.dump([{"mode": m, "families": fam, "variant": v, **r} for (m, fam, v), r in rows.items()], f, indent=1)
    print(report)
    return rows
