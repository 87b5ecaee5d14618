"""Issue 20: hostile and careless inputs found by a sweep through a real server get an error that starts with the
right input's name and says the fix, before any compute; sizes taken from strings are bounded before allocating."""
import json

import pytest
import torch

from dragon_drag_edit.nodes.bank_io import DragonMemoryBankLoad, DragonMemoryBankSave
from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.energy_move import DragonEnergyMove
from dragon_drag_edit.nodes.energy_points import DragonEnergyDrag
from dragon_drag_edit.nodes.energy_two_image import DragonEnergyPaste
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank
from dragon_drag_edit.nodes.points_editor import DragonPointsEditor
from dragon_drag_edit.nodes.sampler import DragonGuidedSampler

from dd_edit import MOVE_DEFAULTS, SAMPLER_DEFAULTS, box_mask, invert
from dd_models import conds_for

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def bank(tiny_sd15):
    return invert(tiny_sd15, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=4)[1]


@pytest.fixture()
def output(tmp_path, monkeypatch):
    import folder_paths

    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path))
    return tmp_path


def cases(tiny_sd15, bank):
    mask = box_mask(64, 64, 16, 36, 12, 32)
    pos, neg = conds_for(tiny_sd15)
    move = {**MOVE_DEFAULTS, "bank": bank, "mask": mask}
    return {
        "save name with NUL": ("name", lambda: DragonMemoryBankSave.execute(bank=bank, name="a\x00b")),
        "save name over 255 bytes": ("name", lambda: DragonMemoryBankSave.execute(bank=bank, name="a" * 300)),
        "save name with a newline": ("name", lambda: DragonMemoryBankSave.execute(bank=bank, name="a\nb")),
        "save name with right-to-left override": ("name", lambda: DragonMemoryBankSave.execute(
            bank=bank, name="\u202egnp.evil")),
        "save name with backslashes": ("name", lambda: DragonMemoryBankSave.execute(bank=bank, name="x\\..\\..\\y")),
        "save name percent-encoded": ("name", lambda: DragonMemoryBankSave.execute(bank=bank, name="%2e%2e%2fx")),
        "editor width 1e308": ("editor_state", lambda: DragonPointsEditor.execute(
            editor_state=json.dumps({"width": 1e308, "height": 64}))),
        "editor state 100000 squared": ("editor_state", lambda: DragonPointsEditor.execute(
            editor_state=json.dumps({"width": 100000, "height": 100000}))),
        "editor state nested 100,000 deep": ("editor_state", lambda: DragonPointsEditor.execute(editor_state=DEEP)),
        "points nested 100,000 deep": ("points", lambda: DragonEnergyDrag.execute(
            bank=bank, mask=mask, points=DEEP, w_edit=4.0, w_content=6.0, w_inpaint=0.2)),
        "10,000 drag pairs": ("points", lambda: DragonEnergyDrag.execute(
            bank=bank, mask=mask, points=json.dumps([[1, 1, 2, 2]] * 10_000), w_edit=4.0, w_content=6.0,
            w_inpaint=0.2)),
        "raw value for bank (sampler)": ("bank", lambda: DragonGuidedSampler.execute(
            model=tiny_sd15, positive=pos, negative=neg, bank="not a bank", **SAMPLER_DEFAULTS)),
        "raw value for reference_bank": ("reference_bank", lambda: DragonEnergyPaste.execute(
            bank=bank, reference_bank=3, reference_mask=mask, dx=0, dy=0, scale=1.0, w_edit=4.0, w_content=6.0)),
        "NaN arrow": ("arrow", lambda: DragonEnergyMove.execute(**{**move, "arrow": "[[NaN, 1, 2, 3]]"})),
        "Infinity arrow": ("arrow", lambda: DragonEnergyMove.execute(**{**move, "arrow": "[[Infinity, 1, 2, 3]]"})),
        "1e400 arrow": ("arrow", lambda: DragonEnergyMove.execute(**{**move, "arrow": "[[1e400, 1, 2, 3]]"})),
        "scale 0.1 with no move": ("scale", lambda: DragonEnergyMove.execute(
            **{**move, "mask": box_mask(64, 64, 20, 26, 20, 26), "scale": 0.1})),
        "bank_device cuda:7": ("bank_device", lambda: DDIMInvertToMemoryBank.execute(
            model=tiny_sd15, latent={"samples": torch.zeros(1, 4, 8, 8)}, conditioning=pos, steps=4,
            bank_precision="fp16", bank_device="cuda:7")),
        "load of a name outside the list": ("file", lambda: DragonMemoryBankLoad.execute(file="../../etc/passwd")),
    }


def test_every_message_starts_with_the_right_input(tiny_sd15, bank, output):
    wrong = {}
    for case, (name, call) in cases(tiny_sd15, bank).items():
        with pytest.raises(InputError) as err:
            call()
        if not str(err.value).startswith(f"{name}: "):
            wrong[case] = str(err.value)[:120]
        assert str(output) not in str(err.value), case  # no server path reaches the client
    assert wrong == {}
    assert list(output.rglob("*")) == []  # nothing was written


def test_load_lists_only_banks_that_follow_the_name_rule_and_no_links(tiny_sd15, bank, output):
    from dragon_drag_edit.dragon_ops import memory_bank
    from dragon_drag_edit.nodes.bank_io import bank_dir, bank_files

    DragonMemoryBankSave.execute(bank=bank, name="good_name-1")
    memory_bank.save(bank, f"{bank_dir()}/bad name.safetensors")  # written by something else
    outside = output / "elsewhere.safetensors"
    memory_bank.save(bank, str(outside))
    (output / "dragon_banks" / "linked.safetensors").symlink_to(outside)
    assert bank_files() == ["good_name-1.safetensors"]
    for file in ("linked.safetensors", "bad name.safetensors"):
        with pytest.raises(InputError, match=r"^file: .* is not a bank in output/dragon_banks/"):
            DragonMemoryBankLoad.execute(file=file)
    assert DragonMemoryBankLoad.execute(file="good_name-1.safetensors").args[0].fingerprint == bank.fingerprint
