"""Speed lever "one batched backward instead of two": time it, and check that it changes nothing.

    python bench/run.py backward_lever [--channels 64 --size 32 --device cpu --repeats 5]

A guided step needs two gradients of the same forward graph, dE_edit/dz and dE_content/dz, because they are
masked to different regions (dragon_ops/guidance.py). Sequentially that is two ``autograd.grad`` calls (the
first keeps the graph); batched it is one call over both energies with ``is_grads_batched=True`` (vmap over the
backward). The FLOPs are the same; only the launch count differs. Both are timed here on the SD1.5 architecture
(random weights) with two masked energies on the UNet's output; the printed ratio is batched / sequential.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from . import sd_random


def gradients(unet, x: torch.Tensor, masks: torch.Tensor, batched: bool) -> torch.Tensor:
    """(2, *x.shape): the gradients of the two masked energies at x, from one forward."""
    leaf = x.detach().clone().requires_grad_(True)
    out = unet(leaf, torch.tensor([500.0], device=x.device), context=torch.zeros(1, 1, 768, device=x.device,
                                                                                 dtype=x.dtype),
               transformer_options={})
    energies = torch.stack([(out * m).float().pow(2).mean() for m in masks])
    if batched:
        (g,) = torch.autograd.grad(energies, leaf, torch.eye(2, device=x.device), is_grads_batched=True)
        return g
    first = torch.autograd.grad(energies[0], leaf, retain_graph=True)[0]
    return torch.stack([first, torch.autograd.grad(energies[1], leaf)[0]])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=32, help="latent cells per side")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=list(sd_random.DTYPES), default="fp32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="", help="also write the printed line here")
    a = ap.parse_args(argv)
    dev, dtype = torch.device(a.device), sd_random.DTYPES[a.dtype]
    unet = sd_random.model(dev, dtype, a.channels).model.diffusion_model.to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, a.size, a.size, generator=g).to(dev, dtype)
    half = torch.zeros(1, 1, a.size, a.size)
    half[..., : a.size // 2] = 1
    masks = torch.stack([half, 1 - half]).to(dev, dtype)
    seconds: dict[str, list[float]] = {"sequential": [], "batched": []}
    results = {}

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for k in range(a.repeats + 1):  # the first round warms up and is not timed
        for name in seconds:
            sync()
            t0 = time.perf_counter()
            results[name] = gradients(unet, x, masks, name == "batched")
            sync()
            if k:
                seconds[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(s) for name, s in seconds.items()}
    diff = (results["batched"] - results["sequential"]).abs().max().item()
    line = (f"backward_lever: SD1.5 width {a.channels}, {a.size}x{a.size} latent, {a.device} {a.dtype}, "
            f"{torch.get_num_threads()} threads, median of {a.repeats}: sequential {med['sequential']:.3f} s, "
            f"batched {med['batched']:.3f} s, ratio {med['batched'] / med['sequential']:.2f}; "
            f"max |difference| {diff:.2e}")
    print(line)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    return {"seconds": med, "max_difference": diff}
