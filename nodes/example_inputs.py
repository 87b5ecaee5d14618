"""The example workflows' input pictures (``example_workflows/input/``), copied into ComfyUI's input folder when
the pack loads, so that a template opens with its Load Image filled and the points editor shows the picture at
once. A file of the same name that is already there is never replaced."""
from __future__ import annotations

import logging
import os
import shutil

log = logging.getLogger("dragon_drag_edit")
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_workflows", "input")


def install(dest: str | None = None) -> list[str]:
    """Copy each picture missing from ``dest`` (ComfyUI's input folder); returns the names copied."""
    if dest is None:
        import folder_paths

        dest = folder_paths.get_input_directory()
    copied = []
    for name in sorted(os.listdir(SOURCE)):
        target = os.path.join(dest, name)
        if not name.endswith(".png") or os.path.lexists(target):
            continue
        try:
            os.makedirs(dest, exist_ok=True)
            with open(os.path.join(SOURCE, name), "rb") as src, open(target, "xb") as out:
                shutil.copyfileobj(src, out)
        except OSError as e:  # a read-only or vanished input folder: the templates then need the user's pictures
            log.warning("Dragon Drag Edit: could not copy the example picture %s into %s (%s)", name, dest, e)
            continue
        copied.append(name)
    if copied:
        log.info("Dragon Drag Edit: example pictures copied into %s: %s", dest, ", ".join(copied))
    return copied
