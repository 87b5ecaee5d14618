"""Issue 19, the server side of the frontend work: the templates' pictures ship with the pack and reach ComfyUI's
input folder (never over a user's file), the nodes carry the words users search for, the sampler warns about step
settings that silently drop part of the method, and the pack's JS uses only the link API both frontends support."""
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from dragon_drag_edit.nodes import common, example_inputs
from dragon_drag_edit.nodes.registry import NODES
from dragon_drag_edit.nodes.sampler import DragonGuidedSampler

import dd_workflows
from dd_edit import box_mask, invert, move_energy
from dd_models import conds_for, tiny_unet_model
from dd_server import ROOT


def test_the_shipped_pictures_are_the_templates_pictures():
    shipped = sorted(os.listdir(example_inputs.SOURCE))
    assert shipped == sorted(dd_workflows.PICTURES)
    for name, draw in dd_workflows.PICTURES.items():
        with Image.open(os.path.join(example_inputs.SOURCE, name)) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(draw(dd_workflows.DESIGN_SIZE)))
    used = {n["widgets_values"][0] for wf in dd_workflows.load_examples().values() for n in wf["nodes"]
            if n["type"] == "LoadImage"}
    assert used and used <= set(shipped)  # every template's Load Image names a shipped picture


def test_install_copies_what_is_missing_and_never_replaces_a_file(tmp_path):
    mine = tmp_path / "dragon_scene.png"
    mine.write_bytes(b"the user's own picture")
    copied = example_inputs.install(str(tmp_path))
    assert sorted(copied) == sorted(set(dd_workflows.PICTURES) - {"dragon_scene.png"})
    assert mine.read_bytes() == b"the user's own picture"
    for name in copied:
        assert (tmp_path / name).read_bytes() == open(os.path.join(example_inputs.SOURCE, name), "rb").read()
    assert example_inputs.install(str(tmp_path)) == []  # a second load copies nothing


def test_nodes_sit_in_subcategories_and_search_words_follow_the_comfyui_version():
    categories = {n.GET_SCHEMA().category for n in NODES}
    assert categories == {common.BANK, common.EDITS, common.SAMPLING}
    assert common.search_words("x") == {}  # 0.3.75's Schema has no search_aliases; display names carry the words


@pytest.fixture(scope="module")
def tiny_bank():
    model = tiny_unet_model("sd15", seed=0)
    return model, invert(model, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=2)[1]


def report_lines(model, bank, **steps) -> list[str]:
    pos, neg = conds_for(model)
    energy = move_energy(bank, box_mask(64, 64, 16, 40, 16, 40), dx=8)
    out = DragonGuidedSampler.execute(model=model, positive=pos, negative=neg, bank=bank, energy=energy, seed=0,
                                      cfg=0.0, energy_scale=1.0, preset="DragonDiffusion", start_step=0,
                                      guidance_cap=0.0, **steps)
    return out.ui.as_dict()["text"][0].splitlines()


def test_step_settings_past_the_bank_are_reported_by_name(tiny_bank):
    model, bank = tiny_bank
    report = report_lines(model, bank, guidance_until=30, bank_start_step=5)  # the paper's, on a 2-step bank
    warnings = [line for line in report if line.startswith("warning: ")]
    assert [w.split()[1] for w in warnings] == ["bank_start_step", "guidance_until"], report
    assert "2 steps" in warnings[0] and "never reads the bank" in warnings[0]
    assert "every step is guided" in warnings[1]
    assert not [x for x in report_lines(model, bank, guidance_until=1, bank_start_step=1) if "warning" in x]


def test_the_pack_js_reads_links_through_the_link_api():
    deprecated = re.compile(r"\.links\b|\binput\??\.link\b|selected_nodes|checkState\(")
    for name in os.listdir(os.path.join(ROOT, "web", "js")):
        text = open(os.path.join(ROOT, "web", "js", name), encoding="utf-8").read()
        assert not deprecated.findall(text), name
