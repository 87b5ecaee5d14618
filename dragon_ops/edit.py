"""The edit value (the DRAGON_ENERGY type): an ordered tuple of energy terms, and ``compose``.

Nodes only build terms (``term_<mode>.py``); ``compose`` is the one place where terms meet.

Composition rule (documented in the README):
* energies add: E_edit = sum_k s_k E_edit_k and E_content = sum_k s_k E_content_k, with s_k each term's
  strength (the spec's lambda times its 0.08 / 0.04 multiplier, times the sampler's energy_scale);
* the edit gradient applies inside the union R of the terms' edit regions, the content gradient outside it,
  and every term's "keep" region excludes all terms' edited regions, so edits never pull against each other;
* initial-latent edits apply in chain order, a later term writing over an earlier one;
* the regional SDE mask is the union of the terms' SDE regions; a term's own SDE strengths (landmarks: 0.2
  inside and out) override the preset's, the largest winning;
* bank attention: at each step the rules whose window holds it compete, the highest ``Rule.priority`` winning
  (composite > concat > replace).
"""
from __future__ import annotations

import dataclasses

import torch

from . import geometry
from .bank_rule import BankRead, Rule
from .memory_bank import MemoryBank
from .presets import at
from .term_base import Attention, Term

RECONSTRUCTION = Attention.of("move")  # an empty edit reads the bank as a move does


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
    bank: MemoryBank
    banks: tuple[MemoryBank, ...]  # distinct banks whose reference features the energies read
    untouched: torch.Tensor  # bool, matching grid
    edit_region: torch.Tensor  # bool, latent grid (R)
    sde_region: torch.Tensor  # bool, latent grid
    sde_eta: tuple[float, float] | None
    mask_grid: str = "nearest"  # how matching-grid masks reach the latent grid (geometry.to_latent_grid)

    @property
    def backwards_per_guidance(self) -> int:
        """Backward passes per guidance evaluation: E_edit's, and E_content's when a term has one."""
        return 1 + any(t.has_content for t in self.edit.terms)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        for term in self.edit.terms:
            base = term.initial_latent(base, step, seed)
        return base

    def energy(self, cur: list[torch.Tensor], ref: dict[int, list[torch.Tensor]]):
        """(sum_k s_k E_edit_k, sum_k s_k E_content_k) for the current features."""
        e_edit = e_con = cur[0].new_zeros((), dtype=torch.float32)
        for term in self.edit.terms:
            a, b = term.energies(cur, ref, self.untouched)
            e_edit, e_con = e_edit + term.strength * a, e_con + term.strength * b
        return e_edit, e_con

    def attention(self, step: int, bank_from: int) -> BankRead | None:
        """How self-attention reads the bank at ``step``, or None.

        With no terms, the bank is read as a move would (replace from ``bank_from``): a pure reconstruction.
        """
        n = self.bank.schedule.steps
        best = None
        for term in self.edit.terms or (None,):
            window = term.attention if term is not None else RECONSTRUCTION
            start = bank_from if window.rule.starts_at_bank_start else at(window.start, n)
            if start <= step < at(window.stop, n) and (best is None or window.rule.priority > best[0].priority):
                best = (window.rule, term)
        if best is None:
            return None
        rule, term = best
        if rule is Rule.COMPOSITE:
            return BankRead(rule, lambda layer: term.kv(step, layer, self.mask_grid))
        return BankRead(rule, lambda layer: self.bank.hidden_at(step, layer.key))


def _union(masks: list[torch.Tensor]) -> torch.Tensor:
    out = masks[0].clone()
    for m in masks[1:]:
        out |= m
    return out


def compose(edit: Edit, bank: MemoryBank, mask_grid: str = "nearest") -> Plan:
    """Merge the terms of ``edit`` for sampling from ``bank``; ``mask_grid`` as in ``geometry.to_latent_grid``."""
    h, w = bank.latent_shape[-2:]
    if not edit.terms:
        empty = torch.zeros(h, w, dtype=torch.bool)
        everywhere = torch.ones(geometry.matching_shape((h, w)), dtype=torch.bool)
        return Plan(edit, bank, (), everywhere, empty, empty, None, mask_grid)
    banks: dict[int, MemoryBank] = {}
    for term in edit.terms:
        for b in term.banks():
            banks.setdefault(id(b), b)
    etas = [t.sde_eta for t in edit.terms if t.sde_eta is not None]
    eta = (max(e[0] for e in etas), max(e[1] for e in etas)) if etas else None
    return Plan(edit, bank, tuple(banks.values()), ~_union([t.regions() for t in edit.terms]),
                _union([t.edit_region(mask_grid) for t in edit.terms]),
                _union([t.sde_region(mask_grid) for t in edit.terms]), eta, mask_grid)
