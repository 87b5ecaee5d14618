"""The paper's constants, in one table: DragonDiffusion / DiffEditor as the official code (MC-E/DragonDiffusion)
runs them, each entry citing its section of the spec (``shared/design/algorithm.md``).

Every default of the pack's nodes, terms and presets reads this table; a variant of the pack's own is an explicit
switch on its node, never a number written inline. ``tests/test_paper_defaults.py`` checks the table against the
spec's values and every node's default against the table.
"""
from __future__ import annotations

import dataclasses

from .bank_rule import Rule

STEPS = 50  # DDIM steps (0, 6.4)
GUIDANCE_UNTIL = 30  # guidance at i < 30 (1.2, 6.0)
BANK_FROM = 5  # bank attention from step 5 for move, drag and landmarks (5)
REFINE = 0  # plain DDIM inversion, no fixed-point refinement (1.1)
MATCH_PER_LATENT = 2  # the matching grid G4 has 2 x 2 cells per latent cell: (2h, 2w) (3)


@dataclasses.dataclass(frozen=True)
class Mode:
    """One edit mode's constants."""

    lam: float  # lambda = the UI's energy x 1000 (4.x inputs, 6.0)
    factor: float  # c_mode, the gradient's multiplier (6.0)
    cfg: float  # classifier-free guidance scale (6.4)
    bank_rule: Rule  # how self-attention reads the bank (5)
    bank_window: tuple[int, int]  # [start, stop) in 50-step indices (5)
    sde_eta: tuple[float, float] | None  # (inside, outside) regional-SDE strength when it overrides the preset (4.3)
    weights: dict[str, float]  # the energies' w_* (4.x)

    @property
    def strength(self) -> float:
        """lambda x c_mode: what multiplies the mode's energy gradient (6.0: move 40, drag 80, ...)."""
        return self.lam * self.factor


MODES = {
    "move": Mode(500, 0.08, 4.0, Rule.REPLACE, (BANK_FROM, STEPS), None,  # 4.1
                 {"w_edit": 4.0, "w_content": 6.0, "w_contrast": 0.2, "w_inpaint": 0.8}),
    "drag": Mode(2000, 0.04, 4.0, Rule.CONCAT, (BANK_FROM, STEPS), None,  # 4.2
                 {"w_edit": 4.0, "w_content": 6.0, "w_inpaint": 0.2}),
    "landmarks": Mode(3000, 0.04, 4.0, Rule.CONCAT, (BANK_FROM, STEPS), (0.2, 0.2),  # 4.3
                      {"w_edit": 12.0}),
    "appearance": Mode(2000, 0.04, 5.0, Rule.COMPOSITE, (0, 36), None,  # 4.4: steps 0 <= i <= 35
                       {"w_edit": 3.5, "w_content": 5.0}),
    "paste": Mode(1500, 0.04, 4.0, Rule.COMPOSITE, (0, 36), None,  # 4.5
                  {"w_edit": 4.0, "w_content": 6.0}),
}
CFG_EMPTY_EDIT = 4.0  # a reconstruction: the move/drag value (6.4)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a preset guides, time-travels and adds regional SDE noise, in 50-step indices (6.0-6.2)."""

    dense_until: int  # guide every step below this
    sparse_every: int  # then every k-th step, up to GUIDANCE_UNTIL (0: none)
    time_travel: tuple[int, ...] = ()
    repeats: int = 1
    sde_window: tuple[int, int] = (0, 0)  # [start, stop)
    sde_eta_in: float = 0.0
    sde_eta_out: float = 0.0
    stride: int = 1  # sample every k-th step of the bank (the paper: every step)


SCHEDULES = {
    "DragonDiffusion": Schedule(dense_until=GUIDANCE_UNTIL, sparse_every=1),  # alg 'D' (6.0)
    # alg 'D+': guided i < 10 and even i to 28 (6.0); time travel x3 at 22-28 (6.2); SDE 0.4 at 11..19 (6.1)
    "DiffEditor": Schedule(dense_until=10, sparse_every=2, time_travel=(22, 24, 26, 28), repeats=3,
                           sde_window=(11, 20), sde_eta_in=0.4, sde_eta_out=0.0),
}


def cfg_for(modes: list[str]) -> float:
    """The paper's CFG for an edit made of terms of ``modes``: 5 if it replaces an appearance, else 4 (6.4)."""
    return max((MODES[m].cfg for m in modes), default=CFG_EMPTY_EDIT)
