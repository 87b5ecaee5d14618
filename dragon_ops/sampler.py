"""The guided DDIM loop (spec sections 1.2 and 6) as a ComfyUI KSAMPLER function.

Per step i, for each repeat r (time travel repeats 3 times):

    eps   = CFG eps through ComfyUI (bank attention active from ``bank_from``)
    g     = masked energy gradient on guided steps (``guidance.energy_gradient``), optionally capped
    x0    = x - sigma_i (eps + g)                      # guidance enters only through x0_hat (Q7)
    x     = x0 + sqrt(...) eps + regional SDE noise     # DDIM direction uses the unguided eps
    if r < repeats - 1: re-noise x back to sigma_i with one deterministic DDIM inversion step (cond only)

It reports its UNet work (single-image forwards, truncated guidance forwards, backward passes) in
``GuidedRun.counts``, counted where the UNet is actually called.
"""
from __future__ import annotations

import dataclasses

import torch

from . import ddim, features, guidance
from .attention import STATE_KEY, BankState
from .edit import Plan
from .inversion import with_state
from .presets import StepPlan
from .schedule import DdimSchedule

RUN_KEY = "dragon_run"


@dataclasses.dataclass(frozen=True)
class Ablation:
    """Parts of the method that the benchmark switches off; the defaults are the method."""

    bank_attention: bool = True  # self-attention reads the memory bank
    taps: tuple[int, ...] | None = None  # which of the UNet's feature taps the energies use (None: all)


@dataclasses.dataclass
class GuidedRun:
    """Everything one guided sampling run needs, and what it measures."""

    plan: Plan
    schedule: DdimSchedule
    steps: StepPlan
    tap_blocks: tuple[int, ...]
    grid: tuple[int, int]
    cap: float = 0.0
    seed: int = 0
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"full_forwards": 0, "guidance_forwards": 0, "backwards": 0})
    model: object = None  # captured from the first CFG call (post-CFG hook)
    cond: list | None = None
    ref_cache: dict = dataclasses.field(default_factory=dict)
    grad_plan: Plan | None = None
    bank_attention: bool = True

    @property
    def layers(self) -> dict:
        return {layer.key: layer for layer in self.plan.bank.layers}


def post_cfg_capture(args: dict) -> torch.Tensor:
    """sampler_post_cfg_function: remember the model and the positive cond for the cond-only forwards."""
    run = args["model_options"].get("transformer_options", {}).get(RUN_KEY)
    if run is not None and run.model is None:
        run.model, run.cond = args["model"], args["cond"]
    return args["denoised"]


def forward_kind(transformer_options: dict) -> str:
    """"guidance_forwards" for a truncated feature-tap forward, else "full_forwards"."""
    return "guidance_forwards" if transformer_options.get(features.TAP_KEY) is not None else "full_forwards"


def count_forwards(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kw):
    """APPLY_MODEL wrapper: counts single-image UNet forwards, full or truncated."""
    transformer_options = transformer_options if transformer_options is not None else {}
    run = transformer_options.get(RUN_KEY)
    if run is not None:
        run.counts[forward_kind(transformer_options)] += int(x.shape[0])
    return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kw)


def _reference(run: GuidedRun, options: dict, i: int) -> dict[int, list[torch.Tensor]]:
    """Reference features of every bank at step i: depend only on the bank, so computed once per step."""
    out = {}
    for bank in run.plan.banks:
        key = (id(bank), i)
        if key not in run.ref_cache:
            x = run.model.process_latent_in(bank.latent_at(i).to(options["device"]))
            feats = features.tapped_features(run.model, run.cond, x, run.schedule.sigmas[i], options["model_options"],
                                             run.tap_blocks, run.grid, **{RUN_KEY: run, STATE_KEY: None})
            run.ref_cache = {k: v for k, v in run.ref_cache.items() if k[1] == i}
            run.ref_cache[key] = [f[0] for f in feats]
        out[id(bank)] = run.ref_cache[key]
    return out


def _guidance(run: GuidedRun, options: dict, i: int, x: torch.Tensor, sigma: float, eps: torch.Tensor):
    """The (capped) energy gradient g for step i, added to eps where x0_hat is formed."""
    ref = _reference(run, options, i)

    def feats(x_in: torch.Tensor) -> list[torch.Tensor]:
        return features.tapped_features(run.model, run.cond, x_in, sigma, options["model_options"], run.tap_blocks,
                                        run.grid, **{RUN_KEY: run, STATE_KEY: None})

    def energy(cur: list[torch.Tensor]):
        return _grad_plan(run).energy(cur, guidance.autograd_ready(ref))

    g, backwards = guidance.energy_gradient(feats, energy, x / (1 + sigma * sigma) ** 0.5, sigma,
                                            run.plan.edit_region)
    run.counts["backwards"] += backwards * int(x.shape[0])
    return guidance.cap_norm(g, eps, run.cap)


def _grad_plan(run: GuidedRun) -> Plan:
    """The plan with autograd-ready tensors; built once, inside ``inference_mode(False)``."""
    if run.grad_plan is None:
        run.grad_plan = guidance.autograd_ready(run.plan)
    return run.grad_plan


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
def sample_guided(model, x, sigmas, extra_args=None, callback=None, disable=None, run: GuidedRun | None = None):
    """KSAMPLER function. ``sigmas`` is ``schedule.sampling_sigmas(start)``; x starts at sigmas[0]."""
    extra_args = {} if extra_args is None else extra_args
    options = {"device": x.device, "model_options": extra_args.get("model_options", {})}
    noise_gen = torch.Generator(device="cpu").manual_seed(run.seed)
    start, sig = run.steps.start, [float(s) for s in sigmas]
    for k in range(len(sig) - 1):
        i, sigma, sigma_next = start + k, sig[k], sig[k + 1]
        repeats = run.steps.repeats(i)
        rule = run.plan.attention(i, run.steps.bank_from) if run.bank_attention else None
        state = BankState(reader=rule[1], layers=run.layers, mode=rule[0], step=i) if rule is not None else None
        for r in range(repeats):
            args = with_state(extra_args, state)
            args["model_options"]["transformer_options"][RUN_KEY] = run
            denoised = model(x, x.new_full((x.shape[0],), sigma), **args)
            eps = (x - denoised) / sigma
            g = 0.0
            if run.steps.guided(i):
                g = _guidance(run, options, i, x, sigma, eps)
            x0, x_next = ddim.step(x, sigma, sigma_next, eps, g)
            if run.steps.sde(i) and repeats == 1:
                s = _sde_scale(run, i, sigma, sigma_next, x)
                x_next = ddim.sde_step(x0, eps, sigma_next, s, torch.randn(x.shape, generator=noise_gen).to(x))
            if r < repeats - 1:  # time travel: deterministic DDIM re-noise back to sigma_i (no CFG, no bank)
                eps_back = features.cond_eps(run.model, run.cond, x_next, sigma_next, options["model_options"],
                                             **{RUN_KEY: run, STATE_KEY: None})
                x = ddim.step(x_next, sigma_next, sigma, eps_back)[1]
        if not torch.isfinite(x_next).all():
            raise Diverged(i, by_model=not bool(torch.isfinite(eps).all()))
        x = x_next
        if callback is not None:
            callback({"x": x, "i": k, "sigma": sigmas[k], "sigma_hat": sigmas[k], "denoised": x0})
    return x
