"""The edit value (the DRAGON_ENERGY type): an ordered tuple of energy terms, and ``compose``.

Nodes only build terms; ``compose`` is the one place where terms meet.

Composition rule (documented in the README):
* energies add: E_edit = sum_k s_k E_edit_k and E_content = sum_k s_k E_content_k, with s_k each term's
  strength (the spec's lambda times its 0.08 / 0.04 multiplier);
* the edit gradient applies inside the union R of the terms' edit regions, the content gradient outside it,
  so two edits never fight through each other's content term (each term's "untouched" background also
  excludes every other term's regions);
* initial-latent edits (pasted object noise) apply in chain order, a later term writing over an earlier one;
* the regional SDE mask is the union of the terms' SDE regions.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from . import energies, geometry
from .memory_bank import MemoryBank


@dataclasses.dataclass(frozen=True)
class MoveTerm:
    """Object move / resize (spec 4.1) on one bank."""

    bank: MemoryBank
    grid: geometry.Move  # on the matching grid (2x latent)
    latent: geometry.Move  # the same move on the latent grid, for the initial latent
    reference: torch.Tensor | None  # bool, matching grid: the region whose look fills the vacated area
    weights: energies.MoveWeights
    strength: float = 500 * 0.08  # lambda x c_move

    kind = "move"
    attention = "replace"

    def regions(self) -> torch.Tensor:
        """Matching-grid cells this term edits (source and target)."""
        return self.grid.source | self.grid.target

    def edit_region(self) -> torch.Tensor:
        return geometry.to_latent_grid(self.grid.target, 2)

    def sde_region(self) -> torch.Tensor:
        return geometry.to_latent_grid(self.regions(), 2)

    def initial_latent(self, base: torch.Tensor) -> torch.Tensor:
        return geometry.paste(base, base, self.latent)

    def energies(self, cur: list[torch.Tensor], ref: dict[int, list[torch.Tensor]], untouched: torch.Tensor):
        r = ref[id(self.bank)]
        reference = self.reference if self.reference is not None else untouched
        e_edit = energies.move_edit(cur, r, self.grid.target_idx, self.grid.source_idx, self.weights)
        e_con = energies.move_content(cur, r, untouched, self.grid.vacated, reference, self.weights)
        return e_edit, e_con


Term = MoveTerm


@dataclasses.dataclass(frozen=True)
class Edit:
    """DRAGON_ENERGY: an immutable, ordered tuple of terms."""

    terms: tuple[Term, ...] = ()

    def then(self, term: Term) -> Edit:
        return Edit(self.terms + (term,))


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the sampler needs from a composed edit."""

    edit: Edit
    banks: tuple[MemoryBank, ...]  # distinct banks whose reference features the energies read
    untouched: torch.Tensor  # bool, matching grid
    edit_region: torch.Tensor  # bool, latent grid (R)
    sde_region: torch.Tensor  # bool, latent grid
    attention: str  # bank attention rule: "replace", "concat" or "none"

    def initial_latent(self, base: torch.Tensor) -> torch.Tensor:
        for term in self.edit.terms:
            base = term.initial_latent(base)
        return base

    def energy(self, cur: list[torch.Tensor], ref: dict[int, list[torch.Tensor]]):
        """(sum_k s_k E_edit_k, sum_k s_k E_content_k) for the current features."""
        e_edit = e_con = cur[0].new_zeros((), dtype=torch.float32)
        for term in self.edit.terms:
            a, b = term.energies(cur, ref, self.untouched)
            e_edit, e_con = e_edit + term.strength * a, e_con + term.strength * b
        return e_edit, e_con


def _union(masks: list[torch.Tensor]) -> torch.Tensor:
    out = masks[0].clone()
    for m in masks[1:]:
        out |= m
    return out


def compose(edit: Edit, bank: MemoryBank) -> Plan:
    """Merge the terms of ``edit`` for sampling from ``bank``."""
    if not edit.terms:
        h, w = bank.latent_shape[-2:]
        empty = torch.zeros(h, w, dtype=torch.bool)
        return Plan(edit, (), torch.ones(2 * h, 2 * w, dtype=torch.bool), empty, empty, "replace")
    banks: dict[int, MemoryBank] = {}
    for term in edit.terms:
        banks.setdefault(id(term.bank), term.bank)
    order: Callable[[str], int] = {"replace": 0, "concat": 1}.get
    attention = max((t.attention for t in edit.terms), key=order)
    return Plan(edit, tuple(banks.values()), ~_union([t.regions() for t in edit.terms]),
                _union([t.edit_region() for t in edit.terms]), _union([t.sde_region() for t in edit.terms]),
                attention)
