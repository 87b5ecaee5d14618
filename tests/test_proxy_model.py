"""Issue 18 (foundation): the ShapesDrag v2 scene generator, the proxy model's tokenizer and text encoder, its
resumable training, and the model through ComfyUI's own classes with its prompt reaching the UNet."""
import os
import pathlib

import numpy as np
import pytest
import safetensors.torch
import torch

from dragon_drag_edit.bench import proxy_model, scenes2
from dragon_drag_edit.bench.scripts import train_proxy


def test_scenes_are_pure_functions_of_their_seed():
    a, b = scenes2.random_scene(123), scenes2.random_scene(123)
    assert a == b and np.array_equal(scenes2.render(a), scenes2.render(b))
    img = scenes2.render(a)
    assert img.shape == (3, scenes2.SIZE, scenes2.SIZE) and img.dtype == np.float32 and np.abs(img).max() <= 1


def test_held_out_families_never_reach_training_and_lead_held_out_scenes():
    held = set(scenes2.HELD_OUT_SHAPES) | set(scenes2.HELD_OUT_FILLS)
    train = [scenes2.random_scene(10_000_000 + s) for s in range(400)]
    assert not any(o.shape in held or o.fill in held for sc in train for o in sc.objects)
    seen = {o.shape for sc in train for o in sc.objects} | {o.fill for sc in train for o in sc.objects}
    assert seen == set(scenes2.TRAIN_SHAPES) | set(scenes2.TRAIN_FILLS)  # every training family is drawn
    tests = [scenes2.random_scene(s, held_out=True) for s in range(200)]
    assert all(sc.objects[0].shape in held or sc.objects[0].fill in held for sc in tests)
    assert {sc.objects[0].shape for sc in tests} >= set(scenes2.HELD_OUT_SHAPES)
    assert not any(o.shape in held or o.fill in held for sc in tests for o in sc.objects[1:])


def test_prompts_name_every_object_and_the_background():
    sc = scenes2.random_scene(7, n_objects=3)
    words = sc.prompt().split()
    for o in sc.objects:
        assert o.colour in words and o.shape in words
    assert sc.bg_colours[0] in words and words[-1] == "background"


def test_every_family_draws_a_solid_object_and_moves_with_it():
    for shape in scenes2.TRAIN_SHAPES + scenes2.HELD_OUT_SHAPES:
        o = scenes2.Obj(shape, 20.0, 22.0, 9.0, 0.3, scenes2._family_params(shape, np.random.default_rng(0)), "red")
        sc = scenes2.Scene("flat", ("gray", "beige"), 0.0, 0, (o,))
        m, moved = scenes2.object_mask(sc, 0), scenes2.object_mask(sc.moved(0, 6, -4), 0)
        assert 20 <= m.sum() <= np.pi * 9.5 ** 2, shape  # neither empty nor larger than its circle
        assert np.array_equal(np.roll(m, (-4, 6), axis=(0, 1)), moved), shape  # a move is a pure translation


def test_tokenizer_and_text_encoder():
    ids = proxy_model.tokenize(["a red star on a gray background", "", "a red zebra"])
    vocab = {w: k for k, w in enumerate(proxy_model.VOCAB)}
    assert ids[0, :7].tolist() == [vocab[w] for w in "a red star on a gray background".split()]
    assert ids[1].eq(0).all() and ids[2, 2] == vocab["<unk>"] and ids.shape == (3, proxy_model.TOKENS)
    ctx = train_proxy.build(0)[1](ids)  # freshly initialised as training starts (ComfyUI's layers skip init)
    assert ctx.shape == (3, proxy_model.TOKENS, proxy_model.CONTEXT_DIM)
    assert (ctx[0] - ctx[1]).abs().max() > 0.1  # a prompt is not the empty prompt


def _train(tmp_path, name, *argv):
    ck, w = str(tmp_path / f"{name}.safetensors"), str(tmp_path / f"{name}_weights.safetensors")
    return train_proxy.main(["--batch", "2", "--threads", "1", "--checkpoint", ck, "--weights", w, "--log-every",
                             "1", *argv]), ck, w


