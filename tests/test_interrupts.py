"""Cancel at random steps: the MODEL keeps no patch, and the next run is bit-identical to an uninterrupted one."""
import random

import comfy.model_management
import comfy.utils
import pytest
import torch

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import assert_unchanged, snapshot, tiny_unet_model

STEPS = 10
SETTINGS = {"preset": "DiffEditor", "guidance_until": 8, "bank_start_step": 1}


@pytest.fixture(scope="module")
def edit():
    model = tiny_unet_model("sd15", seed=0)
    bank = invert(model, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=STEPS)[1]
    energy = move_energy(bank, box_mask(64, 64, 16, 36, 12, 32), dx=16)
    return model, bank, energy


def interrupted_run(model, bank, energy, at_step: int) -> int:
    seen = []

    def hook(value, total, preview, node_id=None):
        seen.append(value)
        if value == at_step:
            comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            sample(model, bank, energy, **SETTINGS)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)
    return max(seen)


def test_ten_random_interrupts_leave_no_trace(edit):
    model, bank, energy = edit
    before = snapshot(model)
    reference, _ = sample(model, bank, energy, **SETTINGS)
    rng = random.Random(0)
    for _ in range(10):
        at = rng.randrange(1, STEPS - 1)
        assert interrupted_run(model, bank, energy, at) == at  # stopped right there, not at the end
        assert_unchanged(model, before)
        again, _ = sample(model, bank, energy, **SETTINGS)
        assert torch.equal(again, reference)
