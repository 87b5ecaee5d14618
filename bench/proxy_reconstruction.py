"""Does an empty edit give the picture back on the proxy model? (issue 18, must-show 1)

For held-out-family scenes: DDIM inversion (the node, cond-only, ``refine`` 0), then the guided sampler with no
energy term at the paper's settings, for each CFG scale and bank start step asked for; PSNR of the decoded result
against the scene's render, and the IoU of the held-out object found in it with the same detector on the render
(ShapesDrag v2's shape IoU, so a smeared or blurred outline counts). ``--weights`` takes several files (e.g. the
proxy's EMA weights at earlier commits, ``git show COMMIT:bench/weights/shapestext48.safetensors > FILE``), so a
table shows whether training moves it.

    bench/run.py proxy_reconstruction --scenes 4 --cfg 1,4 --bank-from 0,5,50
"""
from __future__ import annotations

import argparse

import numpy as np

from ..dragon_ops import paper, presets
from ..dragon_ops.edit import Edit
from ..nodes.sampler import edit_latent
from . import move_eval, proxy_model, scenes, scenes2
from . import shapesdrag2 as s2
from . import shapesdrag2_tasks as t2


def reconstruct(runner: s2.Runner, task: t2.Task, bank, truth: tuple[np.ndarray, np.ndarray], cfg: float,
                bank_from: int) -> tuple[float, float]:
    """An empty edit of ``task.scene``: (PSNR dB against its render, IoU of object 0 found in it and in the render,
    by ``shapesdrag2_tasks.object_pixels``). ``truth``: the render and its object 0."""
    pos, neg = runner.cond(task.scene.prompt()), runner.cond("")
    settings = {**runner.settings, "cfg": cfg, "preset": "DragonDiffusion",
                "bank_start_step": min(presets.at(bank_from, runner.steps), runner.steps)}
    latent, _, _ = edit_latent(runner.model, pos, neg, bank, Edit(()), **settings)
    out = move_eval.decode(runner.vae, {"samples": latent})
    return t2.psnr(out, truth[0]), t2.iou(t2.object_pixels(task.scene, 0, out), truth[1])


def run(weights: list[str], n: int, cfgs: list[float], bank_froms: list[int], steps: int,
        refine: int = paper.REFINE) -> dict:
    rows = {}
    tasks = t2.tasks("move", n, scenes.SEED_RANGES["test"][0], True)  # held-out family as object 0
    renders = [scenes2.render(task.scene) for task in tasks]
    truths = [(r, t2.object_pixels(task.scene, 0, r)) for task, r in zip(tasks, renders)]
    for w in weights:
        runner = s2.Runner(steps, w, refine=refine)
        banks = [runner.bank(task.scene) for task in tasks]
        for cfg in cfgs:
            for bank_from in bank_froms:
                values = [reconstruct(runner, task, bank, truth, cfg, bank_from)
                          for task, bank, truth in zip(tasks, banks, truths)]
                rows[(w, cfg, bank_from)] = values
                print(f"{w}: CFG {cfg:g}, bank from step {bank_from}: {_cells(values)}", flush=True)
    return rows


def _cells(values: list[tuple[float, float]]) -> str:
    db, iou = np.array(values).T
    return (f"{db.mean():.1f} | {', '.join(f'{v:.1f}' for v in db)} | {iou.mean():.3f} | "
            f"{', '.join(f'{v:.2f}' for v in iou)}")


def table(rows: dict, labels: dict[str, str]) -> str:
    out = ["| weights | CFG | bank from step | PSNR dB, mean | per scene | object IoU, mean | per scene |",
           "|---|---|---|---|---|---|---|"]
    for (w, cfg, bank_from), values in rows.items():
        out.append(f"| {labels.get(w, w)} | {cfg:g} | {bank_from} | {_cells(values)} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=proxy_model.WEIGHTS, help="comma-separated weight files")
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--cfg", default=f"1,{paper.CFG_EMPTY_EDIT:g}")
    ap.add_argument("--bank-from", default=f"0,{paper.BANK_FROM},{paper.STEPS}",
                    help=f"bank start steps of a {paper.STEPS}-step run ({paper.STEPS}: no bank)")
    ap.add_argument("--steps", type=int, default=paper.STEPS)
    ap.add_argument("--refine", type=int, default=paper.REFINE,
                    help="the inversion's fixed-point iterations (the paper's: 0); say it in --labels")
    ap.add_argument("--labels", default="", help="comma-separated names of the weight files, for the table")
    ap.add_argument("--out", default="", help="write the table (markdown) here")
    a = ap.parse_args(argv)
    weights = a.weights.split(",")
    rows = run(weights, a.scenes, [float(c) for c in a.cfg.split(",")], [int(b) for b in a.bank_from.split(",")],
               a.steps, a.refine)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table(rows, dict(zip(weights, a.labels.split(","))) if a.labels else {}))
    return rows
