"""The guided DDIM loop (spec sections 1.2 and 6) as a ComfyUI KSAMPLER function.

Per step i, for each repeat r (time travel repeats 3 times):

    eps   = CFG eps through ComfyUI (bank attention active from ``bank_from``)
    g     = masked energy gradient on guided steps (``guidance.energy_gradient``), optionally capped
    x0    = x - sigma_i (eps + g)                      # guidance enters only through x0_hat (Q7)
    x     = x0 + sqrt(...) eps + regional SDE noise     # DDIM direction uses the unguided eps
    if r < repeats - 1: re-noise x back to sigma_i with one deterministic DDIM inversion step (cond only)

Everything the loop needs comes in as arguments: the run's settings (``GuidedRun``, immutable), and from ComfyUI's
model wrapper the BaseModel and the positive cond that the cond-only forwards use. Its caches (the step's
reference features, the autograd-ready plan) are locals, and it returns its UNet work as a ``passes.Passes``,
counted where the UNet is actually called.
"""
from __future__ import annotations

import dataclasses

import torch

from . import ddim, features, guidance
from .attention import STATE_KEY, BankState
from .edit import Plan
from .inversion import with_state
from .passes import PASSES_KEY, Passes
from .presets import StepPlan
from .schedule import DdimSchedule


@dataclasses.dataclass(frozen=True)
class Ablation:
    """Parts of the method that the benchmark switches off; the defaults are the method."""

    bank_attention: bool = True  # self-attention reads the memory bank
    taps: tuple[int, ...] | None = None  # which of the UNet's feature taps the energies use (None: all)


@dataclasses.dataclass(frozen=True)
class GuidedRun:
    """The settings of one guided sampling run."""

    plan: Plan
    schedule: DdimSchedule
    steps: StepPlan
    tap_blocks: tuple[int, ...]
    grid: tuple[int, int]  # the matching grid
    cap: float = 0.0
    seed: int = 0
    bank_attention: bool = True

    @property
    def layers(self) -> dict:
        return {layer.key: layer for layer in self.plan.bank.layers}


def _sde_scale(run: GuidedRun, i: int, sigma: float, sigma_next: float, like: torch.Tensor) -> torch.Tensor:
    """Per-pixel noise std s (VP units) of the regional SDE: eta * DDPM posterior std (spec 6.1)."""
    std = ddim.posterior_std(sigma, sigma_next)
    region = run.plan.sde_region.to(device=like.device, dtype=like.dtype)
    eta_in, eta_out = run.plan.sde_eta or (run.steps.preset.sde_eta_in, run.steps.preset.sde_eta_out)
    eta = eta_in * region + eta_out * (1 - region)
    return (eta * std).expand_as(like)


class Diverged(FloatingPointError):
    """The latent became NaN/Inf at sampling step ``step``; ``by_model``: the model's own prediction already was."""

    def __init__(self, step: int, by_model: bool) -> None:
        super().__init__(f"the latent became NaN/Inf at step {step}")
        self.step, self.by_model = step, by_model


@torch.no_grad()
def sample_guided(model, x, sigmas, extra_args=None, callback=None, disable=None, run: GuidedRun | None = None,
                  passes_out: list | None = None, noise_at=None, trace: list | None = None):
    """KSAMPLER function. ``sigmas`` is ``schedule.sampling_sigmas(start, stride)``; x starts at sigmas[0].

    ``model`` is ComfyUI's wrapper: its ``inner_model`` is the CFGGuider, which holds the BaseModel and the
    processed conds while it samples (``comfy/samplers.py`` ``KSAMPLER.sample`` and ``CFGGuider.outer_sample`` /
    ``inner_sample``, alike in 0.3.75 and upstream @311c0140). Appends the run's ``Passes`` to ``passes_out``;
    ``noise_at`` and ``trace`` as in ``guided_loop``.

    Returns the VP latent z = x / sqrt(1 + sigma^2) at the last sigma: at ``sigma_final`` that is the clean latent
    as the official code takes it (z at alpha_bar(t=0), not x), so an inversion and a reconstruction meet.
    """
    guider = model.inner_model
    x, tally = guided_loop(model, guider.inner_model, guider.conds["positive"], x, sigmas, run,
                           {} if extra_args is None else extra_args, callback, noise_at, trace)
    if passes_out is not None:
        passes_out.append(tally)
    return x / (1.0 + float(sigmas[-1]) ** 2) ** 0.5


