"""Energy terms, one per edit mode (spec section 4). Each says what it reads, where its gradient goes, what it
does to the initial latent, and how the self-attention uses the bank.

Term interface (used by ``edit.compose`` and the sampler):
  bank, strength, mode, banks(), regions(), edit_region(rule), sde_region(rule), sde_eta, attention, has_content,
  initial_latent(base, step, seed), energies(cur, ref, untouched), kv(step, layer) for "composite" attention.
Grids: ``regions`` is on the matching grid (2x latent); edit and SDE regions are on the latent grid.
"""
from __future__ import annotations

import dataclasses

import torch

from . import energies, geometry
from .memory_bank import MemoryBank
from .paper import MODES


@dataclasses.dataclass(frozen=True)
class Attention:
    """A bank-attention rule: mode over spec steps [start, stop) (scaled to the bank's step count)."""

    mode: str  # "replace" | "concat" | "composite"
    start: int
    stop: int

    @classmethod
    def of(cls, mode: str) -> Attention:
        """The paper's rule for edit mode ``mode`` (spec section 5)."""
        return cls(MODES[mode].bank_rule, *MODES[mode].bank_window)


class _Base:
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


@dataclasses.dataclass(frozen=True)
class MoveTerm(_Base):
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
        return geometry.to_latent_grid(self.grid.target, 2, rule)

    def sde_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.regions(), 2, rule)

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


