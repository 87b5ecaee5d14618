"""One guidance evaluation: energy gradients from feature correspondence (spec sections 3, 4 and 6.0).

g = dE_edit/dz (x) R + dE_content/dz (x) (1 - R), taken with respect to the VP latent z_t = x / sqrt(1 + sigma^2)
(the official code's gradient scale), with R the union of the terms' edit regions. The sampler adds g to the
predicted noise eps only where it forms x0_hat (quirk Q7, kept). An optional cap limits ||g|| to
``cap * ||eps_hat||`` per sample; the spec has none (cap = 0).

ComfyUI runs nodes under ``torch.inference_mode()``. Here autograd runs inside ``inference_mode(False)``; the
UNet's weights reach it through a weight wrapper (see ``grad_safe_weight``) that hands out a fresh,
non-inference tensor whenever grad is on, so no UNet Parameter is ever replaced or written.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from .memory_bank import MemoryBank


def grad_safe_weight(weight: torch.Tensor) -> torch.Tensor:
    """ComfyUI weight wrapper: a non-inference copy while autograd records, the weight itself otherwise."""
    if torch.is_grad_enabled() and weight.is_inference():
        return weight.clone()
    return weight


def autograd_ready(obj):
    """``obj`` with every inference tensor replaced by a normal clone (dataclasses, lists, tuples, dicts).

    Tensors made by nodes under ComfyUI's inference mode (masks, index pairs, reference features) cannot be
    saved for backward. Call this under ``torch.inference_mode(False)``. Memory banks are left as they are.
    """
    if isinstance(obj, torch.Tensor):
        return obj.clone() if obj.is_inference() else obj
    if isinstance(obj, MemoryBank):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: autograd_ready(getattr(obj, f.name))
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, (list, tuple)):
        return type(obj)(autograd_ready(v) for v in obj)
    if isinstance(obj, dict):
        return {k: autograd_ready(v) for k, v in obj.items()}
    return obj


def cap_norm(g: torch.Tensor, eps: torch.Tensor, cap: float) -> torch.Tensor:
    """Scale each sample of g so that ||g|| <= cap * ||eps||; cap <= 0 leaves g unchanged."""
    if cap <= 0:
        return g
    dims = tuple(range(1, g.ndim))
    gn = g.flatten(1).norm(dim=1).view(-1, *[1] * len(dims))
    en = eps.flatten(1).norm(dim=1).view(-1, *[1] * len(dims))
    return g * torch.clamp(cap * en / gn.clamp_min(1e-12), max=1.0)


def energy_gradient(features: Callable[[torch.Tensor], list[torch.Tensor]],
                    energy: Callable[[list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]],
                    z: torch.Tensor, sigma: float, region: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Masked energy gradient at VP latent z; returns (g, number of backward passes).

    ``features(x)`` runs the truncated UNet on sigma-space input x and returns (B, C, gh, gw) maps;
    ``energy(cur)`` maps the first sample's features to (E_edit, E_content).
    """
    with torch.inference_mode(False), torch.enable_grad():
        leaf = z.detach().clone().requires_grad_(True)
        cur = features(leaf * (1.0 + sigma * sigma) ** 0.5)
        e_edit, e_con = energy([f[0] for f in cur])
        grads, backwards = [], 0
        for e, retain in ((e_edit, True), (e_con, False)):
            if e.requires_grad:
                (g,) = torch.autograd.grad(e, leaf, retain_graph=retain and e_con.requires_grad)
                backwards += 1
            else:
                g = torch.zeros_like(leaf)
            grads.append(torch.nan_to_num(g.detach(), nan=0.0, posinf=0.0, neginf=0.0))
    r = region.to(device=z.device, dtype=z.dtype)
    return grads[0] * r + grads[1] * (1 - r), backwards
