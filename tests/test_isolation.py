"""Two-image modes on the trained Shapes32 model: the reference image is read only inside its mask once the
reference is inverted with ``isolate_mask`` (issue 5, must-show 2), and the result still follows the reference."""
import numpy as np
import pytest
import torch

from dragon_drag_edit.bench import move_eval, scenes, toy_model
from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste
from dragon_drag_edit.nodes.sampler import DragonGuidedSampler

STEPS = 12
SAMPLER = {"seed": 0, "cfg": 1.0, "energy_scale": 1.0, "preset": "DragonDiffusion", "start_step": 5,
           "guidance_until": 10, "bank_start_step": 1, "guidance_cap": 0.05, "mask_grid": "dilated"}


def scene_image(seed: int):
    sc = scenes.random_scene(seed, n_objects=1)
    mask = torch.from_numpy(scenes.object_mask(sc, 0).astype(np.float32))[None]
    return torch.from_numpy(scenes.to_image(scenes.render(sc)))[None], mask


def invert(model, image, isolate=None):
    return move_eval.invert_image(model, image, steps=STEPS, isolate_mask=isolate)


def edit(model, mode, bank, ref_bank, ref_mask, base_mask):
    if mode == "paste":
        energy = DragonEnergyPaste.execute(bank=bank, reference_bank=ref_bank, reference_mask=ref_mask, dx=4, dy=3,
                                           scale=1.0, w_edit=4.0, w_content=6.0, start_noise="reference mean").args[0]
    else:
        energy = DragonEnergyAppearance.execute(bank=bank, mask=base_mask, reference_bank=ref_bank,
                                                reference_mask=ref_mask, w_edit=3.5, w_content=5.0,
                                                **move_eval.TOY_APPEARANCE).args[0]
    cond = toy_model.null_conditioning()
    out = DragonGuidedSampler.execute(model=model, positive=cond, negative=cond, bank=bank, energy=energy, **SAMPLER)
    return out.args[0]["samples"]


@pytest.mark.parametrize("mode", ["paste", "appearance"])
def test_reference_background_has_no_influence_when_isolated(toy, mode):
    base, base_mask = scene_image(scenes.SEED_RANGES["test"][0] + 5001)
    bank = invert(toy, base)
    ref_a, ref_mask = scene_image(scenes.SEED_RANGES["test"][0] + 5002)
    inside = (ref_mask > 0.5)[..., None]
    ref_b = torch.where(inside, ref_a, scene_image(scenes.SEED_RANGES["test"][0] + 5003)[0])  # other background
    assert (ref_a - ref_b).abs().max() > 0.05

    isolated = [edit(toy, mode, bank, invert(toy, r, ref_mask), ref_mask, base_mask) for r in (ref_a, ref_b)]
    assert torch.equal(isolated[0], isolated[1])  # outside the reference mask: no influence at all
    plain = [edit(toy, mode, bank, invert(toy, r), ref_mask, base_mask) for r in (ref_a, ref_b)]
    assert (plain[0] - plain[1]).abs().max() > 0  # without isolation the background leaks in (global UNet)

    other, other_mask = scene_image(scenes.SEED_RANGES["test"][0] + 5004)
    changed = edit(toy, mode, bank, invert(toy, other, other_mask), other_mask, base_mask)
    assert (changed - isolated[0]).abs().max() > 1e-3  # another reference object: another result
    assert torch.isfinite(changed).all()


def test_isolate_mask_is_checked(toy):
    image, mask = scene_image(scenes.SEED_RANGES["test"][0] + 5001)
    with pytest.raises(InputError, match=r"^isolate_mask: is empty"):
        invert(toy, image, torch.zeros_like(mask))
    with pytest.raises(InputError, match=r"^isolate_mask: is 16x32"):
        invert(toy, image, torch.ones(1, 32, 16))
    before = image.clone()
    invert(toy, image, mask)
    assert torch.equal(image, before)