@dataclasses.dataclass(frozen=True)
class DragTerm(_Base):
    """Content dragging (4.2) and, with ``landmarks``, face-landmark editing (4.3).

    Drag: 3x3-patch E_edit with a contrast part, E_content outside the editable region, gradient split by it,
    initial latent with handle patches copied to the targets. Landmarks: E_edit without contrast, no content
    term, gradient everywhere, no initial-latent change, global SDE (eta 0.2 inside and out).
    """

    bank: MemoryBank
    editable: torch.Tensor  # matching grid
    patches: energies.PointPatches
    latent_pairs: tuple[tuple[int, int, int, int], ...]  # (hy, hx, ty, tx) on the latent grid
    weights: energies.DragWeights
    landmarks: bool = False
    strength: float = MODES["drag"].strength
    attention = Attention.of("drag")  # landmarks: the same rule

    @property
    def mode(self) -> str:
        return "landmarks" if self.landmarks else "drag"

    @property
    def sde_eta(self):
        return MODES[self.mode].sde_eta

    @property
    def has_content(self) -> bool:
        return not self.landmarks

    def regions(self) -> torch.Tensor:
        return torch.zeros_like(self.editable) if self.landmarks else self.editable

    def edit_region(self, rule: str) -> torch.Tensor:
        if self.landmarks:
            return torch.ones(tuple(s // 2 for s in self.editable.shape), dtype=torch.bool)
        return geometry.to_latent_grid(self.editable, 2, rule)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        return base if self.landmarks else geometry.copy_patches(base, list(self.latent_pairs))

    def energies(self, cur, ref, untouched):
        r = ref[id(self.bank)]
        e_edit = energies.drag_edit(cur, r, self.patches, self.weights, contrast=not self.landmarks)
        if self.landmarks:
            return e_edit, e_edit.new_zeros(())
        return e_edit, energies.region_content(cur, r, ~self.editable & untouched, self.weights.content)


@dataclasses.dataclass(frozen=True)
class TwoImageTerm(_Base):
    """Appearance replacing (4.4) and object pasting (4.5): a base image and a reference image.

    ``target`` is the edited region on the base, ``source`` the object on the reference. E_edit compares paired
    cells when ``pairs`` is given (paste; appearance with a stretched correspondence), else mean features (the
    paper's appearance E_edit). Initial latent: either the reference's inverted noise pasted at the target
    (``latent``, the paper's paste), or the base's noise inside the target moved to the reference object's mean
    (``shift``: appearance, and this pack's default paste).
    Bank attention, steps 0-35: the base's tokens outside the target followed by the reference's tokens inside
    the source (the current image's own K/V are dropped).
    """

    bank: MemoryBank
    ref_bank: MemoryBank
    target: torch.Tensor  # matching grid, on the base
    source: torch.Tensor  # matching grid, on the reference
    w_edit: float
    w_content: float
    pairs: geometry.Move | None = None  # paste: target cells -> source cells (matching grid)
    latent: geometry.Move | None = None  # paste with the paper's start noise: the same on the latent grid
    strength: float = MODES["appearance"].strength
    shift: tuple[torch.Tensor, torch.Tensor, float] | None = None  # latent-grid target, source masks; amount
    mode: str = "appearance"  # or "paste"
    attention = Attention.of("appearance")  # paste: the same rule

    def banks(self) -> tuple[MemoryBank, ...]:
        return (self.bank, self.ref_bank)

    def regions(self) -> torch.Tensor:
        return self.target

    def edit_region(self, rule: str) -> torch.Tensor:
        return geometry.to_latent_grid(self.target, 2, rule)

    def initial_latent(self, base: torch.Tensor, step: int, seed: int = 0) -> torch.Tensor:
        if self.latent is None and self.shift is None:
            return base
        donor = self.ref_bank.latent_at(step).to(base)
        if self.latent is not None:
            return geometry.paste(base, donor, self.latent)
        return geometry.shift_mean(base, donor, *self.shift)

    def energies(self, cur, ref, untouched):
        base, other = ref[id(self.bank)], ref[id(self.ref_bank)]
        if self.pairs is None:
            e_edit = energies.appearance_edit(cur, other, self.target, self.source, self.w_edit)
        else:
            e_edit = energies.paste_edit(cur, other, self.pairs.target_idx, self.pairs.source_idx, self.w_edit)
        return e_edit, energies.region_content(cur, base, ~self.target & untouched, self.w_content, reduce="sum")

    def kv(self, step: int, layer, rule: str) -> torch.Tensor | None:
        base, other = self.bank.hidden_at(step, layer.key), self.ref_bank.hidden_at(step, layer.key)
        if base is None or other is None:
            return None
        h, w = self.bank.latent_shape[-2:]
        grid = (-(-h // layer.factor), -(-w // layer.factor))
        keep = ~geometry.token_mask(geometry.to_latent_grid(self.target, 2, rule), grid)
        take = geometry.token_mask(geometry.to_latent_grid(self.source, 2, rule), grid)
        if base.dtype != other.dtype:  # banks stored at different precisions (fp8 does not promote): meet in fp32
            base, other = base.float(), other.float()
        return torch.cat([base[:, keep], other[:, take]], dim=1)


def drag_term(bank: MemoryBank, editable: torch.Tensor, pairs_px, cell_px: float, weights: energies.DragWeights,
              landmarks: bool = False, strength: float | None = None) -> DragTerm:
    """Build a DragTerm from (hx, hy, tx, ty) image-pixel pairs; ``cell_px`` = image pixels per matching cell."""
    gh, gw = editable.shape
    targets, handles, contrast, latent_pairs = [], [], [], []
    for hx, hy, tx, ty in pairs_px:
        h_c = geometry.patch_center(hy / cell_px, hx / cell_px, (gh, gw))
        t_c = geometry.patch_center(ty / cell_px, tx / cell_px, (gh, gw))
        h_idx, t_idx = geometry.patch_indices(*h_c, gw), geometry.patch_indices(*t_c, gw)
        handles.append(h_idx)
        targets.append(t_idx)
        contrast.append(h_idx[~torch.isin(h_idx, t_idx)])
        lat = [geometry.patch_center(c[0] // 2, c[1] // 2, (gh // 2, gw // 2)) for c in (h_c, t_c)]
        latent_pairs.append((*lat[0], *lat[1]))
    patches = energies.PointPatches(torch.stack(targets), torch.stack(handles), tuple(contrast))
    if strength is None:
        strength = MODES["landmarks" if landmarks else "drag"].strength
    return DragTerm(bank, editable, patches, tuple(latent_pairs), weights, landmarks, strength)
