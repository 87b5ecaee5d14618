"""The move / resize term (spec section 4.1)."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .memory_bank import MemoryBank
from .paper import MODES
from .term_base import Attention, TermBase


@dataclasses.dataclass(frozen=True)
class MoveTerm(TermBase):
    """Object move / resize (4.1): raw-cosine E_edit on paired cells; E_content with contrast and inpainting.

    Initial latent: the object's inverted noise pasted at its target. The paper leaves the vacated cells' inverted
    noise, which still encodes the object, to the inpainting term; with ``fresh_vacated`` they start from fresh
    noise with the statistics of the background around the object instead."""

    bank: MemoryBank
    grid: geometry.Move  # matching grid
    latent: geometry.Move  # latent grid: pastes the object's inverted noise at its target
    reference: torch.Tensor | None  # matching grid: the region whose look fills the vacated area
    weights: energies.MoveWeights
    strength: float = MODES["move"].strength  # lambda 500 x c_move 0.08
    fresh_vacated: bool = False  # True: the vacated cells start from fresh noise (this pack's variant)
    mode = "move"
    attention = Attention.of("move")

    def regions(self) -> torch.Tensor:
        return self.grid.source | self.grid.target

    def edit_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.grid.target, rule)

    def sde_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.regions(), rule)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        out = geometry.paste(base, base, self.latent)
        if not self.fresh_vacated:
            return out
        occupied = self.latent.source | self.latent.target
        return geometry.refill(out, self.latent.vacated, geometry.ring(occupied, 2), seed)

    def energies(self, cur, ref, untouched):
        r = ref[id(self.bank)]
        reference = self.reference if self.reference is not None else untouched
        return (energies.move_edit(cur, r, self.grid.target_idx, self.grid.source_idx, self.weights),
                energies.move_content(cur, r, untouched, self.grid.vacated, reference, self.weights))
