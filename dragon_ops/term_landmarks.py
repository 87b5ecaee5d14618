"""The face-landmark term (spec section 4.3): dragging's patches without contrast, over the whole image."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .memory_bank import MemoryBank
from .paper import MODES
from .term_base import Attention, TermBase
from .term_drag import point_patches


@dataclasses.dataclass(frozen=True)
class LandmarksTerm(TermBase):
    """Landmark k moves to landmark k: 3x3-patch E_edit without contrast, no E_content (one backward pass per
    guided step), gradient everywhere, no initial-latent change, global SDE (eta 0.2 inside and out)."""

    bank: MemoryBank
    grid: tuple[int, int]  # the matching grid's (height, width)
    patches: energies.PointPatches
    weights: energies.DragWeights
    strength: float = MODES["landmarks"].strength
    mode = "landmarks"
    attention = Attention.of("landmarks")
    sde_eta = MODES["landmarks"].sde_eta
    has_content = False

    def regions(self) -> torch.Tensor:
        return torch.zeros(self.grid, dtype=torch.bool)

    def edit_region(self, rule: str) -> torch.Tensor:
        return torch.ones(geometry.latent_of(self.grid), dtype=torch.bool)

    def energies(self, cur, ref, untouched):
        e_edit = energies.drag_edit(cur, ref[id(self.bank)], self.patches, self.weights, contrast=False)
        return e_edit, e_edit.new_zeros(())


def landmarks_term(bank: MemoryBank, pairs_px, cell_px: float, w_edit: float) -> LandmarksTerm:
    """A LandmarksTerm from (sx, sy, tx, ty) image-pixel pairs; ``cell_px`` = image pixels per matching cell."""
    grid = geometry.matching_shape(bank.latent_shape[-2:])
    patches, _ = point_patches(grid, pairs_px, cell_px)
    return LandmarksTerm(bank, grid, patches, energies.DragWeights(w_edit, 0.0, 0.0))
