"""Issue 17: every default is the paper's. The constants table (dragon_ops/paper.py) against the spec's values,
listed here with their sections of shared/design/algorithm.md, and every node's schema default against the table."""
import inspect

import pytest
import torch

from dragon_drag_edit.dragon_ops import paper, presets
from dragon_drag_edit.dragon_ops.bank_rule import Rule
from dragon_drag_edit.dragon_ops.term_appearance import AppearanceTerm
from dragon_drag_edit.dragon_ops.term_base import Attention
from dragon_drag_edit.dragon_ops.term_move import MoveTerm
from dragon_drag_edit.dragon_ops.term_paste import PasteTerm
from dragon_drag_edit.nodes.energy_move import DragonEnergyMove
from dragon_drag_edit.nodes.energy_points import DragonEnergyDrag, DragonEnergyLandmarks
from dragon_drag_edit.nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank
from dragon_drag_edit.nodes.registry import NODES
from dragon_drag_edit.nodes.sampler import DragonGuidedSampler

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import conds_for, tiny_unet_model

# (mode, field): value, spec section. Copied from the spec by hand, not from the table.
SPEC = {
    ("move", "lam"): (500, "4.1"), ("move", "factor"): (0.08, "6.0"), ("move", "cfg"): (4, "6.4"),
    ("move", "bank_rule"): (Rule.REPLACE, "5"), ("move", "bank_window"): ((5, 50), "5"),
    ("move", "weights"): ({"w_edit": 4, "w_content": 6, "w_contrast": 0.2, "w_inpaint": 0.8}, "4.1"),
    ("drag", "lam"): (2000, "4.2"), ("drag", "factor"): (0.04, "6.0"), ("drag", "cfg"): (4, "6.4"),
    ("drag", "bank_rule"): (Rule.CONCAT, "5"), ("drag", "bank_window"): ((5, 50), "5"),
    ("drag", "weights"): ({"w_edit": 4, "w_content": 6, "w_inpaint": 0.2}, "4.2"),
    ("landmarks", "lam"): (3000, "4.3"), ("landmarks", "factor"): (0.04, "4.3"), ("landmarks", "cfg"): (4, "4.3"),
    ("landmarks", "bank_rule"): (Rule.CONCAT, "4.3"), ("landmarks", "sde_eta"): ((0.2, 0.2), "4.3"),
    ("landmarks", "weights"): ({"w_edit": 12}, "4.3"),
    ("appearance", "lam"): (2000, "4.4"), ("appearance", "factor"): (0.04, "4.4"), ("appearance", "cfg"): (5, "4.4"),
    ("appearance", "bank_rule"): (Rule.COMPOSITE, "4.4"), ("appearance", "bank_window"): ((0, 36), "4.4: 0 <= i <= 35"),
    ("appearance", "weights"): ({"w_edit": 3.5, "w_content": 5}, "4.4"),
    ("paste", "lam"): (1500, "4.5"), ("paste", "factor"): (0.04, "4.5"), ("paste", "cfg"): (4, "4.5"),
    ("paste", "bank_rule"): (Rule.COMPOSITE, "4.5"), ("paste", "bank_window"): ((0, 36), "4.5 as 4.4"),
    ("paste", "weights"): ({"w_edit": 4, "w_content": 6}, "4.5"),
}
EFFECTIVE = {"move": 40, "drag": 80, "landmarks": 120, "appearance": 80, "paste": 60}  # 6.0, lambda x c_mode
SCHEDULE_SPEC = {  # 6.0 guided steps, 6.1 SDE window and eta, 6.2 time travel
    "DragonDiffusion": {"guided": set(range(30)), "time_travel": set(), "sde": set()},
    "DiffEditor": {"guided": set(range(10)) | set(range(10, 30, 2)), "time_travel": {22, 24, 26, 28},
                   "sde": set(range(11, 20))},
}


@pytest.mark.parametrize("key", sorted(SPEC))
def test_table_matches_the_spec(key):
    mode, field = key
    want, section = SPEC[key]
    assert getattr(paper.MODES[mode], field) == want, f"{mode}.{field}: spec {section} says {want}"


def test_effective_strengths_and_the_global_constants():
    assert {m: round(c.strength, 6) for m, c in paper.MODES.items()} == EFFECTIVE  # 6.0
    assert (paper.STEPS, paper.GUIDANCE_UNTIL, paper.BANK_FROM, paper.REFINE) == (50, 30, 5, 0)  # 0, 1.2, 5, 1.1
    d_plus = paper.SCHEDULES["DiffEditor"]
    assert (d_plus.repeats, d_plus.sde_eta_in, d_plus.sde_eta_out) == (3, 0.4, 0.0)  # 6.2, 6.1


