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
import collections
import json
import math
import multiprocessing
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
                    args: dict, weights_dtype: torch.dtype = torch.float32) -> None:
    params = _named_params(unet, text)
    tensors = {f"w/{k}": v.detach().cpu().contiguous() for k, v in params.items()}
    tensors.update({f"ema/{k}": v.cpu().contiguous() for k, v in ema.items()})
    for k, p in params.items():
        st = opt.state.get(p, {})
        if st:
            tensors[f"m/{k}"], tensors[f"v/{k}"] = st["exp_avg"].cpu().contiguous(), st["exp_avg_sq"].cpu().contiguous()
            tensors[f"t/{k}"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    tensors["rng"] = gen.get_state()
    meta = {"step": str(step), "log": json.dumps(log), "args": json.dumps(args)}
    for folder in {os.path.dirname(os.path.abspath(p)) for p in (path, weights_path)}:
        os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    safetensors.torch.save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)
    tmp = weights_path + ".tmp"
    safetensors.torch.save_file({k: v.to(weights_dtype).cpu().contiguous() for k, v in ema.items()}, tmp,
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
                opt.state[p] = {"step": tensors[f"t/{k}"][0].clone(), "exp_avg": tensors[f"m/{k}"].to(p.device),
                                "exp_avg_sq": tensors[f"v/{k}"].to(p.device)}
        for k in ema:
            ema[k].copy_(tensors[f"ema/{k}"])
    gen.set_state(tensors["rng"])
    return int(meta["step"]), json.loads(meta["log"])


def _seeds(a, step: int) -> range:
    return range(a.seed0 + step * a.batch, a.seed0 + (step + 1) * a.batch)


def batches(a, start: int, stop: int, pool=None):
    """The rendered scenes and prompts of steps start..stop-1, in order; with a ``pool``, rendered ahead by its
    workers (at most two batches a worker waiting), the same batches either way."""
    if pool is None:
        yield from (scenes2.batch(_seeds(a, s)) for s in range(start, stop))
        return
    ahead, queued = collections.deque(), start
    for _ in range(start, stop):
        while queued < stop and len(ahead) < 2 * a.workers:
            ahead.append(pool.apply_async(scenes2.batch, (_seeds(a, queued),)))
            queued += 1
        yield ahead.popleft().get()


def train_step(unet, text, opt, gen, ac, step: int, a, data: tuple[np.ndarray, list[str]]) -> float:
    """One step on ``data`` (a batch of scenes and their prompts); the noise and dropout are drawn on the CPU from
    ``gen``, so the device changes nothing but arithmetic."""
    x0, prompts = data
    drop = torch.rand(a.batch, generator=gen) < a.drop
    prompts = ["" if d else p for d, p in zip(drop.tolist(), prompts)]
    x0 = proxy_model.to_latent(a.arch, torch.from_numpy(x0))
    t = torch.randint(0, 1000, (a.batch,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen).to(a.device)
    abar = ac[t].view(-1, 1, 1, 1).to(a.device)
    xt = abar.sqrt() * x0.to(a.device) + (1 - abar).sqrt() * noise
    t = t.to(a.device)
    warm = min(1.0, (step + 1) / a.warmup)
    for group in opt.param_groups:
        group["lr"] = a.lr * warm * (0.55 + 0.45 * math.cos(math.pi * step / a.steps))
    with torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
        ctx = text(proxy_model.tokenize(prompts).to(a.device))
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
    ap.add_argument("--device", default="cpu", help="where the model trains (e.g. cuda); the data and the random draws "
                    "stay on the CPU, so a run resumes across machines")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that render the scenes ahead of the training step (0: render in this one)")
    ap.add_argument("--checkpoint", default=CHECKPOINT)
    ap.add_argument("--weights", default=proxy_model.WEIGHTS, help="where the EMA weights go at every save")
    ap.add_argument("--weights-dtype", choices=["fp32", "fp16"], default="fp32",
                    help="the EMA weights' file (fp16 halves it: a lent GPU machine returns files of 16 MiB at most)")
    a = ap.parse_args(argv)
    if not 0 <= a.workers <= 64:
        ap.error("--workers: between 0 and 64")
    a.seed0 = SEED_RANGES["train"][0] + 500_000_000 + a.seed * 100_000_000
    torch.set_num_threads(a.threads)
    # forked before the model reaches a device: the workers need this process's imports (the pack's name is set at
    # load time) and render with numpy only
    pool = multiprocessing.get_context("fork").Pool(a.workers) if a.workers else None
    try:
        return _train(a, pool)
    finally:
        if pool is not None:
            pool.terminate()


def _train(a, pool) -> dict:
    unet, text, gen = build(a.seed, a.arch)
    unet.to(a.device)
    text.to(a.device)
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
    if step >= stop:  # nothing to train: leave the checkpoint (and its committed bytes) as they are
        print(f"train_proxy: the checkpoint is at step {step}, where this run stops; nothing to do "
              f"(a larger --steps or --until goes on)", flush=True)
        return {"step": step, "log": log}
    t0, running = time.time(), []
    args = {k: v for k, v in vars(a).items() if k not in ("checkpoint", "weights")}
    dtype = {"fp32": torch.float32, "fp16": torch.float16}[a.weights_dtype]
    data = batches(a, step, stop, pool)
    while step < stop and time.time() - t0 < a.minutes * 60:
        running.append(train_step(unet, text, opt, gen, ac, step, a, next(data)))
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
            save_checkpoint(a.checkpoint, a.weights, unet, text, ema, opt, gen, step, log, args, dtype)
    save_checkpoint(a.checkpoint, a.weights, unet, text, ema, opt, gen, step, log, args, dtype)
    print(f"train_proxy: stopped at step {step} after {time.time() - t0:.0f}s", flush=True)
    return {"step": step, "log": log}
