"""DragonPointsEditor: the editor's JSON state -> point pairs and a painted mask, with errors that name the input."""
import json
import math

import pytest
import torch

from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.points_editor import UI_KEY, DragonPointsEditor, paint, parse_state


def run(state, image=None):
    text = state if isinstance(state, str) else json.dumps(state)
    return DragonPointsEditor.execute(editor_state=text, image=image)


@pytest.mark.parametrize("text, arrows", [
    ("", []),
    ("[[1, 2, 3, 4]]", [(1, 2, 3, 4)]),
    ('[{"x": 1, "y": 2}, {"x": 3, "y": 4}]', [(1, 2, 3, 4)]),  # KJNodes' alternating points
    ('{"width": 8, "height": 6, "arrows": [[1, 2, 3, 4], [5, 5, 0, 0]]}', [(1, 2, 3, 4), (5, 5, 0, 0)]),
])
def test_state_forms(text, arrows):
    assert parse_state(text)[0] == arrows


@pytest.mark.parametrize("text, match", [
    ("{oops", r"^editor_state: is not valid JSON"),
    ('{"arrows": [], "colour": 1}', r"^editor_state: unknown keys \['colour'\]"),
    ('{"arrows": [[1, 2, 3]]}', r"^editor_state: 'arrows' rows must all be"),
    ('{"strokes": [{"r": 0, "pts": [[1, 1]]}]}', r"^editor_state: stroke 0 radius 'r' must be positive"),
    ('{"strokes": [{"r": 2, "pts": []}]}', r"^editor_state: stroke 0 needs a non-empty 'pts'"),
    ('{"strokes": [{"r": 2, "pts": [[1, "a"]]}]}', r"^editor_state: stroke 0 y must be a finite number"),
    ('{"width": 10.5, "height": 4}', r"^editor_state: 'width' and 'height' must be whole numbers"),
    ("42", r"^editor_state: must be a JSON object or list"),
])
def test_bad_state_is_refused_with_the_input_name(text, match):
    with pytest.raises(InputError, match=match):
        parse_state(text)


def brute_force(radius, a, b, size):
    """Pixels (column x, row y) within `radius` of segment a-b, one by one."""
    w, h = size
    out = torch.zeros(h, w)
    for y in range(h):
        for x in range(w):
            dx, dy = b[0] - a[0], b[1] - a[1]
            t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)))
            out[y, x] = math.hypot(x - a[0] - t * dx, y - a[1] - t * dy) <= radius
    return out


def test_paint_disc_capsule_and_eraser():
    disc = paint([(10.0, False, [(32.0, 32.0)])], (64, 64))
    assert torch.equal(disc, brute_force(10.0, (32, 32), (32, 32), (64, 64)))
    assert abs(float(disc.sum()) - math.pi * 100) < 10 and disc[32, 42] == 1 and disc[32, 43] == 0
    capsule = paint([(4.5, False, [(10.0, 20.0), (30.0, 20.0), (30.0, 35.0)])], (48, 40))
    expected = torch.maximum(brute_force(4.5, (10, 20), (30, 20), (48, 40)),
                             brute_force(4.5, (30, 20), (30, 35), (48, 40)))
    assert torch.equal(capsule, expected)
    erased = paint([(10.0, False, [(32.0, 32.0)]), (3.0, True, [(32.0, 32.0)])], (64, 64))
    assert erased[32, 32] == 0 and erased[32, 38] == 1
    holes = paint([(3.0, True, [(5.0, 5.0)])], (16, 16))  # the eraser alone cuts into the whole image
    assert holes[5, 5] == 0 and holes[12, 12] == 1 and float(holes.sum()) == 256 - 29  # 29 pixels within 3


def test_a_segment_taller_than_a_cancel_band_paints_without_seams():
    """The rasteriser checks Cancel every BAND_ROWS rows (a huge brush must stop within a second, test_interrupts);
    a segment spanning several bands paints exactly what the one-pixel-at-a-time reference paints."""
    from dragon_drag_edit.nodes.points_editor import BAND_ROWS

    a, b, size = (30, 10), (40, 280), (80, 300)
    assert size[1] > 2 * BAND_ROWS
    got = paint([(20.5, False, [(float(a[0]), float(a[1])), (float(b[0]), float(b[1]))])], size)
    assert torch.equal(got, brute_force(20.5, a, b, size))


def test_outputs_in_image_pixels(monkeypatch, tmp_path):
    import folder_paths

    monkeypatch.setattr(folder_paths, "temp_directory", str(tmp_path))
    image = torch.rand(1, 48, 64, 3)
    state = {"width": 64, "height": 48, "arrows": [[10, 12, 30.5, 20], [1, 2, 3, 4]],
             "strokes": [{"r": 5, "pts": [[20, 20], [40, 20]]}]}
    points, mask, handles, targets, dx, dy = run(state, image).args
    assert json.loads(points) == [[10, 12, 30.5, 20], [1, 2, 3, 4]]
    assert json.loads(handles) == [[10, 12], [1, 2]] and json.loads(targets) == [[30.5, 20], [3, 4]]
    assert (dx, dy) == (20, 8)  # the first arrow, whole pixels
    assert mask.shape == (1, 48, 64) and mask[0, 20, 30] == 1 and mask[0, 40, 30] == 0
    preview = run(state, image).ui[UI_KEY][0]
    assert preview["type"] == "temp" and (tmp_path / preview["subfolder"] / preview["filename"]).exists()


def test_a_drawing_for_another_picture_size_is_scaled_to_the_connected_image(monkeypatch, tmp_path):
    import folder_paths

    monkeypatch.setattr(folder_paths, "temp_directory", str(tmp_path))
    state = {"width": 512, "height": 512, "arrows": [[100, 200, 300, 400]],
             "strokes": [{"r": 40, "pts": [[256, 256]]}]}
    points, mask, _, _, dx, dy = run(state, torch.rand(1, 128, 256, 3)).args
    assert json.loads(points) == [[50, 50, 150, 100]]  # x by 256/512, y by 128/512
    assert (dx, dy) == (100, 50)
    assert mask.shape == (1, 128, 256) and mask[0, 64, 128] == 1 and mask[0, 64, 160] == 0


def test_without_image_the_state_size_is_used_and_nothing_painted_is_all_ones():
    points, mask, handles, targets, dx, dy = run({"width": 20, "height": 10}).args
    assert (points, handles, targets, dx, dy) == ("[]", "[]", "[]", 0, 0)
    assert mask.shape == (1, 10, 20) and bool(mask.all())


@pytest.mark.parametrize("state, match", [
    ({"arrows": [[1, 2, 3, 4]]}, r"^image: connect the picture"),
    ({"width": 20, "height": 10, "arrows": [[1, 2, 25, 4]]}, r"^editor_state: arrow 0 point \(25, 4\) is outside"),
])
def test_missing_size_or_points_outside(state, match):
    with pytest.raises(InputError, match=match):
        run(state)