@pytest.mark.parametrize("name", sorted(SCHEDULE_SPEC))
def test_presets_guide_time_travel_and_add_noise_where_the_spec_says(name):
    plan = presets.StepPlan(presets.PRESETS[name], paper.STEPS, 0, paper.GUIDANCE_UNTIL, paper.BANK_FROM, True)
    got = {"guided": {i for i in range(50) if plan.guided(i)}, "time_travel": {i for i in range(50)
           if plan.repeats(i) == 3}, "sde": {i for i in range(50) if plan.sde(i)}}
    assert got == SCHEDULE_SPEC[name]


def _defaults(cls) -> dict:
    return {i.id: i.default for i in cls.define_schema().inputs if getattr(i, "default", None) is not None}


MOVE, DRAG, MARKS = (paper.MODES[m].weights for m in ("move", "drag", "landmarks"))
APPEARANCE, PASTE = paper.MODES["appearance"].weights, paper.MODES["paste"].weights
EXPECTED = {
    DDIMInvertToMemoryBank: {"steps": paper.STEPS, "refine": paper.REFINE},
    DragonEnergyMove: {**MOVE, "scale": 1.0, "vacated_noise": "inverted"},
    DragonEnergyDrag: DRAG,
    DragonEnergyLandmarks: MARKS,
    DragonEnergyAppearance: {**APPEARANCE, "match": "mean", "noise_shift": 0.0},
    DragonEnergyPaste: {**PASTE, "scale": 1.0, "start_noise": "reference noise"},
    DragonGuidedSampler: {"seed": 42, "cfg": 0.0, "energy_scale": 1.0, "preset": "DragonDiffusion", "start_step": 0,
                          "guidance_until": paper.GUIDANCE_UNTIL, "bank_start_step": paper.BANK_FROM,
                          "guidance_cap": 0.0, "mask_grid": "nearest"},
}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_node_defaults_are_the_papers(cls):
    got = _defaults(cls)
    assert {k: got[k] for k in EXPECTED[cls]} == EXPECTED[cls]


@pytest.mark.parametrize("cls", NODES, ids=lambda c: c.__name__)
def test_execute_defaults_agree_with_the_schema(cls):
    """An API prompt that leaves out an optional input gets the same value as the widget's default."""
    schema = _defaults(cls)
    for name, p in inspect.signature(cls.execute).parameters.items():
        if p.default is not inspect.Parameter.empty and p.default is not None and name in schema:
            assert p.default == schema[name], name


def test_terms_read_the_table():
    assert MoveTerm.strength == 40 and MoveTerm.attention == Attention(Rule.REPLACE, 5, 50)
    assert AppearanceTerm.strength == 80 and AppearanceTerm.attention == Attention(Rule.COMPOSITE, 0, 36)
    assert PasteTerm.strength == 60 and PasteTerm.attention == Attention(Rule.COMPOSITE, 0, 36)


@pytest.fixture(scope="module")
def inverted():
    model = tiny_unet_model("sd15", seed=0)
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    return model, invert(model, lat, steps=4)[1]


def test_cfg_left_at_its_default_follows_the_mode_and_an_explicit_value_wins(inverted):
    model, bank = inverted
    mask = box_mask(64, 64, 16, 36, 12, 32)
    look = DragonEnergyAppearance.execute(bank=bank, mask=mask, reference_bank=bank, reference_mask=mask,
                                          **APPEARANCE).args[0]
    runs = {"move, default": (move_energy(bank, mask, dx=8), 0.0), "appearance, default": (look, 0.0),
            "appearance, set": (look, 4.0), "no edit, default": (None, 0.0)}
    got = {}
    pos, neg = conds_for(model)
    for name, (energy, cfg) in runs.items():
        out = DragonGuidedSampler.execute(model=model, positive=pos, negative=neg, bank=bank, energy=energy, seed=1,
                                          cfg=cfg, energy_scale=1.0, preset="DragonDiffusion", start_step=0,
                                          guidance_until=1, bank_start_step=1, guidance_cap=0.0)
        got[name] = out.ui.as_dict()["text"][0].split("\n")[0]
    assert got == {"move, default": "cfg 4 (the paper's value for this edit)",
                   "appearance, default": "cfg 5 (the paper's value for this edit)",
                   "appearance, set": "cfg 4 (set on the node)",
                   "no edit, default": "cfg 4 (the paper's value for this edit)"}
    assert sample(model, bank, None, cfg=4.0)[1]["full_forwards"] == 2 * 4  # the report's counts still parse
