"""``make demo``: a move edit and a point-drag edit on built-in scenes, with the project's Shapes32 model,
through the pack's nodes (DDIMInvertToMemoryBank -> DragonEnergyMove / DragonEnergyDrag -> DragonGuidedSampler),
and ComfyUI's own pixel-space VAE nodes. Writes before/after PNGs (upscaled 8x) and prints where they are.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image

from ..nodes.energy_points import DragonEnergyDrag
from ..nodes.sampler import DragonGuidedSampler
from . import move_eval, scenes, toy_model

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "demo")
MOVE_SCENE = scenes.SEED_RANGES["bench"][0] + 7  # see demo_tasks()
ZOOM = 8


def demo_tasks() -> tuple[move_eval.MoveTask, scenes.Scene]:
    """The demo's move task (one flat object moved 6-10 px) and the scene for its drag."""
    move = move_eval.move_tasks(1, MOVE_SCENE, max_objects=2)[0]
    return move, move_eval.move_tasks(1, MOVE_SCENE + 500, max_objects=1)[0].scene


def save(img: np.ndarray, folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    pil = Image.fromarray((scenes.to_image(img) * 255).astype(np.uint8))
    pil.resize((pil.width * ZOOM, pil.height * ZOOM), Image.NEAREST).save(path)
    return path


def run_drag(model, scene: scenes.Scene, dx: float) -> np.ndarray:
    """Drag the right edge of object 0 by dx px; the editable region is the object's row band."""
    o = scene.objects[0]
    hx, hy = o.cx + o.r * 0.6, o.cy
    mask = torch.zeros(1, scene.size, scene.size)
    y0, y1 = int(max(0, o.cy - o.r - 2)), int(min(scene.size, o.cy + o.r + 3))
    mask[:, y0:y1, :] = 1.0
    vae = move_eval.pixel_vae()
    image = torch.from_numpy(scenes.to_image(scenes.render(scene)))[None]
    cond = toy_model.null_conditioning()
    bank = move_eval.invert_image(model, image, vae)
    pts = f"[[{hx:.1f}, {hy:.1f}, {min(hx + dx, scene.size - 1):.1f}, {hy:.1f}]]"
    (energy,) = DragonEnergyDrag.execute(bank=bank, mask=mask, points=pts, w_edit=4.0, w_content=6.0,
                                         w_inpaint=0.2).args
    (out,) = DragonGuidedSampler.execute(model=model, positive=cond, negative=cond, bank=bank, energy=energy,
                                         **move_eval.TOY_SAMPLER).args
    return move_eval.decode(vae, out)


def main(argv: list[str] | None = None) -> dict[str, str]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    model = toy_model.load_model()
    move, drag_scene = demo_tasks()
    moved = move_eval.run_move(model, move)
    dragged = run_drag(model, drag_scene, 6)
    paths = {
        "move_before": save(scenes.render(move.scene), a.out, "move_before.png"),
        "move_target": save(scenes.render(move.target), a.out, "move_target.png"),
        "move_after": save(moved, a.out, "move_after.png"),
        "drag_before": save(scenes.render(drag_scene), a.out, "drag_before.png"),
        "drag_after": save(dragged, a.out, "drag_after.png"),
    }
    m = move_eval.move_metrics(move, moved)
    print(f"demo: move by ({move.dx}, {move.dy}) px -> centroid error {m['centroid_error']:.2f} px, "
          f"vacated area still object-coloured {m['residue']:.0%}; took {time.time() - t0:.0f} s")
    for name, path in paths.items():
        print(f"  {name:12s} {path}")
    return paths
