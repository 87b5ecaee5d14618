"""Mask geometry: masks on grids, moving and scaling an object, and the pixel pairs the energies compare.

Grids are (height, width) cell arrays. The latent grid has one cell per latent
pixel; the matching grid (the spec's G4) has ``MATCH_PER_LATENT`` (2) cells per
latent pixel a side.

A move takes the object mask S, a displacement d and a scale s. Target cell p is
filled when its inverse image q = c + (p + 1/2 - c - d) / s lands inside S, where
c is S's centroid: the object is scaled about its own centre (the official code
scales about the image centre, quirk Q12, which we deliberately do not copy).
Cells outside the grid are dropped, never wrapped around (official ``torch.roll``
wraps). Each target cell p is paired with its source cell q: that pairing is the
correspondence E_edit compares, and the same rule pastes the initial latent, so
mask offset and latent offset always agree (quirk Q11).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from .paper import MATCH_PER_LATENT


def resize_mask(mask: torch.Tensor, size: tuple[int, int], threshold: float = 0.5) -> torch.Tensor:
    """A (H, W) mask at any resolution -> bool (h, w) on a grid, by nearest sampling and a threshold."""
    m = mask.float()[None, None]
    return F.interpolate(m, size=size, mode="nearest")[0, 0] > threshold


MASK_GRIDS = ("nearest", "dilated")


def matching_shape(latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The matching grid's (height, width) for a latent of (h, w)."""
    return latent_hw[0] * MATCH_PER_LATENT, latent_hw[1] * MATCH_PER_LATENT


def latent_of(matching: tuple[int, int]) -> tuple[int, int]:
    """A matching grid's (height, width), or a cell's (y, x) on it -> the latent grid's."""
    return matching[0] // MATCH_PER_LATENT, matching[1] // MATCH_PER_LATENT


def to_latent_grid(grid_mask: torch.Tensor, rule: str = "nearest") -> torch.Tensor:
    """Bool mask on the matching grid -> bool mask on the latent grid.

    "nearest": the spec's nearest downsampling to the latent grid (sections 4.1-4.5); "dilated" (this pack's
    variant): a latent cell counts when any of its finer cells does, so the mask grows by up to one latent cell.
    """
    if rule == "nearest":
        return grid_mask[::MATCH_PER_LATENT, ::MATCH_PER_LATENT].clone()
    if rule == "dilated":
        return F.max_pool2d(grid_mask.float()[None, None], MATCH_PER_LATENT)[0, 0] > 0
    raise ValueError(f"unknown mask grid rule {rule!r}; one of {', '.join(MASK_GRIDS)}")


