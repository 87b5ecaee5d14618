"""DragonPointsEditor: the in-node editor's state (drag arrows and brush strokes) as point pairs and a mask.

The state is JSON in the ``editor_state`` widget; the frontend editor (web/js/points_editor.js) writes it and
it can be typed by hand. Coordinates are image pixels of a ``width`` x ``height`` image ((x, y) names the
pixel in column x, row y; the editor writes whole pixels)::

    {"width": 512, "height": 512,
     "arrows": [[hx, hy, tx, ty], ...],
     "strokes": [{"r": 16, "erase": false, "pts": [[x, y], ...]}, ...]}

A bare list of pairs in any form ``DragonEnergyDrag`` accepts is read as ``arrows``. When the connected image
has another size than ``width`` x ``height``, every coordinate is scaled to it (the picture was swapped).
"""
from __future__ import annotations

import json
import math

import comfy.model_management
import numpy as np
import torch
from comfy_api.latest import io, ui

from ..dragon_ops import points
from .common import EDITS, InputError, search_words

UI_KEY = "dragon_editor_image"  # not "images": the editor shows the picture, the core preview would repeat it
MAX_SIDE = 8192  # pixels per side of the drawing (and of the mask it makes)
BAND_ROWS = 128  # rows of one brush segment rasterised between two checks for Cancel
MAX_STROKES, MAX_STROKE_POINTS = 1000, 20000  # strokes, and their points altogether

STATE_HELP = (
    'JSON: {"width": W, "height": H, "arrows": [[hx, hy, tx, ty], ...], "strokes": [{"r": radius, '
    '"erase": false, "pts": [[x, y], ...]}, ...]} in image pixels, or just a list of [hx, hy, tx, ty] pairs. '
    f'At most {MAX_SIDE} pixels a side, {points.MAX_PAIRS} arrows, {MAX_STROKES} strokes and {MAX_STROKE_POINTS} '
    'stroke points.')


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"editor_state: {what} must be a finite number, got {json.dumps(value)}.")
    return float(value)


def _strokes(data) -> list[tuple[float, bool, list[tuple[float, float]]]]:
    if not isinstance(data, list):
        raise InputError("editor_state: 'strokes' must be a list of {\"r\": .., \"erase\": .., \"pts\": [[x, y]]}.")
    if len(data) > MAX_STROKES:
        raise InputError(f"editor_state: has {len(data):,} strokes; at most {MAX_STROKES:,}.")
    total = sum(len(s["pts"]) for s in data if isinstance(s, dict) and isinstance(s.get("pts"), list))
    if total > MAX_STROKE_POINTS:
        raise InputError(f"editor_state: its strokes have {total:,} points; at most {MAX_STROKE_POINTS:,}.")
    out = []
    for k, stroke in enumerate(data):
        if not isinstance(stroke, dict) or not isinstance(stroke.get("pts"), list) or not stroke["pts"]:
            raise InputError(f"editor_state: stroke {k} needs a non-empty 'pts' list of [x, y] points.")
        radius = _number(stroke.get("r"), f"stroke {k} radius 'r'")
        if radius <= 0:
            raise InputError(f"editor_state: stroke {k} radius 'r' must be positive, got {radius:g}.")
        pts = []
        for p in stroke["pts"]:
            if not isinstance(p, list) or len(p) != 2:
                raise InputError(f"editor_state: stroke {k} points must be [x, y] pairs, got {json.dumps(p)}.")
            pts.append((_number(p[0], f"stroke {k} x"), _number(p[1], f"stroke {k} y")))
        out.append((radius, bool(stroke.get("erase", False)), pts))
    return out


def parse_state(text: str) -> tuple[list[tuple[float, ...]], list, tuple[int, int] | None]:
    """(arrows, strokes, (width, height) or None) from the widget text; InputError says what is wrong."""
    if not text or not text.strip():
        return [], [], None
    try:
        data = points.load_json(text)
    except ValueError as e:
        raise InputError(f"editor_state: {e}. {STATE_HELP}") from e
    if isinstance(data, list):
        data = {"arrows": data}
    if not isinstance(data, dict):
        raise InputError(f"editor_state: must be a JSON object or list. {STATE_HELP}")
    unknown = set(data) - {"width", "height", "arrows", "strokes"}
    if unknown:
        raise InputError(f"editor_state: unknown keys {sorted(unknown)}. {STATE_HELP}")
    arrows = []
    if data.get("arrows"):
        try:
            arrows = points.parse_pairs(json.dumps(data["arrows"]))
        except ValueError as e:
            raise InputError(f"editor_state: 'arrows' {e}") from e
    size = None
    if "width" in data or "height" in data:
        w, h = _number(data.get("width"), "'width'"), _number(data.get("height"), "'height'")
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE) or w != int(w) or h != int(h):
            raise InputError(f"editor_state: 'width' and 'height' must be whole numbers from 1 to {MAX_SIDE}, got "
                             f"{w:g} x {h:g}.")
        size = (int(w), int(h))
    return arrows, _strokes(data.get("strokes", [])), size


