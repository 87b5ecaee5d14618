"""Point pairs (handle -> target, image pixels) from the JSON forms users have.

Accepted:
* ``[[hx, hy, tx, ty], ...]``: one pair per row (this pack's editor writes this);
* ``[[hx, hy], [tx, ty], ...]`` or ``[{"x": hx, "y": hy}, {"x": tx, "y": ty}, ...]``: points alternating
  handle, target (KJNodes' PointsEditor emits the dict form).
"""
from __future__ import annotations

import json
import math

MAX_TEXT = 1_000_000  # characters of point JSON
MAX_PAIRS = 256  # handle -> target pairs in one edit (68 face landmarks; drags use a handful)


def load_json(text: str):
    """``json.loads`` bounded in size and depth; raises ValueError that says what is wrong."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"is {len(text):,} characters long; at most {MAX_TEXT:,}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg} at character {e.pos})") from e
    except RecursionError as e:
        raise ValueError("is nested too deeply to be point JSON") from e


def parse_pairs(text: str) -> list[tuple[float, float, float, float]]:
    """Parse point pairs (at most ``MAX_PAIRS``, finite coordinates); raises ValueError that says what is wrong."""
    data = load_json(text)
    if not isinstance(data, list) or not data:
        raise ValueError("must be a non-empty JSON list of point pairs, e.g. [[hx, hy, tx, ty]]")
    if all(isinstance(p, dict) for p in data):
        try:
            data = [[float(p["x"]), float(p["y"])] for p in data]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError("point objects need numeric 'x' and 'y'") from e
    try:
        rows = [[float(v) for v in row] for row in data]
    except (TypeError, ValueError) as e:
        raise ValueError("every point must be a list of numbers") from e
    if not all(math.isfinite(v) for r in rows for v in r):
        raise ValueError("every coordinate must be a finite number (got NaN, Infinity or a number out of range)")
    if all(len(r) == 4 for r in rows):
        pairs = [tuple(r) for r in rows]
    elif all(len(r) == 2 for r in rows):
        if len(rows) % 2:
            raise ValueError(f"has {len(rows)} points; points alternate handle, target, so the count must be even")
        pairs = [(*rows[k], *rows[k + 1]) for k in range(0, len(rows), 2)]
    else:
        raise ValueError("rows must all be [hx, hy, tx, ty] or all be [x, y]")
    if len(pairs) > MAX_PAIRS:
        raise ValueError(f"has {len(pairs):,} point pairs; at most {MAX_PAIRS:,}")
    return pairs


def pose_face_points(pose) -> tuple[list[tuple[float, float]], tuple[int, int]]:
    """Face landmarks of the first person of the first frame of a POSE_KEYPOINT value (ControlNet-aux's
    OpenPose/DWPose format), in pixels, and the canvas size (width, height).

    Coordinates are scaled by the canvas size when all of them lie in [0, 1] (normalised output)."""
    frame = pose[0] if isinstance(pose, list) and pose else pose
    if not isinstance(frame, dict):
        raise ValueError("is not a POSE_KEYPOINT value (expected a list of {'people': [...], 'canvas_width': ...})")
    people = frame.get("people") or []
    flat_pts = (people[0].get("face_keypoints_2d") or []) if people else []
    if len(flat_pts) < 3:
        raise ValueError("has no face keypoints; run a face-enabled OpenPose/DWPose detector")
    size = (int(frame.get("canvas_width", 0)), int(frame.get("canvas_height", 0)))
    pts = [(float(flat_pts[k]), float(flat_pts[k + 1])) for k in range(0, len(flat_pts) - 2, 3)]
    if all(0 <= x <= 1 and 0 <= y <= 1 for x, y in pts):
        if not all(size):
            raise ValueError("has normalised coordinates but no canvas_width/canvas_height")
        pts = [(x * size[0], y * size[1]) for x, y in pts]
    return pts, size


def parse_points(text: str) -> list[tuple[float, float]]:
    """A JSON list of points, [[x, y], ...] or [{"x": .., "y": ..}, ...]."""
    data = load_json(text)
    try:
        if not isinstance(data, list):
            raise TypeError
        pts = [(float(p["x"]), float(p["y"])) if isinstance(p, dict) else (float(p[0]), float(p[1])) for p in data]
    except (TypeError, KeyError, IndexError, ValueError) as e:
        raise ValueError('must be a JSON list of points, [[x, y], ...] or [{"x": .., "y": ..}, ...]') from e
    if not all(math.isfinite(v) for p in pts for v in p):
        raise ValueError("every coordinate must be a finite number")
    if len(pts) > MAX_PAIRS:
        raise ValueError(f"has {len(pts):,} points; at most {MAX_PAIRS:,}")
    return pts
