"""ShapesDrag v2 (issue 18): tasks on both family sets, the metrics against ground truth, and the pixel-operation
reference, which a metric of ghosts must see."""
import os

import numpy as np
import pytest
import torch
from scipy import ndimage

from dragon_drag_edit.bench import scenes2
from dragon_drag_edit.bench import shapesdrag2_tasks as t2


@pytest.mark.parametrize("held_out", [False, True])
@pytest.mark.parametrize("mode", t2.MODES)
def test_ground_truth_scores_perfectly(mode, held_out):
    for task in t2.tasks(mode, 3, seed0=1000, held_out=held_out):
        m = t2.metrics(task, scenes2.render(task.target))
        assert m["shape_iou"] > 0.97 and m["centroid_error"] < 0.5 and m["ghost"] == 0.0, (mode, m)
        assert m["bg_drift"] == 0.0 and m["bg_psnr"] >= 99 and m["colour_error"] == 0.0
        edited = task.target.objects[task.index]
        held = edited.shape in scenes2.HELD_OUT_SHAPES or edited.fill in scenes2.HELD_OUT_FILLS
        assert held == held_out


def test_pixel_operation_leaves_the_ghost_the_metrics_must_see():
    moves = t2.tasks("move", 6, seed0=2000, held_out=True)
    scores = [t2.metrics(task, t2.pixel_operation(task)) for task in moves]
    assert all(s["ghost"] > 0.05 for s in scores)  # the source is left where it was
    assert np.mean([s["shape_iou"] for s in scores]) < 0.75  # ... and it counts against the shape
    assert all(s["centroid_error"] > 1.0 for s in scores)
    for task in t2.tasks("appearance", 4, seed0=2000, held_out=True):  # recolouring keeps the outline exactly
        s = t2.metrics(task, t2.pixel_operation(task))
        assert s["shape_iou"] > 0.9 and s["ghost"] == 0.0 and s["bg_psnr"] > 50  # only anti-aliased edges differ


@pytest.fixture(scope="module")
def runner():
    from dragon_drag_edit.bench import proxy_model, shapesdrag2

    if not os.path.exists(proxy_model.WEIGHTS):
        pytest.skip("no ShapesText48 weights yet: make train-proxy")
    return shapesdrag2.Runner(steps=4)


@pytest.mark.parametrize("mode", ["move", "paste", "appearance", "drag"])
def test_every_variant_runs_on_the_proxy(runner, mode):
    from dragon_drag_edit.bench import shapesdrag2

    task = t2.tasks(mode, 1, seed0=3000, held_out=True)[0]
    out = runner.run_task(task)
    assert set(out) == set(shapesdrag2.VARIANTS)
    for name, (img, _) in out.items():
        assert img.shape == (3, scenes2.SIZE, scenes2.SIZE) and np.isfinite(img).all(), name
        m = t2.metrics(task, img)
        assert all(np.isfinite(v) for v in m.values()), name
    assert out["ours, DragonDiffusion"][1]["backwards"] > 0 and out["guidance off"][1]["backwards"] == 0
    (b, _), (c, _) = out["(b) pixel operation"], out["(c) pixel + inpaint"]
    vacated = ndimage.binary_dilation(task.source_mask() & ~task.target_mask(), iterations=1)
    assert np.abs(c - b)[:, ~vacated].max() < 1e-5  # the inpainting touches only the vacated area
    if vacated.any():  # paste and appearance vacate nothing: (c) is (b)
        assert np.abs(c - b)[:, vacated].max() > 1e-3


