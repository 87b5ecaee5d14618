"""Drag, landmarks, appearance and paste on tiny random ComfyUI models: inputs, both banks, composition."""
import pytest
import torch

from dragon_drag_edit.dragon_ops import geometry, points
from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.energy_points import DragonEnergyDrag, DragonEnergyLandmarks
from dragon_drag_edit.nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import tiny_unet_model

FAST = {"guidance_until": 4, "bank_start_step": 1}


@pytest.fixture(scope="module")
def model():
    return tiny_unet_model("sd15", seed=0)


def bank_of(model, h=8, w=8, seed=0, steps=6, precision="fp16"):
    return invert(model, torch.randn(1, 4, h, w, generator=torch.Generator().manual_seed(seed)), steps,
                  precision=precision)[1]


def drag(bank, pts, mask=None, **kw):
    h, w = bank.latent_shape[-2:]
    mask = mask if mask is not None else torch.ones(1, 8 * h, 8 * w)
    return DragonEnergyDrag.execute(bank=bank, mask=mask, points=pts, **{"w_edit": 4.0, "w_content": 6.0,
                                                                          "w_inpaint": 0.2, **kw}).args[0]


def landmarks(bank, src, dst, **kw):
    h, w = bank.latent_shape[-2:]
    return DragonEnergyLandmarks.execute(bank=bank, source_points=src, target_points=dst, w_edit=12.0,
                                         image=torch.zeros(1, 8 * h, 8 * w, 3), **kw).args[0]


def appearance(bank, ref, mask, ref_mask):
    return DragonEnergyAppearance.execute(bank=bank, mask=mask, reference_bank=ref, reference_mask=ref_mask,
                                          w_edit=3.5, w_content=5.0).args[0]


def paste(bank, ref, ref_mask, dx=16, dy=0):
    return DragonEnergyPaste.execute(bank=bank, reference_bank=ref, reference_mask=ref_mask, dx=dx, dy=dy,
                                     scale=1.0, w_edit=4.0, w_content=6.0).args[0]


def random_pairs(n, w, h, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 4, generator=g) * torch.tensor([w - 1, h - 1, w - 1, h - 1])
    return [[round(float(v), 1) for v in row] for row in xy]


@pytest.mark.parametrize("n", [1, 5, 68])
@pytest.mark.parametrize("hw", [(8, 8), (8, 12)])
def test_drag_with_many_pairs_on_square_and_wide_images(model, n, hw):
    bank = bank_of(model, *hw)
    pts = str(random_pairs(n, 8 * hw[1], 8 * hw[0], seed=n))
    energy = drag(bank, pts)
    term = energy.terms[0]
    assert term.patches.target.shape == (n, 9)
    gh, gw = geometry.matching_shape(hw)
    assert int(term.patches.target.max()) < gh * gw  # x clipped with the width bound (Q13)
    out, counts = sample(model, bank, energy, **FAST)
    assert torch.isfinite(out).all() and counts["backwards"] > 0


def test_handle_closer_than_a_cell_to_its_target_is_finite(model):
    bank = bank_of(model)
    energy = drag(bank, "[[20, 20, 21, 21]]")  # same matching cell: empty contrast set (Q15)
    assert energy.terms[0].patches.contrast[0].numel() == 0
    out, _ = sample(model, bank, energy, **FAST)
    assert torch.isfinite(out).all()


def test_drag_initial_latent_copies_patches_without_touching_the_bank(model):
    bank = bank_of(model)
    before = bank.latents.clone()
    term = drag(bank, "[[16, 16, 40, 40]]").terms[0]
    init = term.initial_latent(bank.latent_at(0), 0)
    assert torch.equal(bank.latents, before)  # Q14: nothing written into the bank
    assert torch.equal(init[..., 4:7, 4:7], bank.latent_at(0)[..., 1:4, 1:4])


def test_kjnodes_and_pose_keypoint_formats_parse_to_the_same_pairs():
    as_json = points.parse_pairs("[[10, 20, 30, 40], [5, 6, 7, 8]]")
    kj = points.parse_pairs('[{"x": 10, "y": 20}, {"x": 30, "y": 40}, {"x": 5, "y": 6}, {"x": 7, "y": 8}]')
    flat = points.parse_pairs("[[10, 20], [30, 40], [5, 6], [7, 8]]")
    assert as_json == kj == flat == [(10, 20, 30, 40), (5, 6, 7, 8)]
    pose = [{"people": [{"face_keypoints_2d": [10, 20, 0.9, 5, 6, 0.8]}], "canvas_width": 64, "canvas_height": 64}]
    normalised = [{"people": [{"face_keypoints_2d": [10 / 64, 20 / 64, 1, 5 / 64, 6 / 64, 1]}],
                   "canvas_width": 64, "canvas_height": 64}]
    assert points.pose_face_points(pose) == ([(10, 20), (5, 6)], (64, 64))
    assert points.pose_face_points(normalised)[0] == [(10, 20), (5, 6)]


