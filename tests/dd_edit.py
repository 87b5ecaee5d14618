"""Helpers to run inversion + move + guided sampling through the nodes' execute methods."""
from __future__ import annotations

import re

import torch

from dragon_drag_edit.nodes.energy_move import DragonEnergyMove
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank
from dragon_drag_edit.nodes.sampler import DragonGuidedSampler

from dd_models import conds_for

MOVE_DEFAULTS = {"dx": 0, "dy": 0, "scale": 1.0, "arrow": "", "w_edit": 4.0, "w_content": 6.0, "w_contrast": 0.2,
                 "w_inpaint": 0.8}
SAMPLER_DEFAULTS = {"seed": 1, "cfg": 4.0, "energy_scale": 1.0, "preset": "DragonDiffusion", "start_step": 0,
                    "guidance_until": 30, "bank_start_step": 5, "guidance_cap": 0.0}


def invert(model, latent, steps=10, cond=None, precision="fp16"):
    cond = cond if cond is not None else conds_for(model)[0]
    out = DDIMInvertToMemoryBank.execute(model=model, latent={"samples": latent}, conditioning=cond, steps=steps,
                                         bank_precision=precision, bank_device="cpu")
    return out.args[0]["samples"], out.args[1]


def move_energy(bank, mask, **kw):
    return DragonEnergyMove.execute(bank=bank, mask=mask, **{**MOVE_DEFAULTS, **kw}).args[0]


def sample(model, bank, energy=None, conds=None, **kw):
    pos, neg = conds if conds is not None else conds_for(model)
    out = DragonGuidedSampler.execute(model=model, positive=pos, negative=neg, bank=bank, energy=energy,
                                      **{**SAMPLER_DEFAULTS, **kw})
    return out.args[0]["samples"], counts(out.ui.as_dict()["text"][0])


def counts(text: str) -> dict[str, int]:
    """Parse the sampler's report line 'UNet passes: full forwards 100, guidance forwards 60, backwards 60'."""
    line = next(x for x in text.splitlines() if x.startswith("UNet passes:"))
    return {k.strip().replace(" ", "_"): int(v) for k, v in re.findall(r"([a-z ]+?) (\d+)", line.split(":", 1)[1])}


def box_mask(h, w, y0, y1, x0, x1):
    m = torch.zeros(1, h, w)
    m[:, y0:y1, x0:x1] = 1.0
    return m