def guided_loop(denoise, base, cond: list, x: torch.Tensor, sigmas, run: GuidedRun, extra_args: dict,
                callback=None, noise_at=None, trace: list | None = None) -> tuple[torch.Tensor, Passes]:
    """The loop: ``denoise`` is ComfyUI's CFG denoiser, ``base`` its BaseModel and ``cond`` its positive cond,
    for the cond-only forwards (features, references, re-noise). Returns the last x and the UNet work done.

    ``noise_at(i)``, when given, is the regional SDE's standard normal draw at step i (VP units, the latent's shape)
    instead of the run's seeded draws. ``trace``, when a list, gets one dict per step and repeat with what the step
    computed (input, eps, energies, g, x0, output, noise, re-noise); the conformance harness compares them."""
    tally = Passes()
    model_options = extra_args.get("model_options", {})
    quiet = {PASSES_KEY: tally, STATE_KEY: None}  # estimator and re-noise forwards: counted, no bank attention
    with torch.inference_mode(False):
        grad_plan = guidance.autograd_ready(run.plan) if run.steps.energy else None
    layers = run.layers
    noise_gen = torch.Generator(device="cpu").manual_seed(run.seed)
    indices, sig = run.steps.indices, [float(s) for s in sigmas]

    def feats(x_in: torch.Tensor, sigma) -> list[torch.Tensor]:
        return features.tapped_features(base, cond, x_in, sigma, model_options, run.tap_blocks, run.grid, **quiet)

    def reference(i: int) -> dict[int, list[torch.Tensor]]:
        """Reference features of every bank at step i: they depend only on the bank, so once per step."""
        return {id(bank): [f[0] for f in feats(base.process_latent_in(bank.latent_at(i).to(x.device)),
                                               run.schedule.sigmas[i])]
                for bank in run.plan.banks}

    def guide(x_t: torch.Tensor, sigma: float, eps: torch.Tensor, ref: dict, seen: dict) -> torch.Tensor:
        """The (capped) energy gradient g at x_t, added to eps where x0_hat is formed; the energies go to seen."""
        def energy(cur):
            e = grad_plan.energy(cur, guidance.autograd_ready(ref))
            seen["energies"] = tuple(v.detach() for v in e)
            return e
        g, backwards = guidance.energy_gradient(lambda x_in: feats(x_in, sigma), energy,
                                                x_t / (1 + sigma * sigma) ** 0.5, sigma, run.plan.edit_region)
        tally.backwards += backwards * int(x_t.shape[0])
        return guidance.cap_norm(g, eps, run.cap)

    for k in range(len(sig) - 1):
        i, sigma, sigma_next = indices[k], sig[k], sig[k + 1]
        repeats = run.steps.repeats(i)
        read = run.plan.attention(i, run.steps.bank_from) if run.bank_attention else None
        state = BankState(read=read, layers=layers, step=i) if read is not None else None
        ref = None
        for r in range(repeats):
            denoised = denoise(x, x.new_full((x.shape[0],), sigma), **with_state(extra_args, state,
                                                                                 **{PASSES_KEY: tally}))
            eps = (x - denoised) / sigma
            g, seen = 0.0, {"i": i, "r": r, "x": x, "eps": eps}
            if run.steps.guided(i):
                ref = reference(i) if ref is None else ref
                g = guide(x, sigma, eps, ref, seen)
            x0, x_next = ddim.step(x, sigma, sigma_next, eps, g)
            if run.steps.sde(i) and repeats == 1:
                s = _sde_scale(run, i, sigma, sigma_next, x)
                draw = noise_at(i) if noise_at is not None else torch.randn(x.shape, generator=noise_gen)
                x_next = ddim.sde_step(x0, eps, sigma_next, s, draw.to(x))
                seen["noise"] = draw
            seen.update(g=g, x0=x0, x_next=x_next)
            if r < repeats - 1:  # time travel: deterministic DDIM re-noise back to sigma_i (no CFG, no bank)
                eps_back = features.cond_eps(base, cond, x_next, sigma_next, model_options, **quiet)
                x = ddim.step(x_next, sigma_next, sigma, eps_back)[1]
                seen["renoise_eps"] = eps_back
            if trace is not None:
                trace.append(seen)
        if not torch.isfinite(x_next).all():
            raise Diverged(i, by_model=not bool(torch.isfinite(eps).all()))
        x = x_next
        if callback is not None:
            callback({"x": x, "i": k, "sigma": sigmas[k], "sigma_hat": sigmas[k], "denoised": x0})
    return x, tally