def test_landmarks_from_pose_keypoints_equal_json(model):
    bank = bank_of(model)
    src = [{"people": [{"face_keypoints_2d": [10, 20, 1, 30, 40, 1]}], "canvas_width": 64, "canvas_height": 64}]
    dst = [{"people": [{"face_keypoints_2d": [12, 22, 1, 33, 41, 1]}], "canvas_width": 64, "canvas_height": 64}]
    a = DragonEnergyLandmarks.execute(bank=bank, source_points="", target_points="", w_edit=12.0, source_pose=src,
                                      target_pose=dst).args[0].terms[0]
    b = landmarks(bank, "[[10, 20], [30, 40]]", "[[12, 22], [33, 41]]").terms[0]
    assert torch.equal(a.patches.target, b.patches.target) and torch.equal(a.patches.handle, b.patches.handle)
    out, counts = sample(model, bank, DragonEnergyLandmarks.execute(
        bank=bank, source_points="", target_points="", w_edit=12.0, source_pose=src, target_pose=dst).args[0],
        preset="DiffEditor", **FAST)
    assert torch.isfinite(out).all() and counts["backwards"] > 0


@pytest.mark.parametrize("mode", ["appearance", "paste"])
def test_two_image_modes_read_the_reference_bank(model, mode):
    bank, ref_a, ref_b = bank_of(model, seed=0), bank_of(model, seed=1), bank_of(model, seed=2)
    mask, ref_mask = box_mask(64, 64, 16, 40, 16, 40), box_mask(64, 64, 8, 32, 8, 32)

    def run(ref):
        energy = appearance(bank, ref, mask, ref_mask) if mode == "appearance" else paste(bank, ref, ref_mask)
        return sample(model, bank, energy, **FAST)[0]

    a, again, b = run(ref_a), run(ref_a), run(ref_b)
    assert torch.equal(a, again)  # deterministic
    assert (a - b).abs().max() > 1e-4  # another reference image gives another result


def test_move_and_drag_chain_in_one_pass(model):
    bank = bank_of(model)
    chained = drag(bank, "[[50, 50, 56, 54]]", mask=box_mask(64, 64, 40, 64, 40, 64),
                   energy=move_energy(bank, box_mask(64, 64, 8, 24, 8, 24), dx=8))
    assert [t.__class__.__name__ for t in chained.terms] == ["MoveTerm", "DragTerm"]
    out, counts = sample(model, bank, chained, **FAST)
    assert torch.isfinite(out).all() and counts["backwards"] == 2 * 4


def test_bad_inputs_name_the_input(model):
    bank = bank_of(model)
    with pytest.raises(InputError, match=r"^target_points: has 1 points but source_points has 2"):
        landmarks(bank, "[[1, 2], [3, 4]]", "[[1, 2]]")
    with pytest.raises(InputError, match=r"^points: point \(70, 10\) is outside the 64x64 image"):
        drag(bank, "[[10, 10, 70, 10]]")
    with pytest.raises(InputError, match=r"^points: has 3 points"):
        drag(bank, "[[1, 2], [3, 4], [5, 6]]")
    with pytest.raises(InputError, match=r"^mask: the editable region is empty"):
        drag(bank, "[[10, 10, 20, 10]]", mask=torch.zeros(1, 64, 64))
    with pytest.raises(InputError, match=r"^reference_mask: is empty"):
        paste(bank, bank_of(model, seed=3), torch.zeros(1, 64, 64))
    other_size = bank_of(model, 8, 12, seed=4)
    with pytest.raises(InputError, match=r"^reference_bank: has latent size \(4, 8, 12\), the base bank \(4, 8, 8\)"):
        appearance(bank, other_size, box_mask(64, 64, 8, 24, 8, 24), box_mask(64, 96, 8, 24, 8, 24))


@pytest.mark.parametrize("mode", ["appearance", "paste"])
def test_two_banks_of_different_precision(model, mode):
    """Fuzz find (issue 9): an fp8 base bank with an fp16 reference bank failed in the sampler's bank attention
    (PyTorch does not promote fp8)."""
    bank, ref = bank_of(model, precision="fp8"), bank_of(model, seed=1)
    obj = box_mask(64, 64, 8, 24, 8, 24)
    energy = appearance(bank, ref, obj, obj) if mode == "appearance" else paste(bank, ref, obj)
    out, counts = sample(model, bank, energy, **FAST)
    assert torch.isfinite(out).all() and counts["backwards"] > 0


@pytest.mark.parametrize("mode", ["appearance", "paste"])
def test_bank_attention_reads_the_reference_only_inside_its_mask(model, mode):
    """Perturbing the reference bank's stored hidden states outside the reference mask leaves the result
    bit-identical; perturbing them inside changes it. (The reference *features* come from a UNet forward over the
    whole reference latent, whose receptive field is global, so the image itself is read everywhere.)"""
    import dataclasses

    from dragon_drag_edit.dragon_ops import geometry

    bank, ref = bank_of(model, seed=0), bank_of(model, seed=1)
    mask, ref_mask = box_mask(64, 64, 16, 40, 16, 40), box_mask(64, 64, 8, 32, 8, 32)
    inside = geometry.resize_mask(ref_mask[0], (8, 8))

    def perturbed(where_inside: bool):
        hidden = {}
        for layer in ref.layers:
            h, w = -(-8 // layer.factor), -(-8 // layer.factor)
            sel = geometry.token_mask(inside, (h, w))
            sel = sel if where_inside else ~sel
            t = ref.hidden[layer.key].clone()
            t[:, :, sel] += 0.5
            hidden[layer.key] = t
        return dataclasses.replace(ref, hidden=hidden)

    def run(r):
        energy = appearance(bank, r, mask, ref_mask) if mode == "appearance" else paste(bank, r, ref_mask)
        return sample(model, bank, energy, **FAST)[0]

    base = run(ref)
    assert torch.equal(base, run(perturbed(False)))
    assert (base - run(perturbed(True))).abs().max() > 1e-4