def test_training_resumes_bit_for_bit(tmp_path):
    straight, _, w_straight = _train(tmp_path, "a", "--until", "4")
    _train(tmp_path, "b", "--until", "2")
    # the second sitting's scenes rendered ahead by two worker processes: the same batches, so the same weights
    resumed, ck, w_resumed = _train(tmp_path, "b", "--until", "4", "--workers", "2")
    assert straight["step"] == resumed["step"] == 4
    assert [row[1] for row in straight["log"]] == [row[1] for row in resumed["log"]]  # the same losses
    a, b = safetensors.torch.load_file(w_straight), safetensors.torch.load_file(w_resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    before = os.stat(ck).st_mtime_ns, pathlib.Path(ck).read_bytes()
    again, _, _ = _train(tmp_path, "b", "--until", "4")  # already there: nothing trained, nothing rewritten
    assert again["step"] == 4 and (os.stat(ck).st_mtime_ns, pathlib.Path(ck).read_bytes()) == before


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """The proxy as ``proxy_model.load`` reads it, from weights in the trained file's layout: random, with no
    zero-initialised output layer, so the prompt's path through cross-attention is open from the start."""
    from dragon_drag_edit.bench.sd_random import init_weights_

    unet, text, _ = train_proxy.build(0)
    init_weights_(unet, 1)
    state = {**unet.state_dict(), **{f"text.{k}": v for k, v in text.state_dict().items()}}
    path = str(tmp_path_factory.mktemp("proxy") / "w.safetensors")
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    return proxy_model.load(path)


def test_the_proxy_is_a_comfyui_model_whose_prompt_reaches_the_unet(proxy):
    model, text = proxy
    x = torch.randn(1, 3, scenes2.SIZE, scenes2.SIZE, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([2.0])
    out = {}
    for prompt in ("a red star on a gray background", "a blue ring on a teal background", ""):
        ctx = proxy_model.encode(text, prompt)[0][0]
        out[prompt] = model.model.apply_model(x, sigma, c_crossattn=ctx)  # the BaseModel ComfyUI samples with
    assert out[""].shape == x.shape
    assert (out["a red star on a gray background"] - out[""]).abs().max() > 1e-4  # CFG has something to scale
    assert (out["a red star on a gray background"] - out["a blue ring on a teal background"]).abs().max() > 1e-4


def test_the_space_to_depth_architecture_round_trips_through_comfyui_nodes(tmp_path):
    """The space-to-depth architecture (s2d24): VAEEncode / VAEDecode of its VAE give the picture back exactly, its
    latent is the training latent of the scene, the saved weights load as that architecture, and a checkpoint
    refuses to resume as the other one."""
    import nodes as comfy_nodes

    scene = scenes2.random_scene(7, held_out=True)
    picture = torch.from_numpy(scenes2.to_image(scenes2.render(scene)))[None]
    vae = proxy_model.vae("s2d24")
    (latent,) = comfy_nodes.VAEEncode().encode(vae, picture)
    assert latent["samples"].shape == (1, 12, scenes2.SIZE // 2, scenes2.SIZE // 2)
    assert torch.allclose(latent["samples"], proxy_model.to_latent("s2d24", torch.from_numpy(
        scenes2.render(scene))[None]), atol=1e-6)
    (back,) = comfy_nodes.VAEDecode().decode(vae, latent)
    assert (back - picture).abs().max() < 1e-6
    _train(tmp_path, "s2d", "--arch", "s2d24", "--until", "1")
    model, _ = proxy_model.load(str(tmp_path / "s2d_weights.safetensors"))
    assert proxy_model.model_arch(model) == "s2d24"
    assert model.model.latent_format.latent_channels == 12
    x = torch.randn(1, 12, scenes2.SIZE // 2, scenes2.SIZE // 2)
    assert model.model.apply_model(x, torch.tensor([2.0]), c_crossattn=torch.zeros(1, 24, 64)).shape == x.shape
    with pytest.raises(SystemExit, match="--arch: .* trains s2d24, not pixel48"):
        _train(tmp_path, "s2d", "--until", "2")


def test_the_large_architecture_trains_loads_and_is_judged_as_itself(tmp_path):
    """large48, the larger model a lent GPU trains (bench/gpu_train.sh): the same pixels in, so its weights must load
    as large48 and not as pixel48; the pack finds its bank layers at both attention levels and its two taps; and
    ShapesDrag v2 runs a guided move with it (``--weights``), as the first GPU sitting's fp16 EMA will be judged."""
    from dragon_drag_edit.bench import shapesdrag2
    from dragon_drag_edit.dragon_ops import unet_map

    _, ck, weights = _train(tmp_path, "large", "--arch", "large48", "--until", "1", "--weights-dtype", "fp16")
    assert os.path.getsize(weights) < 16 * 2**20 < os.path.getsize(ck)  # the EMA comes back from a lent machine
    model, text = proxy_model.load(weights)
    assert {p.dtype for p in [*model.model.parameters(), *text.parameters()]} == {torch.float32}
    with pytest.raises(ValueError, match=r"weights of no proxy architecture .*\(5, 64, 1\)"):
        proxy_model.arch_of({"input_blocks.0.0.weight": torch.zeros(32, 5, 3, 3),
                             "middle_block.0.in_layers.0.weight": torch.zeros(64)})
    assert proxy_model.model_arch(model) == "large48" and proxy_model.is_pixel("large48")
    assert sum(p.numel() for p in model.model.diffusion_model.parameters()) > 3 * 1_687_075  # pixel48's UNet
    layout = unet_map.map_unet(model.model.diffusion_model)
    assert sorted({layer.factor for layer in layout.bank_layers}) == [2, 4] and layout.tap_factors == (2, 1)
    assert layout.tap_channels == (128, 64)  # pixel48: (64, 64)
    shapesdrag2.main(["--scenes", "1", "--steps", "3", "--modes", "move", "--variants", "ours, DragonDiffusion",
                      "--weights", weights, "--out", str(tmp_path)])
    assert "| move | held-out | ours, DragonDiffusion |" in (tmp_path / "shapesdrag2_large_weights.md").read_text()


PROMPT_PAIRS = [(shape, a, b) for shape in ("disc", "triangle", "star", "cross")  # star, cross: held out
                for a, b in (("red", "blue"), ("yellow", "purple"), ("green", "pink"))]


def test_samples_take_the_colour_their_prompt_names():
    """Must-show 1 of issue 18, the part this checkpoint meets: a DDIM sample (CFG 4) from "a red disc on a gray
    background" has more red pixels than one from "a blue disc ..." at the same seed, for training and held-out
    shape words (measured at step 7,000: 21 of 24 comparisons, 110 pixels of the named colour on average against
    0). The shape word's part is the next test."""
    from dragon_drag_edit.bench import proxy_samples

    if not os.path.exists(proxy_model.WEIGHTS):
        pytest.skip("no ShapesText48 weights yet: make train-proxy")
    model, text = proxy_model.load()
    wins, named, other = 0, [], []
    for seed, (shape, a, b) in enumerate(PROMPT_PAIRS):
        pics = {c: proxy_samples.sample(model, text, f"a {c} {shape} on a gray background", seed, steps=20)
                for c in (a, b)}
        for c, d in ((a, b), (b, a)):
            named.append(proxy_samples.colour_pixels(pics[c], c))
            other.append(proxy_samples.colour_pixels(pics[d], c))
            wins += named[-1] > other[-1]
    assert wins >= 0.75 * len(named), (wins, named, other)
    assert np.mean(named) > 3 * np.mean(other) + 10, (named, other)


def test_samples_are_rounder_for_disc_than_for_triangle():
    """Must-show 1 of issue 18, the shape word: at the same seed and colour, what the model draws for "a red disc
    on a gray background" is rounder (area over its circumscribed circle's) than what it draws for "a red
    triangle ...". Measured at step 7,000 over 12 seeds: disc 0.722, rectangle 0.396, triangle 0.340 (rendered
    objects: 0.87, 0.52, 0.43), the disc rounder at 9 of the 9 seeds where both drew a region."""
    from dragon_drag_edit.bench import proxy_samples

    if not os.path.exists(proxy_model.WEIGHTS):
        pytest.skip("no ShapesText48 weights yet: make train-proxy")
    model, text = proxy_model.load()
    rounds = proxy_samples.shape_following(model, text, 8, words=("disc", "triangle"))
    pairs = proxy_samples.disc_triangle_pairs(rounds)
    assert len(pairs) >= 5 and sum(d > t for d, t in pairs) >= 0.8 * len(pairs), rounds
    assert np.mean([d for d, _ in pairs]) > np.mean([t for _, t in pairs]) + 0.2, rounds


def test_the_loss_plot_marks_each_sitting_and_draws_the_curve():
    from dragon_drag_edit.bench import loss_plot

    log = [[50, 1.0, 10.0], [100, 0.5, 20.0], [150, 0.4, 5.0], [200, 0.3, 9.0], [250, 0.2, 2.0]]
    assert loss_plot.sittings(log) == [100, 200]  # the rows at 150 and 250 open a sitting
    for rows, first in ((log, 0), ([[r[0], 100 * r[1] ** 4, r[2]] for r in log], 0), (log[:1], 0), (log, 100)):
        pixels = np.asarray(loss_plot.plot(rows, "test", first))  # linear, log scale, one row, a later start
        assert pixels.shape == (loss_plot.SIZE[1], loss_plot.SIZE[0], 3)
        assert (pixels[:, : loss_plot.MARGIN[0]] == (30, 80, 200)).all(-1).sum() == 0  # nothing left of the axes
    pixels = np.asarray(loss_plot.plot(log, "test"))
    assert (pixels == (30, 80, 200)).all(-1).sum() > 100  # the curve
    dashes = (pixels == (200, 120, 40)).all(-1)
    assert len(set(np.nonzero(dashes)[1])) == 2  # one dashed column per new sitting
