"""Evaluate the Shapes32 model: sample grid, a sample-validity score, and DDIM inversion PSNR.

    python bench/run.py eval_toy [--grid docs/shapes32_samples.png]

Prints the figures that go into bench/MODEL_CARD.md. The tests call the same functions.
"""
from __future__ import annotations

import argparse
import time

import comfy.k_diffusion.sampling
import comfy.samplers
import numpy as np
import torch
from scipy import ndimage

from ..dragon_ops import schedule
from . import scenes, toy_model

SATURATION = 0.6  # max-min channel spread in [0, 1]: objects are fully saturated, backgrounds muted


def ddim(model, x_t: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Plain DDIM (eta 0) = ComfyUI's Euler on a DDIM sigma ladder, cond-only."""
    guider = comfy.samplers.CFGGuider(model)
    cond = toy_model.null_conditioning()
    guider.set_conds(cond, cond)
    guider.set_cfg(1.0)
    sampler = comfy.samplers.KSAMPLER(comfy.k_diffusion.sampling.sample_euler)
    return guider.sample(torch.zeros_like(x_t), x_t, sampler, sigmas, disable_pbar=True, seed=0)


def sample(model, n: int, seed: int = 0, steps: int = 50) -> torch.Tensor:
    """n unconditional samples (N, 3, 32, 32) in [-1, 1]."""
    sched = schedule.ddim_schedule(model.get_model_object("model_sampling"), steps)
    sigmas = sched.sampling_sigmas()
    noise = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * sigmas[0]
    return ddim(model, noise, sigmas).clamp(-1, 1)


def image_stats(img: np.ndarray) -> tuple[float, int, float]:
    """(object coverage, number of object blobs, background roughness) of a (3, H, W) image in [-1, 1]."""
    x = (img + 1) / 2
    obj = (x.max(0) - x.min(0)) > SATURATION
    _, blobs = ndimage.label(obj)
    bg = ~ndimage.binary_dilation(obj, iterations=1)
    lap = np.abs(ndimage.laplace(x, mode="nearest")).mean(0)
    rough = float(lap[bg].mean()) if bg.any() else 0.0
    return float(obj.mean()), int(blobs), rough


def generator_ranges(n: int = 400) -> dict[str, tuple[float, float]]:
    """The range of each statistic over training scenes (0.5th..99.5th percentile)."""
    stats = np.array([image_stats(scenes.render(scenes.random_scene(scenes.SEED_RANGES["train"][0] + s)))
                      for s in range(n)])
    lo, hi = np.percentile(stats, 0.5, axis=0), np.percentile(stats, 99.5, axis=0)
    return {"coverage": (lo[0], hi[0]), "blobs": (max(1, lo[1]), hi[1] + 1), "roughness": (0.0, hi[2])}


def valid_share(samples: torch.Tensor, ranges: dict[str, tuple[float, float]]) -> float:
    """Share of samples whose coverage, blob count and background roughness lie in the generator's ranges."""
    ok = 0
    for img in samples.numpy():
        cov, blobs, rough = image_stats(img)
        ok += (ranges["coverage"][0] <= cov <= ranges["coverage"][1] and
               ranges["blobs"][0] <= blobs <= ranges["blobs"][1] and rough <= ranges["roughness"][1])
    return ok / len(samples)


def inversion_psnr(model, seeds: list[int], steps: int = 50, **inversion) -> list[float]:
    """Image-space PSNR (peak 1 on [0, 1] images) of invert -> DDIM reconstruct, per scene; ``inversion``: more
    inputs of the inversion node (``refine``)."""
    from ..nodes.inversion import DDIMInvertToMemoryBank

    out = []
    for s in seeds:
        x0 = torch.from_numpy(scenes.render(scenes.random_scene(s)))[None]
        res = DDIMInvertToMemoryBank.execute(model=model, latent={"samples": x0}, steps=steps,
                                             conditioning=toy_model.null_conditioning(), bank_precision="fp16",
                                             bank_device="cpu", **inversion)
        x_t, bank = res.args[0]["samples"], res.args[1]
        rec = ddim(model, x_t, bank.schedule.sampling_sigmas()).clamp(-1, 1)
        mse = float((((rec - x0) / 2) ** 2).mean())
        out.append(10 * np.log10(1 / max(mse, 1e-12)))
    return out


def x0_error_by_t(model, timesteps=(981, 900, 800, 700, 500, 300, 100), n: int = 64) -> dict[int, tuple]:
    """Per timestep: (eps MSE, x0 MSE, high-frequency x0 MSE) of the model's one-step x0 estimate on held-out
    scenes. The x0 error is sigma times the eps error, so a small eps error at high noise still leaves grain
    (the part above a 3x3 box blur) in what the first sampling steps commit to."""
    unet = model.model.diffusion_model
    abar = 1 / (1 + model.get_model_object("model_sampling").sigmas.float() ** 2)
    x0 = torch.from_numpy(scenes.batch([scenes.SEED_RANGES["test"][0] + 5000 + k for k in range(n)]))
    gen, ctx, box = torch.Generator().manual_seed(1), torch.zeros(n, 1, toy_model.CONTEXT_DIM), torch.ones(3, 1, 3, 3)
    out = {}
    for t in timesteps:
        noise, a = torch.randn(x0.shape, generator=gen), abar[t]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with torch.no_grad():
            eps = unet(xt, torch.full((n,), float(t)), context=ctx, transformer_options={})
        err = (xt - (1 - a).sqrt() * eps) / a.sqrt() - x0
        hf = err - torch.nn.functional.conv2d(torch.nn.functional.pad(err, (1, 1, 1, 1), mode="replicate"),
                                              box / 9, groups=3)
        out[t] = (float(((eps - noise) ** 2).mean()), float((err ** 2).mean()), float((hf ** 2).mean()))
    return out


def save_grid(images: torch.Tensor, path: str, cols: int = 8, zoom: int = 3) -> None:
    from PIL import Image

    n = len(images)
    rows = -(-n // cols)
    arr = np.ones((rows * 34, cols * 34, 3), np.float32)
    for k, img in enumerate(images.numpy()):
        r, c = divmod(k, cols)
        arr[r * 34 + 1:r * 34 + 33, c * 34 + 1:c * 34 + 33] = scenes.to_image(img)
    im = Image.fromarray((arr * 255).astype(np.uint8))
    im.resize((im.width * zoom, im.height * zoom), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grid", default="")
    ap.add_argument("--weights", default=toy_model.WEIGHTS)
    ap.add_argument("--samples", type=int, default=64, help="samples per seed")
    ap.add_argument("--seeds", default="0,1,2,3", help="sample seeds; the grid shows the first one's samples")
    ap.add_argument("--scenes", type=int, default=20)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = toy_model.load_model(a.weights)
    print(f"load: {time.perf_counter() - t0:.2f} s")
    ranges, shares = generator_ranges(), []
    for k, seed in enumerate(int(s) for s in a.seeds.split(",")):
        imgs = sample(model, a.samples, seed=seed)
        shares.append(valid_share(imgs, ranges))
        print(f"samples, seed {seed}: {shares[-1]:.0%} of {a.samples} inside the generator's ranges")
        if a.grid and k == 0:
            save_grid(imgs, a.grid)
            print(f"grid: {a.grid}")
    print(f"samples, all seeds: {np.mean(shares):.1%} of {a.samples * len(shares)}")
    for t, (e, x, hf) in x0_error_by_t(model).items():
        print(f"t={t:4d}: eps MSE {e:.5f}, x0 MSE {x:.4f}, high-frequency x0 MSE {hf:.4f}")
    for refine in (1, 0):
        psnr = inversion_psnr(model, [scenes.SEED_RANGES["test"][0] + 1000 + k for k in range(a.scenes)],
                              refine=refine)
        print(f"inversion (refine={refine}) PSNR over {a.scenes} held-out scenes: mean {np.mean(psnr):.1f} dB, "
              f"median {np.median(psnr):.1f}, min {np.min(psnr):.1f}")
