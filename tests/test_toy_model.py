"""The committed Shapes32 model: loads fast, samples look like the training scenes, inversion reconstructs."""
import numpy as np
import torch

from dragon_drag_edit.bench import eval_toy, move_eval, scenes, toy_model


def test_loads_as_a_comfyui_model():
    import comfy.model_patcher

    model = toy_model.load_model()  # its load time is measured by `bench/run.py eval_toy`, not asserted here
    assert isinstance(model, comfy.model_patcher.ModelPatcher)
    assert type(model.model.latent_format).__name__ == "ChromaRadiance"
    assert model.model.model_type.name == "EPS"


def test_samples_look_like_training_scenes(toy):
    samples = eval_toy.sample(toy, 96, seed=1)
    share = eval_toy.valid_share(samples, eval_toy.generator_ranges())
    assert share >= 0.8, share


def test_the_validity_score_rejects_noise():
    noise = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert eval_toy.valid_share(noise, eval_toy.generator_ranges()) < 0.2


def test_inversion_reconstructs_held_out_scenes_above_30_db(toy):
    psnr = eval_toy.inversion_psnr(toy, [scenes.SEED_RANGES["test"][0] + 1000 + k for k in range(8)],
                                   **move_eval.TOY_INVERSION)
    assert np.mean(psnr) >= 30.0, psnr
