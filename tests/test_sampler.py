"""DragonGuidedSampler mechanics on tiny random ComfyUI models (SD1.5, SD2 v-prediction, SDXL architectures)."""
import comfy.model_management
import comfy.utils
import pytest
import torch

from dragon_drag_edit.dragon_ops import attention, passes, presets
from dragon_drag_edit.nodes.common import InputError

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import assert_unchanged, conds_for, snapshot, tiny_unet_model

MASK = box_mask(64, 64, 16, 36, 12, 32)  # 8x8 latent image = 64x64 px


@pytest.fixture(scope="module")
def inverted():
    model = tiny_unet_model("sd15", seed=0)
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    return model, invert(model, lat, steps=50)[1]


@pytest.mark.parametrize("preset, expected", [
    # 50 steps, cfg batch 2: hand-counted from the spec (section 7)
    ("DragonDiffusion", {"full_forwards": 100, "guidance_forwards": 30 + 30, "backwards": 60}),
    # 58 CFG calls (116) + 8 re-noise (the official 12 minus 4 wasted); 28 current + 20 cached references
    ("DiffEditor", {"full_forwards": 124, "guidance_forwards": 28 + 20, "backwards": 56}),
    # DragonDiffusion at the even steps 0, 2, .., 28 only
    ("Fast", {"full_forwards": 100, "guidance_forwards": 15 + 15, "backwards": 30}),
    # 13 steps reading bank steps 0, 4, .., 48; guided at 0, 4 and 8
    ("Preview", {"full_forwards": 26, "guidance_forwards": 3 + 3, "backwards": 6}),
])
def test_pass_counts_equal_the_schedule(inverted, preset, expected):
    model, bank = inverted
    energy = move_energy(bank, MASK, dx=16, dy=8)
    out, got = sample(model, bank, energy, preset=preset)
    assert got == expected
    plan = presets.StepPlan(presets.PRESETS[preset], 50, 0, 30, 5, True)
    assert passes.expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2).as_dict() == expected  # a move
    assert torch.isfinite(out).all()


def test_attention_patch_changes_kv_only_in_decoder_layers_at_selected_steps(inverted, monkeypatch):
    model, bank = inverted
    seen = []
    original = attention.attn1_patch

    def spy(n, context, value, extra):
        out = original(n, context, value, extra)
        state = extra.get(attention.STATE_KEY)
        seen.append((extra["block"], extra.get("block_index", 0), state.step if state else None,
                     out[1] is not context, out[2] is not value))
        return out

    monkeypatch.setattr(attention, "attn1_patch", spy)
    sample(model, bank, move_energy(bank, MASK, dx=16), bank_start_step=20, guidance_until=10)
    changed = {(b, i, s) for b, i, s, ck, cv in seen if ck or cv}
    bank_keys = {("output", layer.block) for layer in bank.layers}
    assert changed, "the bank was never read"
    assert {(b, i) for b, i, _ in changed} == {(k, 0) for k in bank_keys}  # every decoder layer, nothing else
    assert {s for _, _, s in changed} == set(range(20, 50))  # only from bank_start_step on
    assert all(ck == cv for *_, ck, cv in seen)  # K and V inputs change together


@pytest.mark.parametrize("family", ["sd2v", "sdxl"])
def test_other_unet_families_run_the_same_move(family):
    model = tiny_unet_model(family, seed=1)
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    bank = invert(model, lat, steps=8)[1]
    out, got = sample(model, bank, move_energy(bank, MASK, dx=16), guidance_until=5, bank_start_step=1)
    assert torch.isfinite(out).all() and out.shape == lat.shape
    assert got["backwards"] == 10


def test_extreme_energy_never_gives_nan(inverted):
    model, bank = inverted
    energy = move_energy(bank, MASK, dx=16, w_edit=100.0, w_content=100.0, w_contrast=100.0, w_inpaint=100.0)
    out, _ = sample(model, bank, energy, energy_scale=100.0, guidance_until=50)
    assert torch.isfinite(out).all()


