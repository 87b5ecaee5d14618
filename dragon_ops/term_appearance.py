"""The appearance-replacing term (spec section 4.4)."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .paper import MODES
from .term_base import Attention
from .term_two_image import TwoImageBase


@dataclasses.dataclass(frozen=True)
class AppearanceTerm(TwoImageBase):
    """Appearance replacing (4.4): the base object keeps its outline and takes the reference object's look.

    E_edit compares mean features (the paper), or paired cells when ``pairs`` stretches the reference object onto
    the base object (this pack's variant). Initial latent: the base's noise inside the target moved by ``shift``'s
    amount towards the reference object's mean noise (0: unchanged, the paper)."""

    w_edit: float
    w_content: float
    shift: tuple[torch.Tensor, torch.Tensor, float]  # latent-grid target and source masks; amount
    pairs: geometry.Move | None = None  # target cells -> source cells (matching grid)
    strength: float = MODES["appearance"].strength
    mode = "appearance"
    attention = Attention.of("appearance")

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        return geometry.shift_mean(base, self.ref_bank.latent_at(step).to(base), *self.shift)

    def energies(self, cur, ref, untouched):
        other = ref[id(self.ref_bank)]
        if self.pairs is None:
            e_edit = energies.appearance_edit(cur, other, self.target, self.source, self.w_edit)
        else:
            e_edit = energies.paste_edit(cur, other, self.pairs.target_idx, self.pairs.source_idx, self.w_edit)
        return e_edit, self.content(cur, ref, untouched, self.w_content)
