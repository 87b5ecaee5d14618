"""What appearance replacing and object pasting share (spec sections 4.4, 4.5): two banks, the base kept outside
the target, and the composite bank attention."""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .memory_bank import MemoryBank
from .term_base import TermBase


@dataclasses.dataclass(frozen=True)
class TwoImageBase(TermBase):
    """A base image and a reference image (4.4, 4.5): ``target`` is the edited region on the base, ``source`` the
    object on the reference. E_content keeps the base outside the target. Bank attention, steps 0-35: the base's
    tokens outside the target followed by the reference's tokens inside the source (the current image's own K/V
    are dropped)."""

    bank: MemoryBank
    ref_bank: MemoryBank
    target: torch.Tensor  # matching grid, on the base
    source: torch.Tensor  # matching grid, on the reference

    def banks(self) -> tuple[MemoryBank, ...]:
        return (self.bank, self.ref_bank)

    def regions(self) -> torch.Tensor:
        return self.target

    def edit_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.target, rule)

    def content(self, cur, ref, untouched, w_content: float) -> torch.Tensor:
        return energies.region_content(cur, ref[id(self.bank)], ~self.target & untouched, w_content, reduce="sum")

    def kv(self, step: int, layer, rule: str) -> torch.Tensor | None:
        base, other = self.bank.hidden_at(step, layer.key), self.ref_bank.hidden_at(step, layer.key)
        if base is None or other is None:
            return None
        h, w = self.bank.latent_shape[-2:]
        grid = (-(-h // layer.factor), -(-w // layer.factor))
        keep = ~geometry.token_mask(geometry.to_latent_grid(self.target, rule), grid)
        take = geometry.token_mask(geometry.to_latent_grid(self.source, rule), grid)
        if base.dtype != other.dtype:  # banks stored at different precisions (fp8 does not promote): meet in fp32
            base, other = base.float(), other.float()
        halves = max(base.shape[0], other.shape[0])  # a generated bank holds both CFG halves: meet at two
        return torch.cat([base[:, keep].expand(halves, -1, -1), other[:, take].expand(halves, -1, -1)], dim=1)