def test_model_unchanged_after_an_edit_and_after_an_interrupted_edit(inverted):
    model, bank = inverted
    before = snapshot(model)
    sample(model, bank, move_energy(bank, MASK, dx=16), preset="DiffEditor")
    assert_unchanged(model, before)
    calls = []

    def hook(value, total, preview, node_id=None):
        calls.append(value)
        if value == 7:
            comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            sample(model, bank, move_energy(bank, MASK, dx=16), preset="DiffEditor")
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)
    assert max(calls) == 7
    assert_unchanged(model, before)


def test_bad_inputs_name_the_input(inverted):
    model, bank = inverted
    with pytest.raises(InputError, match=r"^mask: is empty"):
        move_energy(bank, torch.zeros(1, 64, 64), dx=8)
    with pytest.raises(InputError, match=r"^mask: is 64x32 but the image is 8x8"):
        move_energy(bank, torch.ones(1, 32, 64), dx=8)
    with pytest.raises(InputError, match=r"^dx/dy: the move puts the whole object outside"):
        move_energy(bank, MASK, dx=200)
    with pytest.raises(InputError, match=r"^arrow: is not valid JSON"):
        move_energy(bank, MASK, arrow="[[1, 2")
    assert move_energy(bank, MASK).terms == ()  # zero-length move: an explicit no-op
    with pytest.raises(InputError, match=r"^start_step: must be below"):
        sample(model, bank, None, start_step=50)
    other = tiny_unet_model("sd15", seed=5)
    with pytest.raises(InputError, match=r"bank: was made by another model"):
        sample(other, bank, None, conds=conds_for(other))


@pytest.mark.parametrize("with_energy", [False, True])
def test_a_model_that_returns_nan_gives_a_named_error(inverted, with_energy):
    """Fuzz find (issue 9): the sampler used to turn NaN into zeros and report success."""
    model, bank = inverted
    broken = model.clone()
    broken.set_model_unet_function_wrapper(lambda apply, a: apply(a["input"], a["timestep"], **a["c"]) * float("nan"))
    energy = move_energy(bank, MASK, dx=16) if with_energy else None
    with pytest.raises(InputError, match=r"^model: its prediction became NaN/Inf at step 0"):
        sample(broken, bank, energy, guidance_until=3)


def test_arrow_overrides_dx_dy(inverted):
    _, bank = inverted
    a = move_energy(bank, MASK, arrow="[[20, 20, 36, 28]]")
    b = move_energy(bank, MASK, dx=16, dy=8)
    assert torch.equal(a.terms[0].grid.target, b.terms[0].grid.target)


def test_a_plain_ksampler_after_an_edit_is_unaffected():
    """The hooks live on the sampler's clone: afterwards the user's MODEL samples exactly as before."""
    import nodes

    with torch.inference_mode():  # as in the server: weights are inference tensors
        model = tiny_unet_model("sd15", seed=2)
        pos, neg = conds_for(model)
        lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
        before = nodes.common_ksampler(model, 1, 4, 4.0, "euler", "normal", pos, neg, {"samples": lat})[0]
        bank = invert(model, lat, 6)[1]
        sample(model, bank, move_energy(bank, MASK, dx=16), guidance_until=3, bank_start_step=1)
        after = nodes.common_ksampler(model, 1, 4, 4.0, "euler", "normal", pos, neg, {"samples": lat})[0]
        leftovers = sum(len(getattr(m, "weight_function", [])) for m in model.model.diffusion_model.modules())
    assert torch.equal(before["samples"], after["samples"])
    assert leftovers == 0


def test_preview_strides_scale_with_the_bank_and_read_every_step_below_19():
    """The node's tooltip: Preview reads every 4th step of a 50-step bank; a bank of fewer than 19 steps it samples
    whole (the stride, 4 of 50 scaled, rounds to 1)."""
    def plan(steps):
        return presets.StepPlan(presets.PRESETS["Preview"], steps, 0, presets.at(30, steps), presets.at(5, steps), True)

    assert list(plan(50).indices) == list(range(0, 50, 4))
    assert [i for i in plan(50).indices if plan(50).guided(i)] == [0, 4, 8]
    assert (plan(25).stride, plan(19).stride, plan(18).stride) == (2, 2, 1)
    assert list(plan(18).indices) == list(range(18))
