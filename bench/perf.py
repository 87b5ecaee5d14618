"""Cost of a move edit against a plain sampling pass, on the same model, latent and machine, in one run.

    python bench/run.py perf                                   # the ShapesText48 proxy, 48x48, CPU (make perf)
    python bench/run.py perf --model sd15 --size 512 --device cuda --dtype fp16 --json out.json   # GPU script
    python bench/run.py perf --model sdxl --size 1024 --device cuda --dtype fp16 --json out.json  # GPU script
    python bench/run.py perf --model sd15 --channels 32 --size 64 --steps 6                          # CI size

(a) ComfyUI's own KSampler node: 50-step DDIM ("normal" schedule), CFG, denoise 1.0, on the image's latent.
Then DDIMInvertToMemoryBank and DragonGuidedSampler (a DragonEnergyMove) under every schedule preset, and
DragonSampleToMemoryBank with a guided edit of the image it generated.
Reported per phase and per edit a user runs (``edits``): UNet forwards in single-image passes (full /
guidance-truncated), backward passes, wall time, peak RSS (and peak CUDA memory on a GPU), bank bytes, each as a
ratio to (a), counted (``passes.units``) and timed; then the same edits counted for SD1.5 at 512x512 (for
``--model sdxl``: SDXL at 1024x1024, ``counted_arch``).
"sd15" and "sdxl" are the full-size SD1.5 and SDXL UNet architectures with random weights (speed does not depend on
the weights); ``--channels`` shrinks their width for a CPU smoke run.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import comfy.patcher_extension
import nodes as comfy_nodes
import psutil
import torch

from ..dragon_ops import paper, passes, presets
from ..dragon_ops.passes import Passes, forward_kind
from ..nodes.energy_move import DragonEnergyMove
from ..nodes.generation import DragonSampleToMemoryBank
from ..nodes.inversion import DDIMInvertToMemoryBank
from ..nodes.sampler import edit_latent
from . import flops, proxy_model, scenes2, sd_random, toy_model
from .move_eval import MOVE_WEIGHTS, TOY_INVERSION, TOY_SAMPLER

PAPER_SAMPLER = {"seed": 0, "cfg": paper.MODES["move"].cfg, "energy_scale": 1.0, "start_step": 0,
                 "guidance_until": paper.GUIDANCE_UNTIL, "bank_start_step": paper.BANK_FROM, "guidance_cap": 0.0}
KEY = "dragon_perf"


class Meter:
    """Counts UNet forwards (single-image passes) through an APPLY_MODEL wrapper, and samples peak RSS."""

    def __init__(self, device: torch.device):
        self.device, self.counts, self.peak, self._stop = device, {}, 0, threading.Event()

    def wrapper(self, executor, x, t, *args, **kw):
        opts = kw.get("transformer_options") or (args[3] if len(args) > 3 else {}) or {}
        kind = forward_kind(opts)
        self.counts[kind] = self.counts.get(kind, 0) + int(x.shape[0])
        return executor(x, t, *args, **kw)

    def _poll(self):
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.005)

    def phase(self, name: str, fn, results: dict):
        self.counts, self.peak, self._stop = {}, psutil.Process().memory_info().rss, threading.Event()
        poller = threading.Thread(target=self._poll, daemon=True)
        poller.start()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        extra = fn() or {}
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        self._stop.set()
        poller.join()
        row = {**Passes().as_dict(), **self.counts, **extra,
               "seconds": seconds, "peak_rss_bytes": self.peak}
        if self.device.type == "cuda":
            row["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
        results[name] = row


def build(a) -> tuple:
    """(MODEL, positive, negative, the picture's latent, cfg) for the chosen model."""
    if a.model == "shapes32":
        model = toy_model.load_model()
        cond = toy_model.null_conditioning()
        return model, cond, cond, torch.zeros(1, 3, 32, 32), a.cfg if a.cfg is not None else 1.0
    if a.model == "proxy":  # a ShapesDrag v2 scene, its own prompt, the paper's CFG
        model, text = proxy_model.load()
        scene = scenes2.random_scene(200_000, held_out=True)
        picture = torch.from_numpy(scenes2.render(scene))[None]  # pixel space: the latent is the picture
        cfg = a.cfg if a.cfg is not None else paper.MODES["move"].cfg
        return model, proxy_model.encode(text, scene.prompt()), proxy_model.encode(text, ""), picture, cfg
    model = sd_random.model(torch.device(a.device), sd_random.DTYPES[a.dtype], a.channels, family=a.model)
    pos, neg = sd_random.conds(family=a.model)
    cfg = a.cfg if a.cfg is not None else 4.0
    return model, pos, neg, torch.randn(1, 4, a.size // 8, a.size // 8, generator=torch.Generator().manual_seed(0)), cfg


def run(a) -> dict:
    """Every phase once, in one process on one model: per phase its UNet passes, seconds and peak memory."""
    device = torch.device(a.device)
    model, pos, neg, latent, cfg = build(a)
    meter = Meter(device)
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, KEY, meter.wrapper)
    h, w = latent.shape[-2:]
    mask = torch.zeros(1, 8 * h, 8 * w) if a.model in sd_random.ARCHS else torch.zeros(1, h, w)
    mask[:, mask.shape[1] // 4: mask.shape[1] // 2, mask.shape[2] // 4: mask.shape[2] // 2] = 1.0
    dx = mask.shape[2] // 8
    settings = {**(TOY_SAMPLER if a.model == "shapes32" else PAPER_SAMPLER), "cfg": cfg}
    settings.update({k: presets.at(settings[k], a.steps) for k in ("start_step", "guidance_until", "bank_start_step")})
    results, banks = {}, {}

    def plain():
        comfy_nodes.common_ksampler(model, 0, a.steps, cfg, "ddim", "normal", pos, neg, {"samples": latent},
                                    denoise=1.0, disable_noise=False)

    def invert():
        _, banks["inverted"] = DDIMInvertToMemoryBank.execute(model=model, latent={"samples": latent},
                                                              conditioning=pos, steps=a.steps, bank_precision=a.bank,
                                                              bank_device="cpu", refine=a.refine).args
        return {"bank_bytes": banks["inverted"].nbytes()}

    def generate():
        *_, banks["generated"] = DragonSampleToMemoryBank.execute(
            model=model, positive=pos, negative=neg, latent={"samples": torch.zeros_like(latent)}, seed=0,
            steps=a.steps, cfg=cfg, bank_precision=a.bank, bank_device="cpu").args
        return {"bank_bytes": banks["generated"].nbytes()}

    def guided(preset, which="inverted"):
        def go():
            bank = banks[which]
            (energy,) = DragonEnergyMove.execute(bank=bank, mask=mask, dx=dx, dy=0, scale=1.0, arrow="",
                                                 **MOVE_WEIGHTS).args
            _, counts, _ = edit_latent(model, pos, neg, bank, energy, **{**settings, "preset": preset,
                                                                         "cfg": 0.0 if which == "generated" else cfg})
            return {"backwards": counts["backwards"]}
        return go

    with torch.inference_mode():  # as ComfyUI runs nodes
        meter.phase(PLAIN, plain, results)
        meter.phase("inversion", invert, results)
        for preset in presets.PRESETS:
            meter.phase(f"guided, {preset}", guided(preset), results)
        meter.phase("generation with its bank", generate, results)
        meter.phase("guided on the generated bank, DragonDiffusion", guided("DragonDiffusion", "generated"), results)
    return results


PLAIN = "(a) plain KSampler"


def edits(results: dict) -> dict[str, list[str]]:
    """The edits a user runs, as the phases each one spends (a generated image's own generation is the pass the
    user makes anyway; a re-edit finds the inversion in ComfyUI's cache)."""
    rows = {f"real-image edit, {p} (inversion included)": ["inversion", f"guided, {p}"] for p in presets.PRESETS}
    rows["generated-image edit, DragonDiffusion (no inversion)"] = ["guided on the generated bank, DragonDiffusion"]
    rows["preview (bank reused)"] = ["guided, Preview"]
    rows["re-edit, bank cached, DragonDiffusion"] = ["guided, DragonDiffusion"]
    return rows


def _passes(row: dict) -> Passes:
    return Passes(row["full_forwards"], row["guidance_forwards"], row["backwards"])


NAMES = {"sd15": "SD1.5", "sdxl": "SDXL"}


def counted_arch(model: str) -> tuple[str, int]:
    """The full-size architecture and image size the counted table is for: SDXL at 1024 for an SDXL run, SD1.5 at
    512 for every other model."""
    return ("sdxl", 1024) if model == "sdxl" else ("sd15", 512)


def report(results: dict, a) -> str:
    base = results[PLAIN]
    lines = [f"model {a.model}, {a.size}x{a.size}, {a.steps} steps, {a.device} {a.dtype}, bank {a.bank}, "
             f"refine {a.refine}, {torch.get_num_threads()} CPU threads",
             "| phase | UNet fwd full | fwd truncated | bwd | seconds | x (a) time | peak RSS MiB | peak CUDA MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cuda = f"{r['peak_cuda_bytes'] / 2**20:.0f}" if "peak_cuda_bytes" in r else "-"
        lines.append(f"| {name} | {r['full_forwards']} | {r['guidance_forwards']} | {r['backwards']} | "
                     f"{r['seconds']:.2f} | {r['seconds'] / base['seconds']:.2f} | {r['peak_rss_bytes'] / 2**20:.0f} | "
                     f"{cuda} |")
    lines += ["", "| edit | UNet fwd full | fwd truncated | bwd | counted x (a) | time x (a) |",
              "|---|---|---|---|---|---|"]
    for name, phases in edits(results).items():
        p = sum((_passes(results[ph]) for ph in phases), Passes())
        seconds = sum(results[ph]["seconds"] for ph in phases)
        lines.append(f"| {name} | {p.full_forwards} | {p.guidance_forwards} | {p.backwards} | "
                     f"{passes.units(p) / passes.units(_passes(base)):.2f} | {seconds / base['seconds']:.2f} |")
    family, size = counted_arch(a.model)
    measured = flops.costs(flops.counted(family, size))
    lines += ["", f"counted for {NAMES[family]} at {size}x{size} ({paper.STEPS} steps, CFG batch 2, a "
              f"move), with spec section 7's weights (set for SD1.5) and with each pass's FLOPs on this "
              f"architecture (truncated {measured.truncated:.3f}, backward {measured.backward:.3f} full forwards):",
              "| edit | UNet fwd full | fwd truncated | bwd | counted x plain (spec weights) | FLOPs x plain |",
              "|---|---|---|---|---|---|"]
    for name, p in passes.counted_edits().items():
        lines.append(f"| {name} | {p.full_forwards} | {p.guidance_forwards} | {p.backwards} | "
                     f"{passes.units(p) / passes.units(passes.plain()):.3f} | "
                     f"{passes.units(p, measured) / passes.units(passes.plain(), measured):.3f} |")
    for kind in ("inversion", "generation with its bank"):
        b = results[kind]["bank_bytes"]
        lines.append(f"bank ({kind}): {b:,} bytes ({b / 2**30:.3f} GiB)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["proxy", "shapes32", *sd_random.ARCHS], default="proxy")
    ap.add_argument("--size", type=int, default=512, help="sd15/sdxl image size in pixels (the proxy 48, Shapes32 32)")
    ap.add_argument("--channels", type=int, default=320, help="sd15/sdxl model_channels (320 = the real width)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=list(sd_random.DTYPES), default="fp32")
    ap.add_argument("--bank", default="fp16", help="bank_precision of the inversion")
    ap.add_argument("--refine", type=int, default=None,
                    help="inversion refine (default: 0, the paper's, for sd15; the Shapes32 settings' 1)")
    ap.add_argument("--cfg", type=float, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", default="")
    ap.add_argument("--out", default="", help="also write the printed tables here (markdown)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.model in ("shapes32", "proxy"):
        a.size = 32 if a.model == "shapes32" else scenes2.SIZE
    if a.refine is None:
        a.refine = TOY_INVERSION["refine"] if a.model == "shapes32" else paper.REFINE
    results = run(a)
    text = report(results, a)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"`bench/run.py perf {' '.join(argv if argv is not None else sys.argv[2:])}`\n\n{text}\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "device_name": torch.cuda.get_device_name() if a.device.startswith("cuda")
                       else "cpu", "results": results}, f, indent=1)
    return results
