"""The object-pasting term (spec section 4.5)."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .paper import MODES
from .term_base import Attention
from .term_two_image import TwoImageBase


@dataclasses.dataclass(frozen=True)
class PasteTerm(TwoImageBase):
    """Object pasting (4.5): the reference object, moved by ``pairs``, blended in by paired-cell correspondence.

    Initial latent: the reference's inverted noise pasted at the target along ``latent`` (the paper), or, with
    ``reference_noise`` False, the base's own noise there moved to the reference object's mean (this pack's)."""

    w_edit: float
    w_content: float
    pairs: geometry.Move  # target cells -> source cells (matching grid)
    latent: geometry.Move  # the same move on the latent grid
    reference_noise: bool = True
    strength: float = MODES["paste"].strength
    mode = "paste"
    attention = Attention.of("paste")

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        donor = self.ref_bank.latent_at(step).to(base)
        if self.reference_noise:
            return geometry.paste(base, donor, self.latent)
        return geometry.shift_mean(base, donor, self.latent.target, self.latent.source, 1.0)

    def energies(self, cur, ref, untouched):
        e_edit = energies.paste_edit(cur, ref[id(self.ref_bank)], self.pairs.target_idx, self.pairs.source_idx,
                                     self.w_edit)
        return e_edit, self.content(cur, ref, untouched, self.w_content)
