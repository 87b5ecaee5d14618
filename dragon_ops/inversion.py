"""Deterministic DDIM inversion (eta = 0) that fills the memory bank.

Follows the official ``src/utils/inversion.py`` (algorithm spec, section 1.1):
for j = 0..N-1 with t = t_{N-1-j},

    eps      = eps_theta(L[j], t, c)                 # cond only, no CFG
    x0_hat   = (L[j] - sqrt(1 - a_prev) * eps) / sqrt(a_prev),   a_prev = alpha_bar(t - N/1000)
    L[j + 1] = sqrt(a_t) * x0_hat + sqrt(1 - a_t) * eps

In ComfyUI's sigma space (x = z / sqrt(alpha_bar)) this is x0_hat = x_j - s_j * eps,
x_{j+1} = x0_hat + s_{j+1} * eps, with eps read from the model at sigma s_{j+1}.
The self-attention inputs seen in step j are stored under sampling step
i = N-1-j, so bank[i] comes from UNet(L[N-1-i], t_i): the one-step-cleaner
latent, as in the official code (quirk Q5, kept).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from . import ddim
from .attention import STATE_KEY, BankRecorder, BankState, attn1_patch


def with_state(extra_args: dict, state: BankState | None, **entries) -> dict:
    """A shallow copy of the sampler's extra_args whose transformer_options carry ``state`` (and ``entries``)."""
    model_options = dict(extra_args.get("model_options", {}))
    model_options["transformer_options"] = {**model_options.get("transformer_options", {}), STATE_KEY: state,
                                            **entries}
    return {**extra_args, "model_options": model_options}


def eps_at(model: Callable, z: torch.Tensor, sigma: float, extra_args: dict) -> torch.Tensor:
    """eps_theta(z, t(sigma)) for a VP latent z = x / sqrt(1 + sigma^2), through ComfyUI's denoiser."""
    scale = (1.0 + sigma * sigma) ** 0.5
    x = z * scale
    denoised = model(x, x.new_full((x.shape[0],), sigma), **extra_args)
    return (x - denoised) / sigma


@torch.no_grad()
def sample_ddim_inversion(model, x, sigmas, extra_args=None, callback=None, disable=None, recorder=None,
                          latents_out=None, refine: int = 0):
    """k-diffusion style sampler function for ``comfy.samplers.KSAMPLER``.

    ``sigmas`` is the increasing ladder of ``DdimSchedule.inversion_sigmas()``;
    ``x`` is the clean latent, taken as the official code takes it: the VP latent z at sigmas[0] (alpha_bar(t=0)
    = 0.99915), so L[0] = x * sqrt(1 + sigmas[0]^2) in sigma space (``sample_guided`` returns z at its last sigma
    the same way). Appends every L[k] (in sigma space) to ``latents_out`` and records the bank with ``recorder``.
    Returns x at sigmas[-1].

    ``refine`` > 0 adds fixed-point iterations x_{j+1} = x_j + (s_{j+1} - s_j) eps(x_{j+1}, s_{j+1}), which make
    each step the exact inverse of the DDIM (Euler) step that sampling takes back (an addition to the spec; the
    idea follows fixed-point / "ReNoise"-style inversion). The bank keeps the spec's first evaluation.
    """
    extra_args = {} if extra_args is None else extra_args
    n = len(sigmas) - 1
    sig = [float(s) for s in sigmas]
    x = x * (1.0 + sig[0] ** 2) ** 0.5
    if latents_out is not None:
        latents_out.append(x.clone())
    for j in range(n):
        if recorder is not None:
            recorder.step = n - 1 - j
        args = with_state(extra_args, BankState(recorder=recorder))
        z = x / (1.0 + sig[j] ** 2) ** 0.5
        eps = eps_at(model, z, sig[j + 1], args)
        x0, x_next = ddim.step(x, sig[j], sig[j + 1], eps)
        for _ in range(refine):
            den = model(x_next, x.new_full((x.shape[0],), sig[j + 1]), **extra_args)
            x_next = x + (sig[j + 1] - sig[j]) * (x_next - den) / sig[j + 1]
        x = x_next
        if latents_out is not None:
            latents_out.append(x.clone())
        if callback is not None:
            callback({"x": x, "i": j, "sigma": sigmas[j + 1], "sigma_hat": sigmas[j + 1], "denoised": x0})
    return x


def recording_clone(model_patcher, dtype: torch.dtype, device: torch.device):
    """A clone of the MODEL with the bank patch, its UNet's layer map and a recorder for its bank layers."""
    from .unet_map import map_unet

    m = model_patcher.clone()
    m.set_model_attn1_patch(attn1_patch)
    umap = map_unet(m.model.diffusion_model)
    return m, umap, BankRecorder(frozenset(layer.key for layer in umap.bank_layers), dtype, device)


def invert_to_bank(model_patcher, latent: torch.Tensor, conditioning: list, schedule, dtype: torch.dtype,
                   device: torch.device, fingerprint: str, callback=None, refine: int = 0):
    """Invert ``latent`` (LATENT space, batch 1) with DDIM on a clone of ``model_patcher``.

    Returns (x_T in LATENT space, MemoryBank). The caller's MODEL is not touched.
    """
    import comfy.samplers

    from .memory_bank import MemoryBank

    m, umap, recorder = recording_clone(model_patcher, dtype, device)
    latents: list[torch.Tensor] = []
    sampler = comfy.samplers.KSAMPLER(sample_ddim_inversion,
                                      extra_options={"recorder": recorder, "latents_out": latents,
                                                     "refine": refine})
    guider = comfy.samplers.CFGGuider(m)
    guider.set_conds(conditioning, conditioning)
    guider.set_cfg(1.0)  # cond only: sampling_function skips the uncond pass at cfg 1
    x_t = guider.sample(torch.zeros_like(latent), latent, sampler, schedule.inversion_sigmas(),
                        callback=callback, disable_pbar=True, seed=0)
    fmt = m.model.latent_format
    stacked = torch.stack([fmt.process_out(x.float().cpu()) for x in latents])
    steps = tuple(range(schedule.steps))
    hidden = {layer.key: torch.stack([recorder.stacked(i, layer.key) for i in steps])
              for layer in umap.bank_layers}
    return x_t, MemoryBank(schedule, stacked, hidden, steps, umap.bank_layers, fingerprint)
