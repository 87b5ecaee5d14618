"""Train the prompt-conditioned proxy model (``bench/proxy_model.py``), resumably: ``make train-proxy``.

Each call trains until ``--steps`` in total or for ``--minutes``, whichever comes first, then saves; the next call
resumes from the checkpoint, so a run can be split over sittings and machines. The checkpoint holds the weights,
their EMA, the optimiser's moments, the step and the random generator's state, so 2 + 2 steps give bit for bit
the weights of 4 (on the same thread count). The EMA weights go to ``proxy_model.WEIGHTS`` at every save.

Data: ``scenes2.random_scene`` of the training families, seed ``train_seed0 + step * batch + k`` for sample k of
step ``step``, its prompt dropped (replaced by "") with probability ``--drop``. Loss: epsilon MSE weighted by
max(1, sigma) ** 1.5, as for Shapes32 (bench/MODEL_CARD.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import safetensors.torch
import torch

from .. import proxy_model, scenes2
from ..scenes import SEED_RANGES
from .train_toy import alphas_cumprod, init_weights_

CHECKPOINT = os.path.join(proxy_model.HERE, "weights", "shapestext48_checkpoint.safetensors")


def build(seed: int, arch: str = "pixel48"):
    gen = torch.Generator().manual_seed(seed)
    unet = proxy_model.build_base_model(arch=arch).diffusion_model
    init_weights_(unet, gen)
    with torch.random.fork_rng():  # seeded, and each layer drawn on its own (the encoder deep-copies its layer)
        torch.manual_seed(seed + 1)
        text = proxy_model.TextEncoder()
        for m in text.modules():
            torch_class = next(c for c in type(m).__mro__ if c.__module__.startswith("torch."))  # past comfy.ops
            for reset in ("reset_parameters", "_reset_parameters"):
                if m is not text and hasattr(torch_class, reset):
                    getattr(torch_class, reset)(m)
    unet.train()
    text.train()
    return unet, text, gen


def _named_params(unet, text) -> dict[str, torch.nn.Parameter]:
    return {**{k: v for k, v in unet.named_parameters()}, **{"text." + k: v for k, v in text.named_parameters()}}


def save_checkpoint(path: str, weights_path: str, unet, text, ema: dict, opt, gen, step: int, log: list,
                    args: dict) -> None:
    params = _named_params(unet, text)
    tensors = {f"w/{k}": v.detach().contiguous() for k, v in params.items()}
    tensors.update({f"ema/{k}": v.contiguous() for k, v in ema.items()})
    for k, p in params.items():
        st = opt.state.get(p, {})
        if st:
            tensors[f"m/{k}"], tensors[f"v/{k}"] = st["exp_avg"].contiguous(), st["exp_avg_sq"].contiguous()
            tensors[f"t/{k}"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    tensors["rng"] = gen.get_state()
    meta = {"step": str(step), "log": json.dumps(log), "args": json.dumps(args)}
    for folder in {os.path.dirname(os.path.abspath(p)) for p in (path, weights_path)}:
        os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    safetensors.torch.save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)
    tmp = weights_path + ".tmp"
    safetensors.torch.save_file({k: v.float().contiguous() for k, v in ema.items()}, tmp,
                                metadata={"step": str(step), "args": json.dumps(args)})
    os.replace(tmp, weights_path)


def load_checkpoint(path: str, unet, text, ema: dict, opt, gen, arch: str) -> tuple[int, list]:
    with safetensors.safe_open(path, framework="pt") as f:
        meta = f.metadata()
        saved = json.loads(meta["args"]).get("arch", "pixel48")
        if saved != arch:
            raise SystemExit(f"--arch: {path} trains {saved}, not {arch}; pass --arch {saved} or another "
                             "--checkpoint")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    params = _named_params(unet, text)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(tensors[f"w/{k}"])
            if f"m/{k}" in tensors:
                opt.state[p] = {"step": tensors[f"t/{k}"][0].clone(), "exp_avg": tensors[f"m/{k}"].clone(),
                                "exp_avg_sq": tensors[f"v/{k}"].clone()}
        for k in ema:
            ema[k].copy_(tensors[f"ema/{k}"])
    gen.set_state(tensors["rng"])
    return int(meta["step"]), json.loads(meta["log"])


def train_step(unet, text, opt, gen, ac, step: int, a) -> float:
    seeds = range(a.seed0 + step * a.batch, a.seed0 + (step + 1) * a.batch)
    x0, prompts = scenes2.batch(seeds)
    drop = torch.rand(a.batch, generator=gen) < a.drop
    prompts = ["" if d else p for d, p in zip(drop.tolist(), prompts)]
    x0 = proxy_model.to_latent(a.arch, torch.from_numpy(x0))
    t = torch.randint(0, 1000, (a.batch,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    abar = ac[t].view(-1, 1, 1, 1)
    xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    warm = min(1.0, (step + 1) / a.warmup)
    for group in opt.param_groups:
        group["lr"] = a.lr * warm * (0.55 + 0.45 * math.cos(math.pi * step / a.steps))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
        ctx = text(proxy_model.tokenize(prompts))
        pred = unet(xt, t.float(), context=ctx, transformer_options={})
    weight = ((1 - abar) / abar).sqrt().clamp(min=1.0) ** 1.5
    loss = (weight * (pred.float() - noise) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
    opt.step()
    return float(loss.detach())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30000, help="total steps of the whole run (the lr schedule's)")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop this sitting after this long")
    ap.add_argument("--until", type=int, default=None, help="stop this sitting at this step")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--drop", type=float, default=0.1, help="prompt dropout (empty prompt) probability")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--arch", choices=list(proxy_model.ARCHS), default="pixel48",
                    help="UNet and latent (proxy_model.ARCHS); a checkpoint resumes only with its own")
    ap.add_argument("--autocast", choices=["bf16", "off"], default="bf16",
                    help="bf16 autocast on the CPU (as the committed checkpoint was trained); 'off' trains in fp32, "
                    "which is faster on CPUs without native bf16")
    ap.add_argument("--checkpoint", default=CHECKPOINT)
    ap.add_argument("--weights", default=proxy_model.WEIGHTS, help="where the EMA weights go at every save")
    a = ap.parse_args(argv)
    a.seed0 = SEED_RANGES["train"][0] + 500_000_000 + a.seed * 100_000_000
    torch.set_num_threads(a.threads)
    unet, text, gen = build(a.seed, a.arch)
    params = list(_named_params(unet, text).values())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in _named_params(unet, text).items()}
    step, log = 0, []
    if os.path.exists(a.checkpoint):
        step, log = load_checkpoint(a.checkpoint, unet, text, ema, opt, gen, a.arch)
        print(f"train_proxy: resumed at step {step}", flush=True)
    ac = alphas_cumprod()
    stop = min(a.steps, a.until if a.until is not None else a.steps)
    print(f"train_proxy: {sum(p.numel() for p in params):,} params, batch {a.batch}, {a.threads} threads, "
          f"steps {step} -> {stop} (of {a.steps}), at most {a.minutes:g} min", flush=True)
    t0, running = time.time(), []
    args = {k: v for k, v in vars(a).items() if k not in ("checkpoint", "weights")}
    while step < stop and time.time() - t0 < a.minutes * 60:
        running.append(train_step(unet, text, opt, gen, ac, step, a))
        with torch.no_grad():
            d = min(a.ema, (1 + step) / (10 + step))
            for k, v in _named_params(unet, text).items():
                ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        step += 1
        if step % a.log_every == 0:
            log.append([step, round(float(np.mean(running)), 5), round(time.time() - t0, 1)])
            running = []
            print(f"step {step:6d}  loss {log[-1][1]:.5f}  {log[-1][2]:7.0f}s", flush=True)
        if step % a.save_every == 0:
            save_checkpoint(a.checkpoint, a.weights, unet, text, ema, opt, gen, step, log, args)
    save_checkpoint(a.checkpoint, a.weights, unet, text, ema, opt, gen, step, log, args)
    print(f"train_proxy: stopped at step {step} after {time.time() - t0:.0f}s", flush=True)
    return {"step": step, "log": log}
