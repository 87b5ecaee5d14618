"""Issue 33 (2): a guidance forward that records no autograd graph stops the edit; it never comes out unguided.

SIMULATED inside real ComfyUI 0.3.75: upstream's multi-GPU path (``comfy/samplers.py``
``_calc_cond_batch_multigpu`` @311c0140) runs the UNet under ``torch.no_grad()``. Here a model function wrapper
does the same on a clone of the MODEL; the pack's sampler, guidance and node run as they are.
"""
import pytest
import torch

from dragon_drag_edit.dragon_ops import guidance
from dragon_drag_edit.nodes.common import InputError

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import tiny_unet_model

MASK = box_mask(64, 64, 16, 36, 12, 32)


def without_grad(apply_model, args):
    with torch.no_grad():
        return apply_model(args["input"], args["timestep"], **args["c"])


@pytest.fixture(scope="module")
def model_and_bank():
    model = tiny_unet_model("sd15", seed=0)
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    return model, invert(model, lat, steps=6)[1]


def test_a_forward_without_graph_stops_the_edit_with_a_model_message(model_and_bank, monkeypatch):
    model, bank = model_and_bank
    m = model.clone()
    m.set_model_unet_function_wrapper(without_grad)
    forwards = []
    real = guidance.energy_gradient
    monkeypatch.setattr(guidance, "energy_gradient", lambda *a, **k: forwards.append(1) or real(*a, **k))
    with pytest.raises(InputError, match=r"^model: its UNet ran without autograd") as err:
        sample(m, bank, move_energy(bank, MASK, dx=16, dy=8), guidance_until=3, bank_start_step=1)
    assert isinstance(err.value.__cause__, guidance.NoGraph)
    assert len(forwards) == 1  # stopped at the first guided step (step 0), no further step sampled


def test_the_same_edit_with_gradients_runs_guided(model_and_bank):
    model, bank = model_and_bank
    out, counts = sample(model, bank, move_energy(bank, MASK, dx=16, dy=8), guidance_until=3, bank_start_step=1)
    assert counts["backwards"] == 6 and torch.isfinite(out).all()
