"""How decoder self-attention reads the memory bank (spec section 5): a small closed type.

``Rule`` names the three ways; ``BankRead`` pairs one of them with its token reader for one sampling step. The
attention patch asks the rule for the keys/values, so a rule it does not know cannot exist: ``Rule("typo")`` is
a ``ValueError``. Edit modes pick their rule in ``paper.MODES``.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import torch


class Rule(enum.Enum):
    """REPLACE: the bank's K/V inputs only (move). CONCAT: the current image's own, then the bank's (drag,
    landmarks). COMPOSITE: tokens a term assembles from two banks (appearance, paste), used as REPLACE uses the
    bank's; its window is the term's own instead of the sampler's ``bank_start_step``."""

    REPLACE = "replace"
    CONCAT = "concat"
    COMPOSITE = "composite"

    @property
    def priority(self) -> int:
        """When several terms' windows hold a step, the highest wins: composite > concat > replace."""
        return (Rule.REPLACE, Rule.CONCAT, Rule.COMPOSITE).index(self)

    @property
    def starts_at_bank_start(self) -> bool:
        """Whether the window opens at the sampler's ``bank_start_step`` (else at the rule's own start)."""
        return self is not Rule.COMPOSITE

    def keys_values(self, context: torch.Tensor, value: torch.Tensor,
                    tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention's (key input, value input), given the current ones and the read ``tokens``."""
        if self is Rule.CONCAT:
            return torch.cat([context, tokens], dim=1), torch.cat([value, tokens], dim=1)
        return tokens, tokens


@dataclasses.dataclass(frozen=True)
class BankRead:
    """One step's bank read: the rule and its reader, ``tokens(layer) -> (1, tokens, C)`` or None to skip."""

    rule: Rule
    tokens: Callable[[object], torch.Tensor | None]