def test_other_weights_write_their_own_results(tmp_path):
    """``--weights`` (a candidate judge) names its results after the file, so the judge's results stay."""
    import shutil

    from dragon_drag_edit.bench import proxy_model, shapesdrag2

    weights = shutil.copy(proxy_model.WEIGHTS, tmp_path / "candidate.safetensors")
    shapesdrag2.main(["--scenes", "1", "--steps", "2", "--modes", "paste", "--variants", "(b) pixel operation",
                      "--weights", str(weights), "--out", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["candidate.safetensors", "shapesdrag2_candidate.json",
                                            "shapesdrag2_candidate.md"]
    assert "(weights candidate.safetensors)" in (tmp_path / "shapesdrag2_candidate.md").read_text()


def test_generated_picture_metrics_score_the_ideal_move_perfectly():
    from dragon_drag_edit.bench import shapesdrag2_generated as gen

    colour, rgb = "red", scenes2._rgb("red", scenes2.COLOURS)[:, :, 0]
    picture = np.full((3, 48, 48), -0.2, np.float32)
    source = np.zeros((48, 48), bool)
    source[10:20, 10:20] = True
    picture[:, source] = rgb
    target = gen.shifted(source, 8, 5)
    ideal = np.full_like(picture, -0.2)
    ideal[:, target] = rgb
    assert np.array_equal(gen.found(picture, colour), source) and gen.shifted(source, 40, 0) is None
    m = gen.metrics(picture, ideal, source, target, colour)
    assert m["shape_iou"] == 1.0 and m["centroid_error"] == 0.0 and m["ghost"] == 0.0 and m["bg_psnr"] == 100.0
    left = gen.metrics(picture, picture, source, target, colour)  # nothing moved: the object stayed
    assert left["shape_iou"] < 0.5 and left["ghost"] == 1.0 and left["centroid_error"] > 9


def test_the_generated_picture_benchmark_runs_on_the_proxy(runner):
    from dragon_drag_edit.bench import shapesdrag2_generated as gen

    rows, skipped = gen.run(n_scenes=1, steps=4)
    assert {name for _, name in rows} == set(gen.VARIANTS) and set(skipped) == {"training", "held-out"}
    assert all(r["n"] == 1 and np.isfinite(r["shape_iou"]) for r in rows.values())
    assert rows[("training", "ours, DragonDiffusion")]["backwards"] > 0


def test_psnr_and_iou_of_the_benchmarks():
    ref = np.zeros((3, 8, 8), np.float32)
    assert t2.psnr(ref + 0.2, ref) == pytest.approx(20.0)  # an error of 0.1 on the [0, 1] scale
    assert t2.psnr(ref, ref) == pytest.approx(100.0)  # the floor: identical pictures
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2], b[1:3] = True, True
    assert t2.iou(a, b) == pytest.approx(4 / 12) and t2.iou(a, a) == 1.0 and t2.iou(~a & a, ~a & a) == 0.0


def test_empty_edits_on_the_proxy_the_bank_holds_the_picture_and_cfg_4_drifts(runner):
    """What bench/results/proxy_reconstruction.md reports at 50 steps (README, the proxy model), at 10 steps on two
    held-out scenes (measured: CFG 1 23.3 dB with the bank, 21.0 without; CFG 4 19.3 and 17.0; with the inversion's
    ``refine`` 1, CFG 1 29.1 dB)."""
    from dragon_drag_edit.bench import proxy_reconstruction as pr

    rows = pr.run([pr.proxy_model.WEIGHTS], 2, [1.0, 4.0], [5, 50], 10)
    mean = {(cfg, b): float(np.mean([db for db, _ in v])) for (_, cfg, b), v in rows.items()}
    for cfg in (1.0, 4.0):
        assert mean[(cfg, 5)] > mean[(cfg, 50)] + 1.5, mean  # the bank's attention keeps the picture closer
    assert mean[(4.0, 5)] < mean[(1.0, 5)] - 2.0, mean  # the paper's CFG moves the picture away from its inversion
    (refined,) = pr.run([pr.proxy_model.WEIGHTS], 2, [1.0], [5], 10, refine=1).values()
    assert np.mean([db for db, _ in refined]) > mean[(1.0, 5)] + 3.0, (refined, mean)  # part is inversion error


def test_with_refine_1_an_empty_edit_on_the_proxy_meets_issue_18s_reconstruction_target(runner):
    """Issue 18 must-show 1, its numbers: inversion with ``refine`` 1 (one switch from the paper's plain DDIM), then
    an empty edit at CFG 1, 50 steps, gives 8 held-out-family scenes back at >= 35 dB mean PSNR and held-out object
    IoU >= 0.9 (bench/results/proxy_reconstruction_step11462.md, measured on the judge: 39.2 dB, 0.927; with the
    paper's ``refine`` 0 the same scenes give 33.2 dB, 0.770, below the target)."""
    from dragon_drag_edit.bench import proxy_reconstruction as pr

    (values,) = pr.run([pr.proxy_model.WEIGHTS], 8, [1.0], [pr.paper.BANK_FROM], pr.paper.STEPS, refine=1).values()
    db, iou = np.array(values).T
    assert db.mean() >= 35.0 and iou.mean() >= 0.9, values


def test_on_the_proxy_the_papers_start_noise_breaks_the_picture_and_fresh_vacated_noise_does_not():
    """The finding behind ShapesDrag v2's low scores (README, ShapesDrag v2): the proxy's inverted start noise keeps
    its objects (inside them it is far stronger than elsewhere), so the paper's start noise for a move, which
    leaves the object's inverted noise in place and copies it to the target, starts two of them and the whole
    picture breaks up; with this pack's fresh vacated noise it does not. Guidance off, to see the start noise
    alone; 20 steps, 3 held-out-family moves (measured: start-noise std inside the object 2.0-3.0x outside it;
    background 16.2 dB with the paper's start noise, 20.1 with fresh vacated noise)."""
    from dragon_drag_edit.bench import proxy_model, shapesdrag2

    if not os.path.exists(proxy_model.WEIGHTS):
        pytest.skip("no ShapesText48 weights yet: make train-proxy")
    runner = shapesdrag2.Runner(steps=20)
    bg, ratio = {"guidance off": [], "guidance off, pack's start noise": []}, []
    for task in t2.tasks("move", 3, seed0=200_000, held_out=True):
        bank = runner.bank(task.scene)
        z_t, obj = bank.latents[-1, 0], torch.from_numpy(scenes2.object_mask(task.scene, 0))
        ratio.append(float(z_t[:, obj].std() / z_t[:, ~obj].std()))
        for name in bg:
            variant = shapesdrag2.GUIDED[name]
            img, _ = runner.guided(task, bank, runner.energy(task, bank, None, variant.pack_noise), variant.settings)
            bg[name].append(t2.metrics(task, img)["bg_psnr"])
    assert min(ratio) > 1.3, ratio
    paper, pack = np.mean(bg["guidance off"]), np.mean(bg["guidance off, pack's start noise"])
    assert pack > paper + 2.0, bg
