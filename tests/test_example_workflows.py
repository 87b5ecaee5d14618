"""The example workflows (example_workflows/, UI format) against a real ComfyUI server: sound, listed in the
templates browser, and they run on the generated tiny checkpoint."""
import json
import os

import pytest
from PIL import Image

import dd_workflows
from dd_server import CKPT, PACK_NAME, error_message

EXAMPLES = dd_workflows.load_examples()
MODES = {"dragon_move", "dragon_resize", "dragon_appearance", "dragon_paste", "dragon_drag", "dragon_landmarks",
         "dragon_move_and_drag"}
SIZE = 128  # test pictures; the examples' points are drawn for 512 x 512 and scale with the picture
FAST = {"CheckpointLoaderSimple": {"ckpt_name": CKPT}, **dd_workflows.FAST}
# What each run must report, from the examples' own drawings scaled by SIZE / 512:
REPORTS = {
    "dragon_move": ("8", "move by (37.5, 5) px, scale 1"),  # arrow (150, 370) -> (300, 390)
    "dragon_resize": ("8", "move by (0, 0) px, scale 1.5"),
    "dragon_drag": ("8", "drag: 2 point pairs"),
    "dragon_landmarks": ("8", "landmarks: 5 pairs"),
    "dragon_paste": ("8", "paste at (11, 28) px, scale 0.7"),  # arrow (256, 300) -> (300, 412)
    "dragon_appearance": ("8", "appearance (mean): reference object -> masked object"),
    "dragon_move_and_drag": ("19", "drag: 1 point pairs"),
}


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info")


@pytest.fixture(scope="module")
def pictures(server):
    dd_workflows.write_pictures(server.base / "input", SIZE)


def test_one_example_per_mode_each_with_a_thumbnail_and_a_note():
    assert set(EXAMPLES) == MODES
    for name, workflow in EXAMPLES.items():
        thumb = os.path.join(dd_workflows.EXAMPLES, name + ".jpg")  # the templates browser asks for .jpg
        with Image.open(thumb) as im:
            assert im.format == "JPEG" and im.width >= 320, name
        notes = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "Note"]
        assert len(notes) == 1 and len(notes[0]) > 400, name
        editors = [n for n in workflow["nodes"] if n["type"] == "DragonPointsEditor"]
        assert editors and "Points Editor" in notes[0], name


def test_examples_use_only_core_nodes_and_ours(object_info):
    for name, workflow in EXAMPLES.items():
        for node in workflow["nodes"]:
            if node["type"] in dd_workflows.FRONTEND_ONLY:
                continue
            module = object_info[node["type"]]["python_module"]
            assert module in ("nodes", f"custom_nodes.{PACK_NAME}") or module.startswith("comfy_extras."), \
                f"{name}: {node['type']} comes from {module}"


@pytest.mark.parametrize("name", sorted(MODES))
def test_example_is_sound(object_info, name):
    assert dd_workflows.check_workflow(EXAMPLES[name], object_info) == []


def test_check_catches_broken_workflows(object_info):
    workflow = json.loads(json.dumps(EXAMPLES["dragon_move"]))
    move = next(n for n in workflow["nodes"] if n["type"] == "DragonEnergyMove")
    move["inputs"][0]["name"] = "memory"
    link = next(lk for lk in workflow["links"] if lk[3] == move["id"] and lk[4] == 1)  # editor mask -> Move.mask
    link[2] = 0  # now from the editor's STRING output
    workflow["nodes"].append({"id": 99, "type": "NoSuchNode", "inputs": [], "widgets_values": []})
    problems = dd_workflows.check_workflow(workflow, object_info)
    assert "node 99: type NoSuchNode is not on the server" in problems
    assert f"node {move['id']} (DragonEnergyMove): no input named memory" in problems
    assert any(p.startswith(f"link {link[0]}: DragonPointsEditor output 0 (STRING) -> DragonEnergyMove.mask (MASK)")
               for p in problems), problems


def test_templates_browser_lists_the_examples(server):
    assert set(server.get("/workflow_templates")[PACK_NAME]) == MODES
    for name in MODES:
        status, body = server.request("GET", f"/api/workflow_templates/{PACK_NAME}/{name}.jpg")
        assert status == 200 and body[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("name", sorted(MODES))
def test_example_runs(server, object_info, pictures, name):
    prompt = dd_workflows.ui_to_api(EXAMPLES[name], object_info)
    for node in prompt.values():
        node["inputs"].update(FAST.get(node["class_type"], {}))
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", error_message(entry)
    node_id, report = REPORTS[name]
    assert entry["outputs"][node_id]["text"][0].startswith(report)
    saved = next(o["images"][0] for o in entry["outputs"].values() if o.get("images"))
    with Image.open(server.base / "output" / saved["subfolder"] / saved["filename"]) as im:
        assert im.size == (SIZE, SIZE)
