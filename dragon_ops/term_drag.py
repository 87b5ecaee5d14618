"""The content-dragging term (spec section 4.2), and the 3x3 point patches that dragging and landmarks compare."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .memory_bank import MemoryBank
from .paper import MODES
from .term_base import Attention, TermBase

LatentPairs = tuple[tuple[int, int, int, int], ...]  # (hy, hx, ty, tx) on the latent grid


@dataclasses.dataclass(frozen=True)
class DragTerm(TermBase):
    """Content dragging (4.2): 3x3-patch E_edit with a contrast part, E_content outside the editable region,
    gradient split by it, initial latent with the handle patches copied to the targets."""

    bank: MemoryBank
    editable: torch.Tensor  # matching grid
    patches: energies.PointPatches
    latent_pairs: LatentPairs
    weights: energies.DragWeights
    strength: float = MODES["drag"].strength
    mode = "drag"
    attention = Attention.of("drag")

    def regions(self) -> torch.Tensor:
        return self.editable

    def edit_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.editable, rule)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        return geometry.copy_patches(base, list(self.latent_pairs))

    def energies(self, cur, ref, untouched):
        r = ref[id(self.bank)]
        e_edit = energies.drag_edit(cur, r, self.patches, self.weights, contrast=True)
        return e_edit, energies.region_content(cur, r, ~self.editable & untouched, self.weights.content)


def point_patches(grid_hw: tuple[int, int], pairs_px, cell_px: float) -> tuple[energies.PointPatches, LatentPairs]:
    """The 3x3 patches of (hx, hy, tx, ty) image-pixel pairs on the matching grid ``grid_hw``, and their centres on
    the latent grid; ``cell_px`` = image pixels per matching cell."""
    gh, gw = grid_hw
    targets, handles, contrast, latent_pairs = [], [], [], []
    for hx, hy, tx, ty in pairs_px:
        h_c = geometry.patch_center(hy / cell_px, hx / cell_px, (gh, gw))
        t_c = geometry.patch_center(ty / cell_px, tx / cell_px, (gh, gw))
        h_idx, t_idx = geometry.patch_indices(*h_c, gw), geometry.patch_indices(*t_c, gw)
        handles.append(h_idx)
        targets.append(t_idx)
        contrast.append(h_idx[~torch.isin(h_idx, t_idx)])
        lat = [geometry.patch_center(*geometry.latent_of(c), geometry.latent_of((gh, gw))) for c in (h_c, t_c)]
        latent_pairs.append((*lat[0], *lat[1]))
    return energies.PointPatches(torch.stack(targets), torch.stack(handles), tuple(contrast)), tuple(latent_pairs)


def drag_term(bank: MemoryBank, editable: torch.Tensor, pairs_px, cell_px: float,
              weights: energies.DragWeights) -> DragTerm:
    """A DragTerm from (hx, hy, tx, ty) image-pixel pairs; ``cell_px`` = image pixels per matching cell."""
    patches, latent_pairs = point_patches(tuple(editable.shape), pairs_px, cell_px)
    return DragTerm(bank, editable, patches, latent_pairs, weights)
