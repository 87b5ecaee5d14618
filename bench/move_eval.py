"""Move edits on ShapesDrag scenes with ground truth, through the pack's nodes, and their metrics.

The tuned settings for Shapes32 (see bench/MODEL_CARD.md) differ from the paper's SD1.5 defaults: start from
the inversion latent at step 20 (t = 581), guide steps 20..39, cap ||g|| at 0.05 ||eps||, CFG 1 (the model has
no prompt, so CFG is a no-op).
"""
from __future__ import annotations

import dataclasses
import math

import comfy.sd
import nodes as comfy_nodes
import numpy as np
import torch

from ..nodes.energy_move import DragonEnergyMove
from ..nodes.inversion import DDIMInvertToMemoryBank
from ..nodes.sampler import DragonGuidedSampler
from . import scenes, toy_model

# The node defaults are the paper's. The project's Shapes32 model needs settings of its own (bench/MODEL_CARD.md)
# and the benchmark figures were made with this pack's variants, so the benchmark, the demo and the toy quality
# tests pass both explicitly.
TOY_SAMPLER = {"seed": 0, "cfg": 1.0, "energy_scale": 1.0, "preset": "DragonDiffusion", "start_step": 20,
               "guidance_until": 40, "bank_start_step": 5, "guidance_cap": 0.05, "mask_grid": "dilated"}
TOY_INVERSION = {"refine": 1}
TOY_APPEARANCE = {"match": "stretched", "noise_shift": 1.0}
MOVE_WEIGHTS = {"w_edit": 4.0, "w_content": 6.0, "w_contrast": 0.2, "w_inpaint": 0.8}
COLOUR_TOL = 0.45


@dataclasses.dataclass(frozen=True)
class MoveTask:
    scene: scenes.Scene
    index: int
    dx: int
    dy: int
    scale: float = 1.0

    @property
    def target(self) -> scenes.Scene:
        return self.scene.moved(self.index, self.dx, self.dy, self.scale)


def move_tasks(n: int, seed0: int, max_objects: int = 2) -> list[MoveTask]:
    """n move tasks: a flat object moved 6-10 px, staying inside the image and clear of the other objects."""
    tasks, seed = [], seed0
    while len(tasks) < n:
        seed += 1
        rng = np.random.default_rng(seed)
        sc = scenes.random_scene(seed, n_objects=int(rng.integers(1, max_objects + 1)))
        o = sc.objects[0]
        if o.texture != "flat":
            continue
        ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(6, 10)
        dx, dy = round(dist * math.cos(ang)), round(dist * math.sin(ang))
        nx, ny = o.cx + dx, o.cy + dy
        if not (o.r + 1 <= nx <= sc.size - o.r - 1 and o.r + 1 <= ny <= sc.size - o.r - 1):
            continue
        if any(math.hypot(nx - p.cx, ny - p.cy) < o.r + p.r + 2 for p in sc.objects[1:]):
            continue
        tasks.append(MoveTask(sc, 0, dx, dy))
    return tasks


def pixel_vae():
    """Core ComfyUI's pixel-space VAE (what VAELoader 'pixel_space' returns)."""
    return comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})


def invert_image(model, image: torch.Tensor, vae=None, steps: int = 50, **kw):
    """IMAGE -> VAEEncode -> DDIMInvertToMemoryBank (fp16 bank on the CPU); returns the memory bank."""
    (latent,) = comfy_nodes.VAEEncode().encode(vae or pixel_vae(), image)
    return DDIMInvertToMemoryBank.execute(model=model, latent=latent, conditioning=toy_model.null_conditioning(),
                                          steps=steps, bank_precision="fp16", bank_device="cpu",
                                          **{**TOY_INVERSION, **kw}).args[1]


def decode(vae, latent: dict) -> np.ndarray:
    """VAEDecode of one LATENT -> (3, H, W) in [-1, 1]."""
    (decoded,) = comfy_nodes.VAEDecode().decode(vae, latent)
    return decoded[0].permute(2, 0, 1).numpy() * 2 - 1


def run_move(model, task: MoveTask, energy_scale: float = 1.0, vae=None, vacated_noise: str = "fresh",
             **sampler_kw) -> np.ndarray:
    """IMAGE -> VAEEncode -> invert -> DragonEnergyMove -> DragonGuidedSampler -> VAEDecode; (3, H, W) in [-1, 1].

    energy_scale 0 with vacated_noise "inverted" is the copy-paste baseline: the object's inverted noise pasted at
    its target, everything else as inverted, bank attention, no guidance.
    """
    vae = vae or pixel_vae()
    image = torch.from_numpy(scenes.to_image(scenes.render(task.scene)))[None]
    cond = toy_model.null_conditioning()
    bank = invert_image(model, image, vae)
    mask = torch.from_numpy(scenes.object_mask(task.scene, task.index).astype(np.float32))[None]
    (energy,) = DragonEnergyMove.execute(bank=bank, mask=mask, dx=task.dx, dy=task.dy, scale=task.scale, arrow="",
                                         vacated_noise=vacated_noise, **MOVE_WEIGHTS).args
    settings = {**TOY_SAMPLER, **sampler_kw, "energy_scale": energy_scale}
    (out,) = DragonGuidedSampler.execute(model=model, positive=cond, negative=cond, bank=bank, energy=energy,
                                         **settings).args
    return decode(vae, out)


def move_metrics(task: MoveTask, out: np.ndarray) -> dict[str, float]:
    """Centroid error (px) of object-coloured pixels vs the target, and the vacated area's residue share."""
    colour = np.array(task.scene.objects[task.index].colour, np.float32)[:, None, None]
    hit = np.linalg.norm(out - colour, axis=0) < COLOUR_TOL
    target = scenes.object_mask(task.target, task.index)
    source = scenes.object_mask(task.scene, task.index)
    vacated = source & ~target
    tx, ty = scenes.centroid(target)
    hx, hy = scenes.centroid(hit)
    err = math.hypot(hx - tx, hy - ty) if hit.any() else float(task.scene.size)
    return {"centroid_error": err, "residue": float(hit[vacated].mean()) if vacated.any() else 0.0}
