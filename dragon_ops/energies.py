"""Energy functions of DragonDiffusion (algorithm spec, section 4): pure functions of feature maps.

Features are lists (one per decoder layer) of (C, h, w) tensors on the matching
grid; masks and index pairs come from ``geometry``. Energies have the paper's
shape E = w / (1 + 4 S) (alpha 1, beta 4), with S either the raw cosine
similarity or s01 = (1 + cos) / 2, exactly as each official term uses it.
Everything is computed in float32 (quirk Q21).

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


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over channels: a, b are (C, N) -> (N,)."""
    return F.cosine_similarity(a.float(), b.float(), dim=0, eps=EPS)


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
                mean_cur = fc[:, v].float().mean(1, keepdim=True)
                mean_ref = fr[:, r_m].float().mean(1, keepdim=True)
                total = total + inverse_energy(w.inpaint, s01(mean_cur, mean_ref)[0])
    return total
