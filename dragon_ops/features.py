"""Correspondence features (the paper's "estimator", spec section 3): a truncated, cond-only UNet forward.

The forward goes through ComfyUI's ``calc_cond_batch``, so weight patches (LoRA) and
model-option patches (FreeU, IPAdapter) apply as in sampling; ControlNet is left out
(its inference-mode weights cannot take part in autograd, and the official estimator
is a vanilla UNet). An ``output_block_patch`` copies h at the tap blocks and stops the
forward right after the last one, by raising ``StopForward``.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

TAP_KEY = "dragon_feature_tap"


class StopForward(Exception):
    """Raised inside the UNet once every tapped feature is captured."""


@dataclasses.dataclass
class FeatureTap:
    blocks: tuple[int, ...]
    features: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)


def output_block_patch(h: torch.Tensor, hsp: torch.Tensor, transformer_options: dict):
    """ComfyUI output_block_patch: records h (the output of block id-1) at the tap ids, then stops."""
    tap = transformer_options.get(TAP_KEY)
    block = transformer_options.get("block")
    if tap is None or block is None or block[0] != "output":
        return h, hsp
    if block[1] in tap.blocks:
        tap.features[block[1]] = h
        if len(tap.features) == len(tap.blocks):
            raise StopForward
    return h, hsp


def autograd_attention(func, *args, **kwargs):
    """``optimized_attention_override`` of the correspondence forwards: ComfyUI's PyTorch SDPA kernel, which has a
    backward pass, whatever kernel ComfyUI chose globally (sage, flash and upstream's int8 kernels have none).
    ``func`` is the global kernel, left unused; the kwargs carry ComfyUI's re-entry flag, so no override recurses."""
    import comfy.ldm.modules.attention

    return comfy.ldm.modules.attention.attention_pytorch(*args, **kwargs)


def without_control(cond: list[dict]) -> list[dict]:
    return [{k: v for k, v in c.items() if k != "control"} for c in cond]


def options_with(model_options: dict, **entries) -> dict:
    """A copy of model_options whose transformer_options carry ``entries``."""
    out = dict(model_options)
    out["transformer_options"] = {**model_options.get("transformer_options", {}), **entries}
    return out


def tapped_features(model, cond: list[dict], x: torch.Tensor, sigma: float, model_options: dict,
                    blocks: tuple[int, ...], grid: tuple[int, int], **entries) -> list[torch.Tensor]:
    """Decoder features at ``blocks`` for sigma-space input x, each nearest-resized to ``grid``: (B, C, gh, gw).
    Current and reference features both go through ``autograd_attention``, so they are computed alike."""
    import comfy.samplers

    tap = FeatureTap(tuple(blocks))
    options = options_with(model_options, **{TAP_KEY: tap, "optimized_attention_override": autograd_attention},
                           **entries)
    try:
        comfy.samplers.calc_cond_batch(model, [without_control(cond)], x, x.new_full((x.shape[0],), sigma), options)
    except StopForward:
        _after_early_stop()
    if len(tap.features) != len(tap.blocks):
        raise RuntimeError(f"the UNet forward never reached decoder blocks {blocks}")
    b = x.shape[0]
    return [F.interpolate(tap.features[k][:b].float(), size=grid, mode="nearest") for k in blocks]


def _after_early_stop() -> None:
    """Upstream ComfyUI's dynamic VRAM keeps per-forward weight-prefetch queues, which its executor clears after
    each node; clear them after an aborted forward too. The module does not exist in 0.3.75 (untested here)."""
    try:
        import comfy.memory_management
        import comfy.model_prefetch
    except ImportError:
        return
    if getattr(comfy.memory_management, "aimdo_enabled", False):
        comfy.model_prefetch.cleanup_prefetch_queues()


def cond_eps(model, cond: list[dict], x: torch.Tensor, sigma: float, model_options: dict, **entries) -> torch.Tensor:
    """eps from a full cond-only forward (no CFG) at sigma-space input x."""
    import comfy.samplers

    options = options_with(model_options, **entries)
    (den,) = comfy.samplers.calc_cond_batch(model, [cond], x, x.new_full((x.shape[0],), sigma), options)
    return (x - den) / sigma
