"""The proxy model's loss curve for its model card, drawn from the loss log its training checkpoint keeps.

    python bench/run.py loss_plot --out docs/shapestext48_loss.png

The log holds a ``[step, mean weighted loss of the last 50 steps, seconds into the sitting]`` row every 50 steps;
a sitting starts where the seconds fall back, and is marked by a dashed line. Two panels: the whole run, and the
run past warm-up (each on a log scale where its loss spans more than a decade, else a linear one).
"""
from __future__ import annotations

import argparse
import json
import math

import safetensors
from PIL import Image, ImageDraw

from .scripts.train_proxy import CHECKPOINT

SIZE = (720, 360)
MARGIN = (70, 24, 20, 45)  # left, top, right, bottom
ZOOM_FROM = 1000  # the second panel, past warm-up


def sittings(log: list[list[float]]) -> list[int]:
    """The last logged step before each new sitting (where the seconds column falls back): a sitting began within
    one logging interval after it."""
    return [int(a[0]) for a, b in zip(log, log[1:]) if b[2] < a[2]]


def _ticks(lo: float, hi: float) -> list[float]:
    """Round values spanning [lo, hi] (widened where lo == hi), 4 to 12 of them."""
    if hi - lo <= 1e-12 * max(abs(hi), 1.0):
        lo, hi = 0.9 * lo, 1.1 * hi + 1e-12
    step = 10.0 ** math.floor(math.log10(hi - lo))
    while (hi - lo) / step < 3:
        step /= 2
    return [k * step for k in range(math.floor(lo / step), math.ceil(hi / step) + 1)]


def plot(log: list[list[float]], title: str, first_step: int = 0) -> Image.Image:
    """Loss against step from ``first_step`` (the log must have a row there): log scale by decades where it spans
    more than one, else linear, as the title then says; every 1,000 steps gridded."""
    rows = [r for r in log if r[0] >= first_step]
    steps, losses = [r[0] for r in rows], [r[1] for r in rows]
    logscale = max(losses) / min(losses) > 10
    title += " (log scale)" if logscale else " (linear scale)"
    f = math.log10 if logscale else (lambda v: v)
    ticks = ([10.0 ** e for e in range(math.floor(f(min(losses))), math.ceil(f(max(losses))) + 1)] if logscale
             else _ticks(min(losses), max(losses)))
    lo, hi = f(ticks[0]), f(ticks[-1])
    first = first_step // 1000 * 1000
    last = max(first + 1000, math.ceil(max(steps) / 1000) * 1000)
    left, top, right, bottom = MARGIN
    w, h = SIZE[0] - left - right, SIZE[1] - top - bottom

    def xy(step: float, loss: float) -> tuple[float, float]:
        return left + w * (step - first) / (last - first), top + h * (hi - f(loss)) / (hi - lo)

    img = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(img)
    for k in range(first, last + 1, 1000):
        x = xy(k, ticks[0])[0]
        draw.line([(x, top), (x, top + h)], fill=(225, 225, 225))
        if k % 2000 == 0:
            draw.text((x - 12, top + h + 6), f"{k:,}", fill="black")
    for v in ticks:
        y = xy(first, v)[1]
        draw.line([(left, y), (left + w, y)], fill=(225, 225, 225))
        draw.text((left - 45, y - 6), f"{v:g}", fill="black")
    for s in (s for s in sittings(log) if s > first):
        x = xy(s, ticks[0])[0]
        for y in range(top, top + h, 8):
            draw.line([(x, y), (x, y + 4)], fill=(200, 120, 40))
    draw.line([xy(s, v) for s, v in zip(steps, losses)], fill=(30, 80, 200), width=2)
    draw.rectangle([left, top, left + w, top + h], outline="black")
    draw.text((left + w // 2 - 15, top + h + 24), "step", fill="black")
    draw.text((left, 4), title, fill="black")
    return img


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint", default=CHECKPOINT)
    a = ap.parse_args(argv)
    with safetensors.safe_open(a.checkpoint, framework="pt") as f:
        meta = f.metadata()
    log, every = json.loads(meta["log"]), json.loads(meta["args"])["log_every"]
    title = f"ShapesText48: weighted eps loss, mean of {every} steps, to step {meta['step']}; dashes: a new sitting"
    panels = [plot(log, title)]
    if sum(r[0] >= ZOOM_FROM for r in log) >= 2:
        panels.append(plot(log, f"the same from step {ZOOM_FROM:,}", ZOOM_FROM))
    out = Image.new("RGB", (SIZE[0], len(panels) * SIZE[1]), "white")
    for k, panel in enumerate(panels):
        out.paste(panel, (0, k * SIZE[1]))
    out.save(a.out)
    print(f"loss_plot: {len(log)} points, {len(sittings(log)) + 1} sittings -> {a.out}")
