"""DragonGuidedSampler: guided DDIM with energy gradients and memory-bank attention."""
from __future__ import annotations

import dataclasses
import logging

import comfy.model_management
import comfy.samplers
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ..dragon_ops import geometry, guidance, memory_bank, paper, presets, sampler, unet_map
from ..dragon_ops.edit import Edit, compose
from .common import (
    SAMPLING,
    Energy,
    InputError,
    MemoryBank,
    chain,
    check_banks,
    check_choice,
    check_finite,
    check_memory,
    patch_summary,
    search_words,
    unet_of,
)
from .grad_model import patched_clone

log = logging.getLogger("dragon_drag_edit")


class DragonGuidedSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonGuidedSampler",
            display_name="Dragon Guided Sampler",
            category=SAMPLING,
            **search_words("drag edit sampler", "DragonDiffusion", "DiffEditor"),
            description=(
                "Samples the edit: DDIM from the bank's inverted latent, steered at each guided step by the "
                "gradient of the connected energy terms (UNet decoder feature correspondence), while the decoder "
                "self-attention reads the memory bank so the rest of the image stays. Runs through ComfyUI's own "
                "CFG and model patches (LoRA, FreeU, IPAdapter, ControlNet in the main pass)."),
            inputs=[
                io.Model.Input("model", tooltip="The MODEL that made the bank."),
                io.Conditioning.Input("positive", tooltip="Prompt of the edited image (usually the source prompt)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt for CFG."),
                MemoryBank.Input("bank", tooltip="The source image's memory bank."),
                Energy.Input("energy", optional=True, tooltip="The edit (chain of DragonEnergy nodes). Leave "
                             "unconnected to reconstruct the image."),
                io.Int.Input("seed", default=42, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the DiffEditor preset's regional SDE noise."),
                io.Float.Input("cfg", default=0.0, min=0.0, max=30.0, step=0.1, tooltip="Classifier-free "
                               "guidance scale. 0 (default) = the paper's value for the connected edit: 5 when it "
                               "replaces an appearance, 4 for every other mode and for no edit; for a bank from "
                               "Dragon Sample to Memory Bank, the cfg it was generated with. Any other value is "
                               "used as it is. The node shows which it used."),
                io.Float.Input("energy_scale", default=1.0, min=0.0, max=100.0, step=0.05,
                               tooltip="Multiplies every term's guidance strength (1 = the paper's values)."),
                io.Combo.Input("preset", options=list(presets.PRESETS), default="DragonDiffusion",
                               tooltip="DragonDiffusion: guidance at every step until 'guidance_until'. DiffEditor: "
                               "sparse guidance, time travel at steps 22-28, regional SDE at steps 11-19. Fast: "
                               "DragonDiffusion guiding every other step (half the guidance work; see the README's "
                               "benchmark). Preview: 13 steps reading every 4th step of the same bank, 3 guided "
                               "(SD1.5: 0.395x a plain 50-step KSampler), to try arrows before the full edit; a bank "
                               "of fewer than 19 steps it samples whole."),
                io.Int.Input("start_step", default=0, min=0, max=999, tooltip="Start from the bank's inversion "
                             "latent at this step instead of x_T (0 = the paper)."),
                io.Int.Input("guidance_until", default=paper.GUIDANCE_UNTIL, min=0, max=1000,
                             tooltip="Guidance runs at steps start_step <= i < this (paper: 30 of 50)."),
                io.Int.Input("bank_start_step", default=paper.BANK_FROM, min=0, max=1000,
                             tooltip="Self-attention reads the memory bank from this step on (paper: 5)."),
                io.Float.Input("guidance_cap", default=0.0, min=0.0, max=10.0, step=0.01, tooltip="Limit "
                               "||gradient|| to this times ||predicted noise|| per sample (0 = off, the paper)."),
                io.Combo.Input("mask_grid", options=list(geometry.MASK_GRIDS), default="nearest", optional=True,
                               tooltip="How the edit's masks reach the latent grid. 'nearest' (the paper): nearest "
                               "downsampling. 'dilated' (this pack's variant, used on the project's Shapes32 "
                               "benchmark): a latent cell counts when any part of it is masked, which grows the "
                               "edit region by up to one latent cell (8 px in SD)."),
            ],
            outputs=[io.Latent.Output("latent_out", display_name="LATENT", tooltip="The edited latent.")],
        )

    @classmethod
    def execute(cls, *, model, positive, negative, bank, seed, cfg, energy_scale, preset, start_step, guidance_until,
                bank_start_step, guidance_cap, mask_grid="nearest", energy=None) -> io.NodeOutput:
        out, counts, used = edit_latent(model, positive, negative, bank, chain(energy), seed=seed, cfg=cfg,
                                        energy_scale=energy_scale, preset=preset, start_step=start_step,
                                        guidance_until=guidance_until, bank_start_step=bank_start_step,
                                        guidance_cap=guidance_cap, mask_grid=mask_grid)
        text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
        how = "set on the node" if cfg > 0 else \
            "the bank's generation cfg" if bank.generated else "the paper's value for this edit"
        log.info("DragonGuidedSampler: cfg %g (%s); %s", used, how, text)
        warnings = step_warnings(bank.schedule.steps, start_step, guidance_until, bank_start_step,
                                 guided=energy is not None and energy_scale > 0)
        for w in warnings:
            log.warning("DragonGuidedSampler: %s", w)
        lines = [f"cfg {used:g} ({how})", f"UNet passes: {text}", *(f"warning: {w}" for w in warnings)]
        return io.NodeOutput({"samples": out}, ui=ui.PreviewText("\n".join(lines)))


