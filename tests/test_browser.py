"""The points editor in a real browser: Debian's Chromium driven by npm playwright-core (tests/browser/), against
a real ComfyUI server with its frontend, all on 127.0.0.1. Once with Nodes 2.0 off, once with it on.

Loads the drag example, draws arrows with the mouse at two canvas zooms, moves one end, undoes, paints a stroke,
selects an arrow and deletes it with the Delete key, checks the widget JSON in image pixels after every step,
runs the workflow from the Run button and saves a screenshot. Skipped, with the reason in the summary, where
Chromium, node or playwright-core is missing (`make setup` installs them).
"""
import json
import os
import shutil
import subprocess

import pytest
from PIL import Image

import dd_workflows
from dd_server import CKPT, ROOT, ComfyServer

PLAYWRIGHT = os.path.join(ROOT, ".dev", "node", "node_modules", "playwright-core", "index.mjs")
DRIVER = os.path.join(ROOT, "tests", "browser", "editor_e2e.mjs")
PICTURE = (160, 96)  # not square and not 512 x 512: the example's drawing is scaled onto it
ZOOM = 1.7
OVERRIDES = {"CheckpointLoaderSimple": {"ckpt_name": CKPT}, **dd_workflows.FAST}


def _tools() -> tuple[str | None, str | None]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    node = shutil.which("node")
    missing = [what for what, found in (("chromium (apt-get install chromium)", chromium), ("node (apt/npm)", node),
                                        (f"playwright-core ({PLAYWRIGHT})", os.path.exists(PLAYWRIGHT))) if not found]
    if missing:
        pytest.skip(f"browser test needs {', '.join(missing)}; `make setup` installs them")
    return chromium, node


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    _tools()
    with ComfyServer(tmp_path_factory.mktemp("comfy_ui"), frontend=True) as srv:
        dd_workflows.write_pictures(srv.base / "input")
        scene = srv.base / "input" / "dragon_scene.png"
        Image.open(scene).resize(PICTURE).save(scene)
        yield srv


def drive(server, vue: bool, screenshot, compare: dict) -> dict:
    chromium, node = _tools()
    config = {"url": server.url, "chromium": chromium, "playwright": PLAYWRIGHT, "vue": vue,
              "workflow": dd_workflows.load_examples()["dragon_drag"], "overrides": OVERRIDES, "zoom": ZOOM,
              "screenshot": str(screenshot), "runTimeoutMs": 400_000, "compare": compare}
    proc = subprocess.run(["nice", "-n", "19", node, DRIVER, json.dumps(config)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"driver failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


def scaled(arrows, size):
    """The arrows of a 512 x 512 drawing on a picture of `size`; the editor keeps one decimal."""
    sx, sy = size[0] / dd_workflows.DESIGN_SIZE, size[1] / dd_workflows.DESIGN_SIZE
    return [pytest.approx([v * (sx if i % 2 == 0 else sy) for i, v in enumerate(a)], abs=0.051) for a in arrows]


@pytest.mark.parametrize("vue", [False, True], ids=["classic", "nodes2"])
def test_draw_in_the_editor_and_run(ui_server, vue, tmp_path):
    examples = dd_workflows.load_examples()
    shot = tmp_path / f"editor_{'nodes2' if vue else 'classic'}.png"
    result = drive(ui_server, vue, shot, compare={} if vue else examples)
    assert result["errors"] == []
    assert result["vueSetting"] is vue and result["vueNodeRendered"] is vue

    # the picture came at once from Load Image, and the example's 512 x 512 drawing was scaled onto it
    shipped = json.loads(next(n for n in examples["dragon_drag"]["nodes"]
                              if n["type"] == "DragonPointsEditor")["widgets_values"][0])
    loaded = result["loaded"]
    assert loaded["image"] == list(PICTURE)
    assert (loaded["state"]["width"], loaded["state"]["height"]) == PICTURE
    assert loaded["state"]["arrows"] == scaled(shipped["arrows"], PICTURE)

    steps = {(s["name"], s["zoom"]): s for s in result["steps"]}
    n = len(shipped["arrows"])
    for zoom, count in ((1, n + 1), (ZOOM, n + 2)):  # mouse arrows land on the same image pixels at any zoom
        state = steps["draw", zoom]["state"]
        assert len(state["arrows"]) == count and state["arrows"][-1] == steps["draw", zoom]["expected"]
    moved = steps["move target", ZOOM]
    assert moved["state"]["arrows"][-1][2:] == moved["expected"]
    assert moved["state"]["arrows"][-1][:2] == steps["draw", ZOOM]["expected"][:2]
    assert steps["undo", ZOOM]["state"] == steps["draw", ZOOM]["state"]
    painted = steps["paint", ZOOM]
    stroke = painted["state"]["strokes"][-1]
    assert stroke["pts"][0] == painted["expected"][:2] and stroke["pts"][-1] == painted["expected"][2:]
    assert painted["state"]["arrows"] == steps["draw", ZOOM]["state"]["arrows"]
    first = steps["draw", 1]["expected"]  # clicked in its middle, then the Delete key
    assert steps["delete", ZOOM]["state"]["arrows"] == [a for a in painted["state"]["arrows"] if a != first]
    assert len(steps["delete", ZOOM]["state"]["arrows"]) == n + 1 and result["editorStillThere"]

    # queued from the Run button: the drawing reached Python (the drag node reports the pair count)
    run = result["run"]
    assert run["status"]["status_str"] == "success", run["status"]
    drag_id = next(str(n["id"]) for n in examples["dragon_drag"]["nodes"] if n["type"] == "DragonEnergyDrag")
    assert run["outputs"][drag_id]["text"] == [f"drag: {n + 1} point pairs"]
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # the frontend's own graphToPrompt agrees with dd_workflows.ui_to_api on every example (editor states
    # aside: the editor has scaled those drawn for 512 x 512 onto the smaller scene picture)
    if not vue:
        info = ui_server.get("/object_info")
        for name, workflow in examples.items():
            frontend = {k: {"class_type": v["class_type"], "inputs": v["inputs"]}
                        for k, v in result["frontendPrompts"][name].items()}
            ours = dd_workflows.ui_to_api(workflow, info)
            for key, node in ours.items():
                if node["class_type"] == "DragonPointsEditor":
                    drawn, shown = (json.loads(p[key]["inputs"].pop("editor_state")) for p in (ours, frontend))
                    assert [len(drawn.get(k, [])) for k in ("arrows", "strokes")] == \
                        [len(shown.get(k, [])) for k in ("arrows", "strokes")], name
            assert frontend == ours, name
