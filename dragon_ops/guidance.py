"""One guidance evaluation: energy gradients from feature correspondence (spec sections 3, 4 and 6.0).

g = dE_edit/dz (x) R + dE_content/dz (x) (1 - R), taken with respect to the VP latent z_t = x / sqrt(1 + sigma^2)
(the official code's gradient scale), with R the union of the terms' edit regions. The sampler adds g to the
predicted noise eps only where it forms x0_hat (quirk Q7, kept). An optional cap limits ||g|| to
``cap * ||eps_hat||`` per sample; the spec has none (cap = 0).

ComfyUI runs nodes under ``torch.inference_mode()``. Here autograd runs inside ``inference_mode(False)``, and the
truncated forward runs under ``FreshWeights``: every tensor that enters a weight-taking op beside a tensor
computed from the gradient's leaf is handed to the op as a fresh copy. Autograd then saves only tensors it owns,
whatever the model patcher hands the module: an inference-tensor Parameter (ComfyUI loads weights under inference
mode, and upstream's dynamic VRAM sets no weight wrapper on modules of 16 KiB or less), or a view of a cast buffer
that the next module overwrites (upstream's low-VRAM casting). No UNet Parameter is ever replaced or written.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .memory_bank import MemoryBank

# Ops whose tensor arguments (weights, biases) autograd saves for the input's gradient.
WEIGHT_OPS = frozenset(getattr(F, n) for n in (
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "group_norm", "layer_norm", "rms_norm", "batch_norm", "instance_norm", "embedding") if hasattr(F, n))


def _map_tensors(obj, fn):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if type(obj) in (list, tuple):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif type(obj) in (list, tuple):
        for v in obj:
            yield from _tensors(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)


_INPLACE_DUNDERS = frozenset(f"__i{op}__" for op in (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift"))


def _writes_input(func, kwargs: dict) -> bool:
    """In-place ops (``add_``, ``__iadd__``, ``__setitem__``) and ``out=`` calls write into an argument."""
    name = getattr(func, "__name__", "")
    return ("out" in kwargs or name in _INPLACE_DUNDERS or name == "__setitem__"
            or (name.endswith("_") and not name.endswith("__")))


_ON_PATH = "_dragon_on_path"  # marks tensors computed from the gradient's leaf


def _on_path(t: torch.Tensor) -> bool:
    return getattr(t, _ON_PATH, False)


class FreshWeights(TorchFunctionMode):
    """The truncated forward as autograd sees it: only tensors computed from ``leaf`` are recorded as they are.

    Every op that has such an input gets its other tensors as fresh copies without history: all of them for a
    weight-taking op (``WEIGHT_OPS``); inference tensors and views for any other out-of-place op. A copy has the
    same values, so results and gradients are unchanged, and what autograd saves is never an inference tensor, a
    buffer that the next module overwrites, or a weight cast that drags the weights' own history along. In-place
    ops pass through. ``copies`` counts the tensors copied (for tests).
    """

    def __init__(self, leaf: torch.Tensor) -> None:
        super().__init__()
        setattr(leaf, _ON_PATH, True)
        self.copies = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not (torch.is_grad_enabled() and any(_on_path(t) for t in _tensors((args, kwargs)))):
            return func(*args, **kwargs)
        weight_op = func in WEIGHT_OPS
        if weight_op or not _writes_input(func, kwargs):
            def fresh(t: torch.Tensor) -> torch.Tensor:
                if _on_path(t) or not (weight_op or t.is_inference() or t._is_view()):
                    return t
                self.copies += 1
                with torch.no_grad():
                    return t.clone()

            args, kwargs = _map_tensors((args, kwargs), fresh)
        out = func(*args, **kwargs)
        for t in _tensors(out):
            setattr(t, _ON_PATH, True)
        return out


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


class NoGraph(RuntimeError):
    """The truncated forward recorded no autograd graph (it ran under ``torch.no_grad``, as upstream ComfyUI's
    multi-GPU path runs the UNet): every energy gradient would be zero and the edit would silently come out
    unguided, so guidance stops instead."""


def energy_gradient(features: Callable[[torch.Tensor], list[torch.Tensor]],
                    energy: Callable[[list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]],
                    z: torch.Tensor, sigma: float, region: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Masked energy gradient at VP latent z; returns (g, number of backward passes).

    ``features(x)`` runs the truncated UNet on sigma-space input x and returns (B, C, gh, gw) maps;
    ``energy(cur)`` maps the first sample's features to (E_edit, E_content).
    """
    with torch.inference_mode(False), torch.enable_grad():
        leaf = z.detach().clone().requires_grad_(True)
        with FreshWeights(leaf):
            cur = features(leaf * (1.0 + sigma * sigma) ** 0.5)
        if not any(f.requires_grad for f in cur):
            raise NoGraph("the UNet forward of the guidance recorded no autograd graph")
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
