"""On the trained Shapes32 model, appearance replacement recolours the object and keeps its outline (scenes from
the test range, not the benchmark's)."""
import numpy as np

from dragon_drag_edit.bench import scenes, shapesdrag, shapesdrag_tasks


def test_appearance_beats_copy_paste_and_the_papers_mean_match(toy):
    runner = shapesdrag.Runner(toy)
    names = ("ours", "(a) copy-paste", "(h) paper's appearance")
    got = {name: [] for name in names}
    for task in shapesdrag_tasks.tasks("appearance", 4, seed0=scenes.SEED_RANGES["test"][0] + 4000):
        bank, ref = runner.bank(task.scene), runner.bank(task.reference)
        for name in names:
            out, _, _ = runner.edit(task, bank, ref, shapesdrag.VARIANTS[name])
            got[name].append(shapesdrag_tasks.metrics(task, out))
    mean = {name: {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} for name, ms in got.items()}
    print(mean)  # committed model: colour error 0.090 / 0.164 / 0.148, IoU 0.69 / 0.26 / 0.35
    ours, naive, paper = (mean[n] for n in names)
    assert ours["colour_error"] < naive["colour_error"] and ours["colour_error"] < paper["colour_error"]
    assert ours["iou"] > naive["iou"] and ours["iou"] > paper["iou"]  # the object's own outline, recoloured
