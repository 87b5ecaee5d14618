"""The ShapesDrag benchmark's tasks and metrics are sound, and one mode runs end to end with every variant."""
import numpy as np
import pytest

from dragon_drag_edit.bench import scenes, shapesdrag, shapesdrag_tasks


@pytest.mark.parametrize("mode", shapesdrag_tasks.MODES)
def test_tasks_are_held_out_and_ground_truth_scores_perfectly(mode):
    tasks = shapesdrag_tasks.tasks(mode, 3)
    assert len({id(t) for t in tasks}) == 3
    for t in tasks:
        m = shapesdrag_tasks.metrics(t, scenes.render(t.target))
        # anti-aliased edges are not "the object's colour", so even the exact target scores a little below 1
        assert m["centroid_error"] < 1.0 and m["iou"] > 0.8 and m["colour_error"] < 1e-6 and m["bg_psnr"] >= 99
        assert t.region().any() and not t.region().all()
    lo, hi = scenes.SEED_RANGES["bench"]
    assert lo <= shapesdrag_tasks.MODE_SEEDS[mode] < hi - 10_000


def test_unedited_input_scores_worse_than_the_target():
    for mode in ("move", "paste", "appearance"):
        t = shapesdrag_tasks.tasks(mode, 1)[0]
        m = shapesdrag_tasks.metrics(t, scenes.render(t.scene))
        assert m["iou"] < 0.5 and m["colour_error"] > 0.01


def test_one_mode_runs_every_variant(tmp_path):
    rows = shapesdrag.main(["--scenes", "1", "--modes", "move", "--out", str(tmp_path),
                            "--sheet", str(tmp_path / "sheet.png")])
    variants = [v for v in shapesdrag.VARIANTS if shapesdrag.applies("move", v)]
    assert set(rows) == {("move", v) for v in variants} and len(variants) == len(shapesdrag.VARIANTS) - 1
    assert all(np.isfinite(list(r.values())).all() for r in rows.values())
    assert rows[("move", "(a) copy-paste")]["backwards"] == 0 and rows[("move", "ours")]["backwards"] > 0
    assert (tmp_path / "shapesdrag.md").read_text().count("| move |") == len(variants)
    assert (tmp_path / "sheet.png").stat().st_size > 0
