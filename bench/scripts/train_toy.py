"""Train the Shapes32 toy model from scratch: ``make train-toy`` (or ``python bench/run.py train_toy``).

Seeded and reproducible on a fixed thread count: the scene for sample k of step s
is ``scenes.random_scene(train_seed0 + s * batch + k)``, and the noise, the
timesteps and the initial weights come from one seeded torch generator.
Prints the loss curve, saves EMA weights every ``--save-every`` steps.

Loss: epsilon MSE weighted by max(1, sigma) ** P (``--sigma-power P``, default 1.5), with
sigma = sqrt((1 - abar) / abar). The x0 a sampler derives from an epsilon error is sigma times
that error, and the plain loss (P = 0) leaves the first sampling steps (sigma 5..14.6) loose
enough that samples come out grainy (bench/MODEL_CARD.md has the runs with P = 0 and 1).
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import safetensors.torch
import torch

from .. import scenes, toy_model


def init_weights_(unet: torch.nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default conv/linear init, norms at 1/0, and the usual zero-initialised output layers."""
    with torch.no_grad():
        for name, mod in unet.named_modules():
            w, b = getattr(mod, "weight", None), getattr(mod, "bias", None)
            if not isinstance(w, torch.Tensor):
                continue
            if w.ndim >= 2:
                fan_in = w[0].numel()
                bound = 1 / math.sqrt(fan_in)
                w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * bound)
                if isinstance(b, torch.Tensor):
                    b.copy_((torch.rand(b.shape, generator=gen) * 2 - 1) * bound)
            else:
                w.fill_(1.0)
                if isinstance(b, torch.Tensor):
                    b.zero_()
            if name == "out.2" or name.endswith("out_layers.3") or name.endswith("proj_out"):
                w.zero_()
                if isinstance(b, torch.Tensor):
                    b.zero_()


def alphas_cumprod() -> torch.Tensor:
    """SD's 1000-step scaled-linear schedule (beta 0.00085..0.012), as ComfyUI builds it."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def save_atomic(state: dict, path: str, meta: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    safetensors.torch.save_file({k: v.detach().float().contiguous() for k, v in state.items()}, tmp,
                                metadata={k: str(v) for k, v in meta.items()})
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=13000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--sigma-power", type=float, default=1.5,
                    help="weight the epsilon MSE by max(1, sigma) ** P; 0 = plain epsilon MSE")
    ap.add_argument("--out", default=toy_model.WEIGHTS)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    unet = toy_model.build_base_model().diffusion_model
    init_weights_(unet, gen)
    unet.train()
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ac = alphas_cumprod()
    seed0 = scenes.SEED_RANGES["train"][0] + a.seed * 100_000_000
    ctx = torch.zeros(a.batch, 1, toy_model.CONTEXT_DIM)
    n_params = sum(p.numel() for p in params)
    print(f"train_toy: {n_params:,} params, {a.steps} steps x batch {a.batch}, {a.threads} threads, "
          f"loss weight max(1, sigma) ** {a.sigma_power}", flush=True)

    t0, running = time.time(), []
    for step in range(a.steps):
        x0 = torch.from_numpy(scenes.batch(range(seed0 + step * a.batch, seed0 + (step + 1) * a.batch)))
        t = torch.randint(0, 1000, (a.batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        abar = ac[t].view(-1, 1, 1, 1)
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        warm = min(1.0, (step + 1) / a.warmup)
        decay = 0.55 + 0.45 * math.cos(math.pi * step / a.steps)  # cosine from lr down to 10 % of lr
        for group in opt.param_groups:
            group["lr"] = a.lr * warm * decay
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = unet(xt, t.float(), context=ctx, transformer_options={})
        weight = ((1 - abar) / abar).sqrt().clamp(min=1.0) ** a.sigma_power
        loss = (weight * (pred.float() - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(a.ema, (1 + step) / (10 + step))
            for k, v in unet.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        running.append(loss.item())
        if (step + 1) % a.log_every == 0:
            print(f"step {step + 1:6d}  loss {np.mean(running):.5f}  lr {opt.param_groups[0]['lr']:.2e}  "
                  f"{time.time() - t0:7.0f}s", flush=True)
            running = []
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            save_atomic(ema, a.out, {"step": step + 1, "seed": a.seed, "seconds": round(time.time() - t0),
                                     "batch": a.batch, "threads": a.threads,
                                     "sigma_power": a.sigma_power, "steps": a.steps})
    print(f"train_toy: done, {time.time() - t0:.0f}s, EMA weights in {a.out}", flush=True)
