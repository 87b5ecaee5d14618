"""Point pairs (handle -> target, image pixels) from the JSON forms users have.

Accepted:
* ``[[hx, hy, tx, ty], ...]``: one pair per row (this pack's editor writes this);
* ``[[hx, hy], [tx, ty], ...]`` or ``[{"x": hx, "y": hy}, {"x": tx, "y": ty}, ...]``: points alternating
  handle, target (KJNodes' PointsEditor emits the dict form).
"""
from __future__ import annotations

import json


def parse_pairs(text: str) -> list[tuple[float, float, float, float]]:
    """Parse point pairs; raises ValueError that says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg} at character {e.pos})") from e
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
    if all(len(r) == 4 for r in rows):
        return [tuple(r) for r in rows]
    if all(len(r) == 2 for r in rows):
        if len(rows) % 2:
            raise ValueError(f"has {len(rows)} points; points alternate handle, target, so the count must be even")
        return [(*rows[k], *rows[k + 1]) for k in range(0, len(rows), 2)]
    raise ValueError("rows must all be [hx, hy, tx, ty] or all be [x, y]")
