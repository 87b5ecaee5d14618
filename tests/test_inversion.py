"""DDIM inversion on the project's trained Shapes32 model: it must close, and close better with more steps."""
import comfy.k_diffusion.sampling
import comfy.model_management
import comfy.samplers
import comfy.utils
import numpy as np
import pytest
import torch

from dragon_drag_edit.bench import move_eval, scenes, toy_model
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank

HELD_OUT = [scenes.SEED_RANGES["test"][0] + k for k in range(4)]


def invert(model, x0, steps):
    out = DDIMInvertToMemoryBank.execute(model=model, latent={"samples": x0}, steps=steps,
                                         conditioning=toy_model.null_conditioning(), bank_precision="fp16",
                                         bank_device="cpu", **move_eval.TOY_INVERSION)
    return out.args[0]["samples"], out.args[1]


def reconstruct(model, x_t, bank):
    """Plain DDIM (eta 0) from x_T with ComfyUI's own Euler sampler on the bank's sigma ladder."""
    guider = comfy.samplers.CFGGuider(model)
    cond = toy_model.null_conditioning()
    guider.set_conds(cond, cond)
    guider.set_cfg(1.0)
    sampler = comfy.samplers.KSAMPLER(comfy.k_diffusion.sampling.sample_euler)
    return guider.sample(torch.zeros_like(x_t), x_t, sampler, bank.schedule.sampling_sigmas(), disable_pbar=True,
                         seed=0)


@pytest.fixture(scope="module")
def errors(toy):
    """Relative mean absolute reconstruction error per step count, over four held-out scenes."""
    out = {}
    for steps in (10, 25, 50):
        errs = []
        for seed in HELD_OUT:
            x0 = torch.from_numpy(scenes.render(scenes.random_scene(seed)))[None]
            x_t, bank = invert(toy, x0, steps)
            rec = reconstruct(toy, x_t, bank)
            errs.append(float((rec - x0).abs().mean() / x0.std()))
        out[steps] = float(np.mean(errs))
    return out


def test_inversion_closes_within_five_percent_at_50_steps(errors):
    # 0.040 with the committed sigma-weighted model (the first, plain-loss model reached 0.02; see bench/MODEL_CARD.md)
    assert errors[50] <= 0.05, errors


def test_inversion_error_shrinks_with_more_steps(errors):
    assert errors[10] > errors[25] > errors[50], errors


def test_inverted_latent_is_noise_like(toy):
    x0 = torch.from_numpy(scenes.render(scenes.random_scene(HELD_OUT[0])))[None]
    x_t, bank = invert(toy, x0, 50)
    sigma = bank.schedule.sigmas[0]
    assert 0.6 < float(x_t.std()) / sigma < 1.4  # x_T = x0 + sigma * eps in ComfyUI's sigma space


def test_v_prediction_model_inverts_too(toy):
    """The same network read as a v-prediction model (core ModelSamplingDiscrete node): inversion still closes."""
    from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete

    (vmodel,) = ModelSamplingDiscrete().patch(toy, "v_prediction", False)
    x0 = torch.from_numpy(scenes.render(scenes.random_scene(HELD_OUT[1])))[None]
    x_t, bank = invert(vmodel, x0, 50)
    rec = reconstruct(vmodel, x_t, bank)
    assert float((rec - x0).abs().mean() / x0.std()) < 0.05


def test_progress_bar_advances_once_per_step(toy):
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        invert(toy, torch.from_numpy(scenes.batch(HELD_OUT[:1])), 6)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert seen == [(i, 6) for i in range(1, 7)]


def test_interrupt_is_honoured(toy):
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            invert(toy, torch.from_numpy(scenes.batch(HELD_OUT[:1])), 6)
    finally:
        comfy.model_management.interrupt_current_processing(False)
