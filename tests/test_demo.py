"""`make demo` writes its PNGs, and the demo's moved object really moved to its target."""
import math
import os

import numpy as np
from PIL import Image

from dragon_drag_edit.bench import demo, move_eval, scenes


def test_demo_moves_the_object(tmp_path):
    paths = demo.main(["--out", str(tmp_path)])
    assert all(os.path.getsize(p) > 0 for p in paths.values())
    move, _ = demo.demo_tasks()
    after = np.asarray(Image.open(paths["move_after"]), dtype=np.float32)[::demo.ZOOM, ::demo.ZOOM] / 255
    out = after.transpose(2, 0, 1) * 2 - 1
    colour = np.array(move.scene.objects[0].colour, np.float32)[:, None, None]
    hit = np.linalg.norm(out - colour, axis=0) < move_eval.COLOUR_TOL
    tx, ty = scenes.centroid(scenes.object_mask(move.target, 0))
    hx, hy = scenes.centroid(hit)
    assert math.hypot(hx - tx, hy - ty) <= 0.25 * math.hypot(move.dx, move.dy)
