"""Regenerate the README screenshots and the template thumbnails in a real browser:
docs/workflow_<mode>.png, docs/editor_*.png and example_workflows/<name>.jpg.

    .dev/venv/bin/python tests/browser/make_screenshots.py

Starts a ComfyUI server with its frontend on 127.0.0.1 (tiny checkpoint, the examples' pictures at 512 x 512)
and drives Chromium through screenshots.mjs; needs what tests/test_browser.py needs (`make setup`).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
THUMB_SIZE = 512


def main() -> None:
    spec = importlib.util.spec_from_file_location("_dragon_bootstrap", ROOT / "bench" / "bootstrap.py")
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    bootstrap.setup_comfy()
    bootstrap.load_pack()
    sys.path.insert(0, str(HERE.parent))
    from PIL import Image

    import dd_workflows
    from dd_server import ComfyServer

    docs = ROOT / "docs"
    examples = dd_workflows.load_examples()
    with tempfile.TemporaryDirectory() as tmp, ComfyServer(Path(tmp) / "srv", frontend=True) as server:
        dd_workflows.write_pictures(server.base / "input")
        config = {"url": server.url, "chromium": shutil.which("chromium"), "workflows": examples, "out": str(docs),
                  "thumbs": tmp, "playwright": str(ROOT / ".dev/node/node_modules/playwright-core/index.mjs")}
        subprocess.run(["node", str(HERE / "screenshots.mjs"), json.dumps(config)], check=True)
        for name in examples:  # the templates browser shows <name>.jpg in a square card
            with Image.open(Path(tmp) / f"{name}.png") as shot:
                thumb = shot.convert("RGB").resize((THUMB_SIZE, THUMB_SIZE), Image.LANCZOS)
                thumb.save(os.path.join(dd_workflows.EXAMPLES, name + ".jpg"), quality=85)
    print(f"wrote {len(examples)} workflow screenshots and thumbnails, and the editor screenshots, to {docs}")


if __name__ == "__main__":
    main()
