"""Energy functions of DragonDiffusion (algorithm spec, section 4): pure functions of feature maps.

Features are lists (one per decoder layer) of (C, h, w) tensors on the matching
grid; masks and index pairs come from ``geometry``. Energies have the paper's
shape E = w / (1 + 4 S) (alpha 1, beta 4), with S either the raw cosine
similarity or s01 = (1 + cos) / 2, exactly as each official term uses it.
Everything is computed in at least float32 (quirk Q21).

Raw-cosine terms are singular at mean cos = -0.25; the denominator is clamped at
``DENOM_MIN`` so that a pathological feature map gives a large finite energy, never
Inf or NaN. Terms over an empty region are an explicit no-op (zero), which also
covers quirk Q15 (an empty handle-minus-target set gave NaN in the official code).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

DENOM_MIN = 0.05
EPS = 1e-8


def wide(t: torch.Tensor) -> torch.Tensor:
    """At least float32 (half-precision features are widened; float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over channels: a, b are (C, N) -> (N,)."""
    return F.cosine_similarity(wide(a), wide(b), dim=0, eps=EPS)


def s01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(1 + cos) / 2, in [0, 1]."""
    return (1 + cos(a, b)) / 2


def inverse_energy(weight: float, similarity: torch.Tensor) -> torch.Tensor:
    """w / (1 + 4 S), the paper's energy shape, with a clamped denominator."""
    return weight / torch.clamp(1 + 4 * similarity, min=DENOM_MIN)


def flat(feature: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (C, h*w), raster order."""
    return feature.flatten(1)


@dataclasses.dataclass(frozen=True)
class MoveWeights:
    """Move/resize weights (spec defaults); ``layer`` is gamma, the per-layer weight of edit/content/contrast."""

    edit: float = 4.0
    content: float = 6.0
    contrast: float = 0.2
    inpaint: float = 0.8
    layer: float = 0.5


def move_edit(cur: list[torch.Tensor], ref: list[torch.Tensor], target_idx: torch.Tensor, source_idx: torch.Tensor,
              w: MoveWeights) -> torch.Tensor:
    """E_edit = sum_l gamma w_edit / (1 + 4 mean_{paired p, q} cos(F_cur[p], F_ref[q])), raw cosine (Q9)."""
    total = cur[0].new_zeros((), dtype=torch.float32)
    if target_idx.numel() == 0:
        return total
    for c, r in zip(cur, ref):
        sim = cos(flat(c)[:, target_idx], flat(r)[:, source_idx]).mean()
        total = total + inverse_energy(w.layer * w.edit, sim)
    return total


def move_content(cur: list[torch.Tensor], ref: list[torch.Tensor], untouched: torch.Tensor, vacated: torch.Tensor,
                 reference: torch.Tensor, w: MoveWeights) -> torch.Tensor:
    """E_content = consistency (raw cos, background) + contrast (s01, vacated) + inpaint (mean features, Q10).

    * consistency: sum_l gamma w_content / (1 + 4 mean_{untouched} cos(F_ref, F_cur));
    * contrast: sum_l gamma w_contrast mean_{vacated} s01(F_cur, F_ref), which rises with similarity and so
      pushes the vacated area away from the old object;
    * inpaint: sum_l 1.0 w_inpaint / (1 + 4 s01(mean_{vacated} F_cur, mean_{reference} F_ref)), no gamma.
    """
    total = cur[0].new_zeros((), dtype=torch.float32)
    u, v, r_m = (torch.nonzero(m.flatten(), as_tuple=True)[0] for m in (untouched, vacated, reference))
    for c, r in zip(cur, ref):
        fc, fr = flat(c), flat(r)
        if u.numel():
            total = total + inverse_energy(w.layer * w.content, cos(fr[:, u], fc[:, u]).mean())
        if v.numel():
            total = total + w.layer * w.contrast * s01(fc[:, v], fr[:, v]).mean()
            if r_m.numel():
                mean_cur = wide(fc[:, v]).mean(1, keepdim=True)
                mean_ref = wide(fr[:, r_m]).mean(1, keepdim=True)
                total = total + inverse_energy(w.inpaint, s01(mean_cur, mean_ref)[0])
    return total


@dataclasses.dataclass(frozen=True)
class DragWeights:
    """Point drag (spec 4.2; w_inpaint acts as the contrast weight) and landmarks (4.3: edit 12, nothing else)."""

    edit: float = 4.0
    content: float = 6.0
    inpaint: float = 0.2


@dataclasses.dataclass(frozen=True)
class PointPatches:
    """Per pair k: the 3x3 target patch, the 3x3 handle patch, and the handle cells outside the target patch."""

    target: torch.Tensor  # long (K, 9)
    handle: torch.Tensor  # long (K, 9)
    contrast: tuple[torch.Tensor, ...]  # K long tensors, possibly empty


def drag_edit(cur: list[torch.Tensor], ref: list[torch.Tensor], pp: PointPatches, w: DragWeights,
              contrast: bool = True) -> torch.Tensor:
    """E_edit = 1/(L K) sum_l sum_k [w_edit / (1 + 4 mean_9 s01(F_cur[P_t], F_ref[P_h]))
    + w_inpaint mean_{P_h minus P_t} s01(F_cur, F_ref)]; the second part is skipped when that set is empty (Q15)."""
    total = cur[0].new_zeros((), dtype=torch.float32)
    k = pp.target.shape[0]
    for c, r in zip(cur, ref):
        fc, fr = flat(c), flat(r)
        sim = s01(fc[:, pp.target.flatten()], fr[:, pp.handle.flatten()]).view(k, 9).mean(1)
        total = total + inverse_energy(w.edit, sim).sum()
        if contrast:
            for idx in pp.contrast:
                if idx.numel():
                    total = total + w.inpaint * s01(fc[:, idx], fr[:, idx]).mean()
    return total / (len(cur) * k)


def region_content(cur: list[torch.Tensor], ref: list[torch.Tensor], keep: torch.Tensor, weight: float,
                   reduce: str = "mean") -> torch.Tensor:
    """Consistency outside the edit: reduce_l weight / (1 + 4 mean_{keep} s01(F_ref, F_cur)).

    Drag averages over layers; appearance and paste sum (spec 4.2, 4.4, 4.5; quirk Q8)."""
    idx = torch.nonzero(keep.flatten(), as_tuple=True)[0]
    total = cur[0].new_zeros((), dtype=torch.float32)
    if idx.numel() == 0:
        return total
    for c, r in zip(cur, ref):
        total = total + inverse_energy(weight, s01(flat(r)[:, idx], flat(c)[:, idx]).mean())
    return total / len(cur) if reduce == "mean" else total


def appearance_edit(cur: list[torch.Tensor], ref: list[torch.Tensor], base_region: torch.Tensor,
                    ref_region: torch.Tensor, weight: float) -> torch.Tensor:
    """E_edit = sum_l w / (1 + 4 s01(mean_{M_b} F_cur, mean_{M_r} F_refimg)): mean features, no correspondence."""
    b = torch.nonzero(base_region.flatten(), as_tuple=True)[0]
    r_idx = torch.nonzero(ref_region.flatten(), as_tuple=True)[0]
    total = cur[0].new_zeros((), dtype=torch.float32)
    for c, r in zip(cur, ref):
        mc = wide(flat(c)[:, b]).mean(1, keepdim=True)
        mr = wide(flat(r)[:, r_idx]).mean(1, keepdim=True)
        total = total + inverse_energy(weight, s01(mc, mr)[0])
    return total


def paste_edit(cur: list[torch.Tensor], ref: list[torch.Tensor], target_idx: torch.Tensor, source_idx: torch.Tensor,
               weight: float) -> torch.Tensor:
    """E_edit = sum_l w / (1 + 4 mean_{paired p, q} s01(F_cur[p], F_refimg[q])): per pixel, s01.

    Object pasting's E_edit; appearance replacing uses it too when its pairs come from ``geometry.fit``."""
    total = cur[0].new_zeros((), dtype=torch.float32)
    for c, r in zip(cur, ref):
        total = total + inverse_energy(weight, s01(flat(c)[:, target_idx], flat(r)[:, source_idx]).mean())
    return total