def step_warnings(steps: int, start_step: int, guidance_until: int, bank_start_step: int, guided: bool) -> list[str]:
    """Settings that run but silently drop part of the method (the step inputs are in the bank's steps)."""
    out = []
    if bank_start_step >= steps:
        out.append(f"bank_start_step {bank_start_step} is at or past the bank's {steps} steps: self-attention never "
                   f"reads the bank in a move, drag or landmarks edit (the paper: {paper.BANK_FROM} of "
                   f"{paper.STEPS}).")
    if guided and guidance_until <= start_step:
        out.append(f"guidance_until {guidance_until} is not past start_step {start_step}: no step is guided.")
    elif guided and guidance_until >= steps:
        out.append(f"guidance_until {guidance_until} is at or past the bank's {steps} steps: every step is guided "
                   f"(the paper: {paper.GUIDANCE_UNTIL} of {paper.STEPS}).")
    return out


def edit_latent(model, positive, negative, bank, edit: Edit, *, seed, cfg, energy_scale, preset, start_step,
                guidance_until, bank_start_step, guidance_cap, mask_grid="nearest",
                ablation: sampler.Ablation = sampler.Ablation()) -> tuple[torch.Tensor, dict[str, int], float]:
    """The sampler node's work: validate, compose the edit, sample. Returns the latent, the UNet pass counts and
    the CFG scale used (``cfg`` 0: ``default_cfg``). ``ablation`` switches parts of the method
    off (the benchmark's ablations); the default is the method."""
    run, cfg = guided_run(model, bank, edit, seed=seed, cfg=cfg, energy_scale=energy_scale, preset=preset,
                          start_step=start_step, guidance_until=guidance_until, bank_start_step=bank_start_step,
                          guidance_cap=guidance_cap, mask_grid=mask_grid, ablation=ablation)
    out, tally = sample_run(patched_clone(model, run.steps.energy), positive, negative, cfg, run)
    return out, tally.as_dict(), cfg


def guided_run(model, bank, edit: Edit, *, seed, cfg, energy_scale, preset, start_step, guidance_until,
               bank_start_step, guidance_cap, mask_grid="nearest",
               ablation: sampler.Ablation = sampler.Ablation()) -> tuple[sampler.GuidedRun, float]:
    """Every input check, then the run's settings and the CFG scale it uses (``edit_latent`` samples them)."""
    unet = _validate(model, bank, edit, cfg=cfg, energy_scale=energy_scale, guidance_cap=guidance_cap, preset=preset,
                     mask_grid=mask_grid, start_step=start_step)
    cfg = cfg if cfg > 0 else default_cfg(bank, edit)
    edit = Edit(tuple(dataclasses.replace(t, strength=t.strength * energy_scale) for t in edit.terms))
    plan = compose(edit, bank, mask_grid)
    steps = presets.StepPlan(presets.PRESETS[preset], bank.schedule.steps, start_step, guidance_until,
                             bank_start_step, energy=bool(edit.terms) and energy_scale > 0)
    taps = unet_map.map_unet(unet).tap_blocks
    taps = taps if ablation.taps is None else tuple(taps[k] for k in ablation.taps)
    run = sampler.GuidedRun(plan, bank.schedule, steps, taps, geometry.matching_shape(bank.latent_shape[-2:]),
                            guidance_cap, seed, bank_attention=ablation.bank_attention)
    if steps.energy:
        _check_guidance_memory(model, unet)
    return run, cfg


