"""Bad input is refused before any compute, with the input's name; the MODEL is never mutated."""
import pytest
import torch

from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank

from dd_models import assert_unchanged, conds_for, snapshot, tiny_flux, tiny_unet_model


def run(model, latent, steps=3, cond=None):
    pos = cond if cond is not None else conds_for(model)[0]
    return DDIMInvertToMemoryBank.execute(model=model, latent={"samples": latent}, conditioning=pos, steps=steps,
                                          bank_precision="fp16", bank_device="cpu")


@pytest.fixture
def no_compute(monkeypatch):
    """Fails the test if the UNet runs at all."""
    from dragon_drag_edit.dragon_ops import inversion

    def boom(*a, **k):
        raise AssertionError("compute started before the input was validated")

    monkeypatch.setattr(inversion, "invert_to_bank", boom)


@pytest.mark.parametrize("latent, steps, match", [
    (torch.zeros(2, 4, 8, 8), 3, r"^latent: holds a batch of 2"),
    (torch.zeros(1, 4, 8, 8), 1, r"^steps: must be 2\.\.1000"),
    (torch.zeros(1, 3, 8, 8), 3, r"^latent: has 3 channels"),
    (torch.zeros(1, 4, 6, 8), 3, r"^latent: size 8x6 latent cells is not a multiple of 4"),
    (torch.full((1, 4, 8, 8), float("nan")), 3, r"^latent: contains NaN"),
])
def test_bad_latent_or_steps(tiny_sd15, no_compute, latent, steps, match):
    with pytest.raises(InputError, match=match):
        run(tiny_sd15, latent, steps)


def test_model_that_is_not_a_unet(no_compute):
    flux = tiny_flux()
    with pytest.raises(InputError, match=r"^model: DragonDiffusion needs a UNet model .* Flux"):
        run(flux, torch.zeros(1, 16, 8, 8), cond=[[torch.zeros(1, 4, 32), {}]])


def test_empty_conditioning(tiny_sd15, no_compute):
    with pytest.raises(InputError, match=r"^conditioning: is empty"):
        run(tiny_sd15, torch.zeros(1, 4, 8, 8), cond=[])


def test_model_is_bit_identical_after_the_node_ran():
    model = tiny_unet_model("sd15", seed=3)
    model.set_model_attn1_patch(lambda n, c, v, o: (n, c, v))  # a user's own patch must survive too
    before = snapshot(model)
    run(model, torch.randn(1, 4, 8, 8), steps=3)
    assert_unchanged(model, before)


NAN = float("nan")


@pytest.mark.parametrize("node, inputs, match", [
    ("sampler", {"energy_scale": NAN}, r"^energy_scale: must be a finite number, got nan"),
    ("sampler", {"cfg": float("inf")}, r"^cfg: must be a finite number"),
    ("sampler", {"guidance_cap": NAN}, r"^guidance_cap: must be a finite number"),
    ("move", {"w_edit": NAN}, r"^w_edit: must be a finite number"),
    ("move", {"scale": NAN}, r"^scale: must be a finite number"),
])
def test_nan_numbers_are_refused_by_name(tiny_sd15, node, inputs, match):
    """Fuzz find (issue 9): ComfyUI's min/max validation passes NaN (every comparison with NaN is false), and a NaN
    reached the sampler, whose NaN-to-zero guard then hid it in the output."""
    from dd_edit import box_mask, move_energy, sample

    bank = run(tiny_sd15, torch.randn(1, 4, 8, 8), steps=3).args[1]
    with pytest.raises(InputError, match=match):
        if node == "sampler":
            sample(tiny_sd15, bank, None, **inputs)
        else:
            move_energy(bank, box_mask(64, 64, 8, 24, 8, 24), dx=8, **inputs)


def test_a_latent_that_overflows_the_inversion_is_named(tiny_sd15):
    """Fuzz find (issue 9): a finite but huge latent (1e30) inverted into a NaN bank without complaint."""
    with pytest.raises(InputError, match=r"^latent: DDIM inversion overflowed to NaN/Inf .* 1e\+30"):
        run(tiny_sd15, torch.full((1, 4, 8, 8), 1e30))
