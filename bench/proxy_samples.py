"""The proxy model's sample grid for its model card: scenes of the training and held-out families, and what the
model draws from each scene's prompt (ComfyUI's KSampler, DDIM, CFG 4, the empty negative prompt); and whether
its samples take the shape their prompt names (``--shapes N``: the roundness of what it draws for "disc",
"rectangle" and "triangle" over N seeds).

    python bench/run.py proxy_samples --out docs/shapestext48_samples.png
    python bench/run.py proxy_samples --shapes 12
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
    return int(t2.named_colour(img, colour).sum())


SHAPE_WORDS = ("disc", "rectangle", "triangle")  # training words whose outlines differ most in roundness
SHAPE_COLOURS = ("red", "blue", "yellow", "green", "purple", "orange")


def roundness(img: np.ndarray, colour: str) -> float | None:
    """Area of the largest region of the named colour over that of the smallest circle about its centroid that
    holds it: about 1 for a disc, 0.64 for a square (0.48-0.62 for the generator's rectangles, aspect 0.45-0.8),
    0.41 for an equilateral triangle; small corners read a little rounder (pixel edges are added along the radius
    only). None under 20 pixels. Rendered single flat objects measure disc 0.87, rectangle 0.52, triangle 0.43."""
    region = t2.largest(t2.named_colour(img, colour))
    if region.sum() < 20:
        return None
    ys, xs = np.nonzero(region)
    radius = np.sqrt(((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max()) + 0.5  # to the pixel's edge
    return float(region.sum() / (np.pi * radius ** 2))


def shape_following(model, text, seeds: int, steps: int = 20,
                    words: tuple[str, ...] = SHAPE_WORDS) -> dict[str, list[float | None]]:
    """Roundness of samples of "a {colour} {word} on a gray background" per shape word, the same seeds and colours
    for every word (seed k, colour k mod 6)."""
    rounds: dict[str, list[float | None]] = {}
    for w in words:
        rounds[w] = []
        for k in range(seeds):
            c = SHAPE_COLOURS[k % len(SHAPE_COLOURS)]
            rounds[w].append(roundness(sample(model, text, f"a {c} {w} on a gray background", k, steps), c))
    return rounds


def disc_triangle_pairs(rounds: dict[str, list[float | None]]) -> list[tuple[float, float]]:
    """(disc, triangle) roundness at each seed where both samples drew a region."""
    return [(d, t) for d, t in zip(rounds["disc"], rounds["triangle"]) if d is not None and t is not None]


def shape_report(rounds: dict[str, list[float | None]]) -> str:
    """Mean roundness per word (over the samples with a region) and how often, at one seed, the disc is rounder
    than the triangle."""
    lines = ["| word | mean roundness | samples with a region |", "|---|---|---|"]
    for w, r in rounds.items():
        found = [x for x in r if x is not None]
        lines.append(f"| {w} | {np.mean(found) if found else float('nan'):.3f} | {len(found)} of {len(r)} |")
    pairs = disc_triangle_pairs(rounds)
    lines.append(f"disc rounder than triangle at the same seed: {sum(d > t for d, t in pairs)} of {len(pairs)}")
    return "\n".join(lines)


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
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", help="write the sample grid here")
    what.add_argument("--shapes", type=int, help="measure shape following over this many seeds instead")
    ap.add_argument("--weights", default=proxy_model.WEIGHTS)
    a = ap.parse_args(argv)
    if a.shapes is not None and a.shapes < 1:
        ap.error("--shapes: give at least 1 seed")
    model, text = proxy_model.load(a.weights)
    if a.shapes:
        print(f"proxy_samples: {a.weights}\n{shape_report(shape_following(model, text, a.shapes))}")
        return
    base = scenes.SEED_RANGES["bench"][0]
    rows = []
    for held_out, seeds in SEEDS.items():
        for seed in seeds:
            scene = scenes2.random_scene(base + seed, held_out=held_out)
            label = ("held out: " if held_out else "training: ") + scene.prompt()
            rows.append((label, scenes2.render(scene), sample(model, text, scene.prompt(), seed)))
    grid(rows).save(a.out)
    print(f"proxy_samples: {len(rows)} rows -> {a.out}")
