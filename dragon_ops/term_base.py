"""What every energy term is (spec section 4): the interface ``edit.compose`` and the sampler use, its defaults,
and the bank-attention window a term declares.

A term says what it reads (``banks``), where its gradient goes (``edit_region``; ``regions`` it edits, which every
other term's "keep" region leaves out), what it does to the initial latent, how self-attention reads the bank
(``attention``; ``kv`` for ``Rule.COMPOSITE``) and its energies. One edit mode is one term, in its own module
``term_<mode>.py``. Grids: ``regions`` is on the matching grid (``paper.MATCH_PER_LATENT`` x latent); edit and
SDE regions are on the latent grid.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import torch

from .bank_rule import Rule
from .memory_bank import MemoryBank
from .paper import MODES


@dataclasses.dataclass(frozen=True)
class Attention:
    """A bank-attention rule over spec steps [start, stop) (scaled to the bank's step count)."""

    rule: Rule
    start: int
    stop: int

    @classmethod
    def of(cls, mode: str) -> Attention:
        """The paper's rule for edit mode ``mode`` (spec section 5)."""
        return cls(MODES[mode].bank_rule, *MODES[mode].bank_window)


class Term(Protocol):
    """The interface of an energy term (a frozen dataclass with a ``strength`` field)."""

    bank: MemoryBank
    strength: float  # lambda x c_mode, times the sampler's energy_scale
    mode: str  # its row of ``paper.MODES``
    attention: Attention
    sde_eta: tuple[float, float] | None
    has_content: bool

    def banks(self) -> tuple[MemoryBank, ...]: ...
    def regions(self) -> torch.Tensor: ...
    def edit_region(self, rule: str) -> torch.Tensor: ...
    def sde_region(self, rule: str) -> torch.Tensor: ...
    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor: ...
    def energies(self, cur: list[torch.Tensor], ref: dict, untouched: torch.Tensor): ...
    def kv(self, step: int, layer, rule: str) -> torch.Tensor | None: ...


class TermBase:
    """Defaults of the interface: one bank, an E_content, the preset's SDE, start noise and attention unchanged."""

    sde_eta: tuple[float, float] | None = None  # (inside, outside) override of the preset's regional SDE
    has_content = True  # whether the term has an E_content (a second backward pass per guided step)

    def banks(self) -> tuple[MemoryBank, ...]:
        return (self.bank,)

    def sde_region(self, rule: str) -> torch.Tensor:
        return self.edit_region(rule)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        return base

    def kv(self, step: int, layer, rule: str) -> torch.Tensor | None:
        return None