def paint(strokes, size: tuple[int, int]) -> torch.Tensor:
    """Rasterise brush strokes (round caps and joins) into a (H, W) float mask; later strokes paint over earlier.
    Honours ComfyUI's Cancel every ``BAND_ROWS`` rows of a segment, so a huge brush stops as fast as a small one.

    With no painting stroke the mask starts all ones, so eraser strokes alone cut holes into the whole image."""
    w, h = size
    mask = np.full((h, w), 0.0 if any(not erase for _, erase, _ in strokes) else 1.0, dtype=np.float32)
    for radius, erase, pts in strokes:
        segments = list(zip(pts, pts[1:])) or [(pts[0], pts[0])]
        for (ax, ay), (bx, by) in segments:
            x0, x1 = max(int(min(ax, bx) - radius), 0), min(int(max(ax, bx) + radius) + 1, w)
            y0, y1 = max(int(min(ay, by) - radius), 0), min(int(max(ay, by) + radius) + 1, h)
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            for top in range(y0, y1, BAND_ROWS):
                comfy.model_management.throw_exception_if_processing_interrupted()
                bottom = min(top + BAND_ROWS, y1)
                ys, xs = np.mgrid[top:bottom, x0:x1].astype(np.float64)  # coordinates name pixels (their centres)
                t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0, 1) if length2 else 0.0
                inside = (xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2 <= radius * radius
                mask[top:bottom, x0:x1][inside] = 0.0 if erase else 1.0
    return torch.from_numpy(mask)


def _scaled(arrows, strokes, sx: float, sy: float):
    arrows = [(hx * sx, hy * sy, tx * sx, ty * sy) for hx, hy, tx, ty in arrows]
    strokes = [(r * math.sqrt(sx * sy), erase, [(x * sx, y * sy) for x, y in pts]) for r, erase, pts in strokes]
    return arrows, strokes


def _json(rows) -> str:
    return json.dumps([[round(v, 2) if v != int(v) else int(v) for v in row] for row in rows])


class DragonPointsEditor(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonPointsEditor",
            display_name="Dragon Points Editor",
            category=EDITS,
            **search_words("draw arrows", "drag points editor", "mask editor"),
            description=(
                "Draw the edit on the picture: drag on the canvas to draw handle->target arrows (click one to "
                "select it, drag it or its ends to move them, Delete or right-click removes it) and paint the "
                "mask with the brush. Outputs the arrows in image pixels and the painted mask at the image's "
                "size; with nothing painted the mask is all ones (the whole image) and the eraser alone cuts holes "
                "into it. The picture shows at once when a Load Image node feeds 'image', otherwise after one run."),
            inputs=[
                io.Image.Input("image", optional=True, tooltip="The picture to draw on; sets the size of the "
                               "points and the mask. Without it, the state's width and height are used."),
                io.String.Input("editor_state", default="", multiline=True, tooltip="The editor's drawing as "
                                f"JSON (written by the canvas below, or typed by hand). {STATE_HELP}"),
            ],
            outputs=[
                io.String.Output("points", display_name="points", tooltip="Handle->target pairs in image pixels, "
                                 "[[hx, hy, tx, ty], ...], for Point Drag or the Move node's 'arrow'."),
                io.Mask.Output("mask", display_name="mask", tooltip="The painted region at the image's size "
                               "(all ones when nothing is painted): the editable region for a drag, the object "
                               "for a move or paste."),
                io.String.Output("handles", display_name="handles", tooltip="Arrow starts, [[x, y], ...]: e.g. "
                                 "the Face Landmarks node's source_points."),
                io.String.Output("targets", display_name="targets", tooltip="Arrow ends, [[x, y], ...]: e.g. the "
                                 "Face Landmarks node's target_points."),
                io.Int.Output("dx", display_name="dx", tooltip="The first arrow's horizontal offset in whole pixels "
                              "(0 without arrows), e.g. for the Paste node's dx."),
                io.Int.Output("dy", display_name="dy", tooltip="The first arrow's vertical offset in whole pixels "
                              "(0 without arrows)."),
            ],
        )

    @classmethod
    def execute(cls, *, editor_state, image=None) -> io.NodeOutput:
        arrows, strokes, drawn = parse_state(editor_state)
        if image is not None:
            if not isinstance(image, torch.Tensor) or image.ndim != 4 or 0 in image.shape[:3]:
                raise InputError("image: expected an IMAGE of shape [B, H, W, C].")
            size = (int(image.shape[2]), int(image.shape[1]))
            if max(size) > MAX_SIDE:
                raise InputError(f"image: is {size[0]}x{size[1]}; the editor draws on pictures up to {MAX_SIDE} "
                                 "pixels a side.")
            if drawn and drawn != size:
                arrows, strokes = _scaled(arrows, strokes, size[0] / drawn[0], size[1] / drawn[1])
        elif drawn:
            size = drawn
        else:
            raise InputError("image: connect the picture the points are drawn on, or give \"width\" and "
                             "\"height\" in editor_state.")
        w, h = size
        for k, (hx, hy, tx, ty) in enumerate(arrows):
            for x, y in ((hx, hy), (tx, ty)):
                if not (0 <= x < w and 0 <= y < h):
                    raise InputError(f"editor_state: arrow {k} point ({x:g}, {y:g}) is outside the {w}x{h} image.")
        mask = paint(strokes, size)
        dx, dy = (round(arrows[0][2] - arrows[0][0]), round(arrows[0][3] - arrows[0][1])) if arrows else (0, 0)
        preview = ui.PreviewImage(image[:1], cls=cls).as_dict()["images"] if image is not None else []
        return io.NodeOutput(_json(arrows), mask[None], _json(a[:2] for a in arrows), _json(a[2:] for a in arrows),
                             dx, dy, ui={UI_KEY: preview})
