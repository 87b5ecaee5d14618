"""A memory bank recorded along a generation: DDIM sampling from noise that keeps what inversion would keep.

An artist usually edits a picture the same workflow just made. Instead of inverting it (50 UNet passes, and an
inversion error), the generating DDIM run records, at every step i of the 50-step DDIM grid (spec section 1.1):

    the latent x_i                   -> bank latent L[N - i] (the noise level of step i, as an inverted bank's)
    LN1(h) of the decoder self-attention, per CFG half, from UNet(x_i, t_i)

How CFG enters: the generation runs ComfyUI's CFG at scale ``cfg`` (so the picture is the one a KSampler with
DDIM would make from the same noise), and each CFG half records its own self-attention inputs. The guided sampler,
run at the same CFG with the same prompts, then gives each half the tokens it saw in the generation, so sampling
back from x_T with an empty edit retraces the generation step for step (no inversion error: bit-faithful up to the
bank's storage precision). Where the spec's inverted bank has one cond-only half that both CFG halves read, a
generated bank has two (twice the bytes); the bank remembers its ``cfg``, which the sampler uses by default.

Two things differ from an inverted bank on purpose. The bank latent of step i is the latent the UNet saw at step
i, and its tokens come from that same forward, so the spec's one-step-cleaner offset (quirk Q5) does not arise.
And the reference features the energies compare against are still computed by the guided sampler's own
cond-only forward of the bank latent, exactly as for an inverted bank.
"""
from __future__ import annotations

import torch

from . import ddim
from .attention import BankState
from .inversion import recording_clone, with_state


@torch.no_grad()
def sample_ddim_recording(model, x, sigmas, extra_args=None, callback=None, disable=None, recorder=None,
                          latents_out=None):
    """KSAMPLER function: deterministic DDIM (eta 0) over ``sigmas``, the same step the guided sampler takes.

    Appends x at every step and at the end (sigma space) to ``latents_out``; ``recorder`` records the bank.
    Returns the VP latent at the last sigma, as ``sampler.sample_guided`` does, so an empty edit gives it back.
    """
    extra_args = {} if extra_args is None else extra_args
    sig = [float(s) for s in sigmas]
    for i in range(len(sig) - 1):
        latents_out.append(x.clone())
        recorder.step = i
        denoised = model(x, x.new_full((x.shape[0],), sig[i]), **with_state(extra_args, BankState(recorder=recorder)))
        eps = (x - denoised) / sig[i]
        x0, x = ddim.step(x, sig[i], sig[i + 1], eps)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})
    latents_out.append(x.clone())
    return x / (1.0 + sig[-1] ** 2) ** 0.5


def generate_to_bank(model_patcher, latent: torch.Tensor, noise: torch.Tensor, positive: list, negative: list,
                     cfg: float, schedule, dtype: torch.dtype, device: torch.device, fingerprint: str, seed: int,
                     callback=None):
    """Generate from ``noise`` (ComfyUI's noise for ``seed``) on a clone of ``model_patcher``, recording the bank.

    Returns (the generated LATENT, x_T in LATENT space, MemoryBank). The caller's MODEL is not touched. ``latent``
    is the EmptyLatentImage (or any LATENT, noised to the first step like KSampler at denoise 1).
    """
    import comfy.samplers

    from .memory_bank import MemoryBank

    m, umap, recorder = recording_clone(model_patcher, dtype, device)
    latents: list[torch.Tensor] = []
    sampler = comfy.samplers.KSAMPLER(sample_ddim_recording,
                                      extra_options={"recorder": recorder, "latents_out": latents})
    guider = comfy.samplers.CFGGuider(m)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sigmas = schedule.sampling_sigmas()
    # x_T through ComfyUI's own noise scaling (as KSampler starts), then the generation from x_T as a LATENT, the way
    # the guided sampler starts from the bank: both runs then begin from the same bits
    start = guider.sample(noise, latent, comfy.samplers.KSAMPLER(_start), sigmas, disable_pbar=True, seed=seed)
    image = guider.sample(torch.zeros_like(start), start, sampler, sigmas, callback=callback, disable_pbar=True,
                          seed=seed)
    fmt = m.model.latent_format
    stacked = torch.stack([fmt.process_out(x.float().cpu()) for x in reversed(latents[1:])] + [start.float().cpu()])
    steps = tuple(range(schedule.steps))
    hidden = {layer.key: torch.stack([recorder.stacked(i, layer.key) for i in steps]) for layer in umap.bank_layers}
    bank = MemoryBank(schedule, stacked, hidden, steps, umap.bank_layers, fingerprint, float(cfg))
    return image, start, bank


def _start(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """KSAMPLER function that returns its start x: the noised latent at sigmas[0], no UNet pass."""
    return x