def default_cfg(bank, edit: Edit) -> float:
    """cfg 0 on the node: a generated bank's own CFG (the untouched image is then retraced exactly), else the
    paper's for the edit's modes."""
    return bank.cfg if bank.generated else paper.cfg_for([t.mode for t in edit.terms])


def _validate(model, bank, edit: Edit, *, cfg, energy_scale, guidance_cap, preset, mask_grid, start_step):
    """Every input check, before any compute; returns the MODEL's UNet."""
    check_banks(bank=bank)
    check_finite(cfg=cfg, energy_scale=energy_scale, guidance_cap=guidance_cap)
    unet = unet_of(model)
    check_choice("preset", preset, presets.PRESETS)
    check_choice("mask_grid", mask_grid, geometry.MASK_GRIDS)
    if cfg < 0:
        raise InputError(f"cfg: must be 0 (the paper's value) or positive (got {cfg}).")
    n = bank.schedule.steps
    if not 0 <= start_step < n:
        raise InputError(f"start_step: must be below the bank's {n} steps (got {start_step}).")
    fp = unet_map.fingerprint(unet, patch_summary(model))
    try:
        memory_bank.check_matches(bank, fp, what="bank")
        for term in edit.terms:
            memory_bank.check_same_source(bank, term.bank, what="energy")
    except memory_bank.BankError as e:
        raise InputError(str(e)) from e
    return unet


def _check_guidance_memory(model, unet) -> None:
    """Autograd hands out non-inference copies of the (truncated) UNet's weights per guided step."""
    need = sum(p.numel() * p.element_size() for p in unet.parameters())
    check_memory(need, torch.device(model.load_device), "guidance (a copy of the UNet's weights while the "
                 "gradient is taken)", "free memory (unload other models), or use an fp16 model.", name="model")


def sample_run(m, positive, negative, cfg: float, run: sampler.GuidedRun, init: torch.Tensor | None = None,
            sigmas: torch.Tensor | None = None, **instruments):
    """Sample ``run`` through ComfyUI's CFGGuider on the patched clone ``m``; returns (latent, Passes).

    ``init`` (LATENT space, at the start step's sigma) replaces the plan's start latent, ``sigmas`` the run's
    ladder (a prefix of it: fewer steps), and ``instruments`` (``noise_at``, ``trace``) go to
    ``sampler.guided_loop``: the conformance harness feeds and reads single steps so."""
    guider = comfy.samplers.CFGGuider(m)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    start = run.steps.start
    if init is None:
        init = run.plan.initial_latent(run.plan.bank.latent_at(start), start, run.seed)
    pbar = comfy.utils.ProgressBar(len(run.steps.indices))

    def progress(i, denoised, x, total):
        comfy.model_management.throw_exception_if_processing_interrupted()
        pbar.update_absolute(i + 1, total)

    tallies: list = []
    ksampler = comfy.samplers.KSAMPLER(sampler.sample_guided, extra_options={"run": run, "passes_out": tallies,
                                                                            **instruments})
    try:
        sigmas = run.schedule.sampling_sigmas(start, run.steps.stride) if sigmas is None else sigmas
        out = guider.sample(torch.zeros_like(init), init, ksampler, sigmas, callback=progress, disable_pbar=True,
                            seed=run.seed)
    except guidance.NoGraph as e:
        raise InputError("model: its UNet ran without autograd in the guidance forward (as ComfyUI's multi-GPU "
                         "sampling does), so the edit would come out unguided; run the edit on one device, or "
                         "remove the patch or wrapper that turns gradients off.") from e
    except sampler.Diverged as e:
        if e.by_model:
            raise InputError(f"model: its prediction became NaN/Inf at step {e.step}; the MODEL overflows on this "
                             "bank (an fp16 model on an extreme latent, or a broken patch or LoRA).") from e
        raise InputError(f"energy_scale: {e} of the guided edit; lower energy_scale or the terms' w_* weights, or "
                         "set guidance_cap (e.g. 0.05).") from e
    return out, tallies[0]
