"""The proxy model's sample grid for its model card: scenes of the training and held-out families, and what the
model draws from each scene's prompt (ComfyUI's KSampler, DDIM, CFG 4, the empty negative prompt).

    python bench/run.py proxy_samples --out docs/shapestext48_samples.png
"""
from __future__ import annotations

import argparse
import textwrap

import nodes as comfy_nodes
import numpy as np
from PIL import Image, ImageDraw

from . import move_eval, proxy_model, scenes, scenes2
from . import shapesdrag2_tasks as t2

SEEDS = {False: (11, 12, 13, 14), True: (21, 22, 23, 24)}  # held_out -> scene seeds (the bench's seed range)


def sample(model, text, prompt: str, seed: int, steps: int = 30, cfg: float = 4.0) -> np.ndarray:
    """One DDIM sample for ``prompt``: (3, H, W) in [-1, 1]."""
    arch = proxy_model.model_arch(model)
    (out,) = comfy_nodes.common_ksampler(model, seed, steps, cfg, "ddim", "ddim_uniform",
                                         proxy_model.encode(text, prompt), proxy_model.encode(text, ""),
                                         {"samples": proxy_model.empty_latent(arch)})
    return move_eval.decode(proxy_model.vae(arch), out)


def colour_pixels(img: np.ndarray, colour: str) -> int:
    """How many pixels of ``img`` (3, H, W) in [-1, 1] are within the benchmark's tolerance of a named colour."""
    return int(t2.near_colour(img, scenes2._rgb(colour, scenes2.COLOURS)).sum())


def grid(rows: list[tuple[str, np.ndarray, np.ndarray]], zoom: int = 3) -> Image.Image:
    """Rows of (prompt, scene, sample), the two pictures side by side with the prompt beside them."""
    cell = scenes2.SIZE * zoom
    canvas = Image.new("RGB", (2 * cell + 400, len(rows) * (cell + 6)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (prompt, scene, drawn) in enumerate(rows):
        for c, img in enumerate((scene, drawn)):
            pic = Image.fromarray((scenes.to_image(img) * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
            canvas.paste(pic, (c * cell + 2 * c, r * (cell + 6)))
        draw.multiline_text((2 * cell + 10, r * (cell + 6) + 20), "\n".join(textwrap.wrap(prompt, 60)), fill="black")
    return canvas


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default=proxy_model.WEIGHTS)
    a = ap.parse_args(argv)
    model, text = proxy_model.load(a.weights)
    base = scenes.SEED_RANGES["bench"][0]
    rows = []
    for held_out, seeds in SEEDS.items():
        for seed in seeds:
            scene = scenes2.random_scene(base + seed, held_out=held_out)
            label = ("held out: " if held_out else "training: ") + scene.prompt()
            rows.append((label, scenes2.render(scene), sample(model, text, scene.prompt(), seed)))
    grid(rows).save(a.out)
    print(f"proxy_samples: {len(rows)} rows -> {a.out}")
