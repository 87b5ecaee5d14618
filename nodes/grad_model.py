"""A MODEL ready for autograd: the one place that decides which patcher the guided sampler clones and patches.

The gradient of the guidance is taken through the UNet inside ComfyUI's ``torch.inference_mode()``. What makes
that safe lives in the guidance forward itself, whatever patcher runs it:

* weights: ``guidance.FreshWeights`` hands every weight-taking op a fresh copy of its weights while autograd
  records, so an inference-tensor Parameter, a module that upstream's dynamic VRAM left without a weight wrapper
  (modules of 16 KiB or less, ``comfy/model_patcher.py`` ``ModelPatcherDynamic.load``) and a view of a reused
  cast buffer (``comfy/ops.py`` ``cast_bias_weight``, ``comfy/model_management.py`` ``get_cast_buffer``) all give
  the same gradient as a plain weight. No weight wrapper is added and no Parameter is written.
* attention: ``features.autograd_attention`` routes the correspondence forwards through PyTorch SDPA, which has
  a backward pass; the CFG forwards keep ComfyUI's global kernel (sage, flash, ...).

Which patcher: for upstream's dynamic-VRAM MODELs, the static delegate that core itself uses when a patcher must
be non-dynamic (``ModelPatcherDynamic.get_non_dynamic_delegate``, which builds the static model once per MODEL and
caches it; ``CFGGuider.inner_set_conds`` calls it for hooked conds). ``clone(disable_dynamic=True)`` is never
called: it re-runs the checkpoint loader on every call. A dynamic MODEL whose loader cannot build a delegate
(no ``cached_patcher_init``) is cloned as it is; the two points above keep its gradient right. ComfyUI 0.3.75
has no dynamic VRAM: its MODEL is cloned as it is.
"""
from __future__ import annotations

import logging

import comfy.patcher_extension

from ..dragon_ops import attention, features, passes

log = logging.getLogger("dragon_drag_edit")


def static_base(model):
    """The patcher to clone for a guided run: the cached static delegate of a dynamic-VRAM MODEL, else the MODEL."""
    is_dynamic = getattr(model, "is_dynamic", None)
    delegate = getattr(model, "get_non_dynamic_delegate", None)
    if is_dynamic is None or delegate is None or not is_dynamic():
        return model
    try:
        return delegate()
    except RuntimeError as e:  # the loader left no way to rebuild a static model (no cached_patcher_init)
        log.info("DragonGuidedSampler: no static delegate for this dynamic MODEL (%s); guiding it as it is", e)
        return model


def patched_clone(model, guided: bool):
    """A clone of the user's MODEL (or of its static delegate, for a guided run) with the pack's hooks.
    The MODEL itself is never touched."""
    m = (static_base(model) if guided else model).clone()
    m.set_model_attn1_patch(attention.attn1_patch)
    m.set_model_output_block_patch(features.output_block_patch)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "dragon_drag_edit", passes.count_forwards)
    return m