def isolate(latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A copy of ``latent`` (..., h, w) with every cell the (H, W) pixel mask does not touch set to zero.

    A cell is kept when any masked pixel falls in it. Inverting the isolated latent gives a memory bank
    that depends on nothing outside the mask (this pack's addition, for the reference image of paste and
    appearance: the spec's reference bank also carries the reference's background).
    """
    keep = F.adaptive_max_pool2d((mask.float() > 0.5).float()[None, None], latent.shape[-2:])[0, 0]
    return latent * keep.to(latent)


def centroid(mask: torch.Tensor) -> tuple[float, float]:
    """(y, x) centroid of a bool mask in cell units, cell centres at +0.5."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(ys) == 0:
        raise ValueError("empty mask has no centroid")
    return float(ys.float().mean()) + 0.5, float(xs.float().mean()) + 0.5


@dataclasses.dataclass(frozen=True)
class Move:
    """An object move on one grid: source and target masks, and target->source cell pairs (raster order)."""

    source: torch.Tensor  # bool (h, w), S
    target: torch.Tensor  # bool (h, w), T
    target_idx: torch.Tensor  # long (P,), flat indices of T's cells
    source_idx: torch.Tensor  # long (P,), flat index of each one's source cell

    @property
    def vacated(self) -> torch.Tensor:
        """S and not T: where the object was and no longer is (M_non)."""
        return self.source & ~self.target

    @property
    def untouched(self) -> torch.Tensor:
        """Neither S nor T (M_other)."""
        return ~(self.source | self.target)


def move(source: torch.Tensor, dy: float, dx: float, scale: float = 1.0,
         center: tuple[float, float] | None = None) -> Move:
    """Move bool mask ``source`` by (dy, dx) cells, scaled by ``scale`` about ``center`` (default: its centroid)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    h, w = source.shape
    cy, cx = center if center is not None else centroid(source)
    py = torch.arange(h, dtype=torch.float64)[:, None] + 0.5
    px = torch.arange(w, dtype=torch.float64)[None, :] + 0.5
    qy = torch.floor(cy + (py - cy - dy) / scale).long().expand(h, w)
    qx = torch.floor(cx + (px - cx - dx) / scale).long().expand(h, w)
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    q_flat = (qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)).flatten()
    target = (inside.flatten() & source.flatten()[q_flat]).view(h, w)
    target_idx = torch.nonzero(target.flatten(), as_tuple=True)[0]
    return Move(source, target, target_idx, q_flat[target_idx])


def fit(source: torch.Tensor, target: torch.Tensor) -> Move:
    """Pair every cell of mask ``target`` with a cell of mask ``source`` of another shape (appearance replacing).

    The target's bounding box is stretched onto the source's; a target cell whose stretched position misses
    the source mask takes the nearest source cell. Every pair therefore lands on the source object, whatever the
    two shapes are, so pasting along it fills exactly the target's outline with the source's content.
    """
    if not bool(source.any()) or not bool(target.any()):
        raise ValueError("fit needs two non-empty masks")
    h, w = source.shape
    s_cells = torch.nonzero(source).double()
    t_cells = torch.nonzero(target).double()
    s_lo, s_hi = s_cells.min(0).values, s_cells.max(0).values + 1
    t_lo, t_hi = t_cells.min(0).values, t_cells.max(0).values + 1
    q = s_lo + (t_cells + 0.5 - t_lo) * (s_hi - s_lo) / (t_hi - t_lo)
    qi = torch.minimum(q.floor().long(), torch.tensor([h - 1, w - 1]))
    q_flat = qi[:, 0] * w + qi[:, 1]
    miss = ~source.flatten()[q_flat]
    if bool(miss.any()):
        near = torch.cdist(q[miss], s_cells + 0.5).argmin(1)
        q_flat[miss] = (s_cells[near, 0] * w + s_cells[near, 1]).long()
    target_idx = torch.nonzero(target.flatten(), as_tuple=True)[0]
    return Move(source, target, target_idx, q_flat)


def paste(base: torch.Tensor, donor: torch.Tensor, mv: Move) -> torch.Tensor:
    """Copy ``donor``'s source cells onto ``base`` at the move's target cells. Tensors are (..., h, w); no in-place."""
    flat_b = base.flatten(-2).clone()
    flat_d = donor.flatten(-2)
    flat_b[..., mv.target_idx] = flat_d[..., mv.source_idx]
    return flat_b.view(base.shape)


def shift_mean(base: torch.Tensor, donor: torch.Tensor, target: torch.Tensor, source: torch.Tensor,
               amount: float = 1.0) -> torch.Tensor:
    """Move ``base``'s per-channel mean over the ``target`` cells toward ``donor``'s mean over the ``source`` cells.

    The initial latent of appearance replacing and (by default) of pasting, this pack's addition: the base's
    inverted noise keeps its own deviations (for appearance they carry the object's outline) and takes the
    reference object's mean, which carries its colour. The paper starts appearance from the base's noise as it
    is, relying on an image-prompt adapter for the look, and pastes the reference's inverted noise, which on the
    project's model leaves artefacts across the whole picture. Tensors are (..., h, w), masks bool (h, w);
    ``amount`` 0 leaves ``base`` as it is, 1 matches the means. Not in place.
    """
    offset = donor[..., source].mean(-1, keepdim=True) - base[..., target].mean(-1, keepdim=True)
    out = base.clone()
    out[..., target] = base[..., target] + amount * offset
    return out


def ring(mask: torch.Tensor, width: int) -> torch.Tensor:
    """The cells within ``width`` cells (square neighbourhood) of bool mask ``mask``, outside it."""
    grown = F.max_pool2d(mask.float()[None, None], 2 * width + 1, 1, width)[0, 0] > 0
    return grown & ~mask


def refill(base: torch.Tensor, region: torch.Tensor, around: torch.Tensor, seed: int) -> torch.Tensor:
    """``base`` with the ``region`` cells replaced by fresh Gaussian noise, seeded, with the per-channel mean and
    standard deviation of the ``around`` cells: start noise that no longer encodes what was there (a moved
    object's vacated area). Falls back to the whole grid's statistics when ``around`` is empty. Not in place."""
    if not bool(region.any()):
        return base
    ref = base[..., around if bool(around.any()) else torch.ones_like(around)]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    fresh = torch.randn(base[..., region].shape, generator=gen, dtype=torch.float32).to(base)
    out = base.clone()
    out[..., region] = ref.mean(-1, keepdim=True) + fresh * ref.std(-1, keepdim=True)
    return out


def patch_center(y: float, x: float, shape: tuple[int, int]) -> tuple[int, int]:
    """Grid cell of a point given in cell units, kept one cell inside the border so its 3x3 patch fits.

    Each axis is clipped with its own bound (the official drag code clipped x with the height bound, Q13).
    """
    h, w = shape
    return min(max(int(y), 1), h - 2), min(max(int(x), 1), w - 2)


def patch_indices(cy: int, cx: int, width: int) -> torch.Tensor:
    """Flat indices of the 3x3 patch around (cy, cx), raster order."""
    ys = torch.arange(cy - 1, cy + 2)[:, None]
    xs = torch.arange(cx - 1, cx + 2)[None, :]
    return (ys * width + xs).flatten()


def copy_patches(base: torch.Tensor, pairs: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """For each (hy, hx, ty, tx) in order, copy base's 3x3 patch at the handle onto the target (not in place, Q14)."""
    out = base.clone()
    for hy, hx, ty, tx in pairs:
        out[..., ty - 1:ty + 2, tx - 1:tx + 2] = out[..., hy - 1:hy + 2, hx - 1:hx + 2].clone()
    return out


def token_mask(mask: torch.Tensor, tokens_hw: tuple[int, int]) -> torch.Tensor:
    """A bool latent-grid mask resampled (nearest) to an attention layer's token grid, flattened."""
    return resize_mask(mask.float(), tokens_hw).flatten()
