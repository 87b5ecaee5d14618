"""The pack inside a real ComfyUI server (main.py on 127.0.0.1) on a generated tiny SD1.5 checkpoint."""
import os

import numpy as np
import pytest
from dd_server import CKPT, PACK_NAME, error_message
from dragon_drag_edit.nodes.registry import NODES
from PIL import Image


@pytest.fixture(scope="module")
def image(server):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(server.base / "input" / "scene.png")
    return "scene.png"


def invert_graph(image, steps=4, save_name="from_server"):
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo", "clip": ["1", 1]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": image}},
        "4": {"class_type": "VAEEncode", "inputs": {"pixels": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "DDIMInvertToMemoryBank", "inputs": {
            "model": ["1", 0], "latent": ["4", 0], "conditioning": ["2", 0], "steps": steps,
            "bank_precision": "fp16", "bank_device": "cpu"}},
        "6": {"class_type": "DragonMemoryBankSave", "inputs": {"bank": ["5", 1], "name": save_name}},
    }


def test_object_info_lists_every_node(server):
    info = server.get("/object_info")
    for node in NODES:
        schema = node.define_schema()
        assert schema.node_id in info, schema.node_id
        entry = info[schema.node_id]
        assert entry["description"]
        inputs = {**entry["input"].get("required", {}), **entry["input"].get("optional", {})}
        for name, spec in inputs.items():
            assert spec[1].get("tooltip"), f"{schema.node_id}.{name} has no tooltip"


def test_web_directory_is_served(server):
    listed = server.get("/extensions")
    path = f"/extensions/{PACK_NAME}/dragon_drag_edit.js"
    assert path in listed
    assert b"registerExtension" in server.get(path)


def test_invert_and_save_workflow(server, image):
    entry = server.run(invert_graph(image))
    assert entry["status"]["status_str"] == "success", error_message(entry)
    assert os.path.getsize(server.base / "output" / "dragon_banks" / "from_server.safetensors") > 0
    report = entry["outputs"]["6"]["text"][0]
    assert "6 layers x 4 steps, latent 4x8x12, float16" in report  # 3 levels x 2 decoder blocks


def test_load_refuses_a_bank_for_another_size(server, image):
    assert server.run(invert_graph(image, save_name="sized"))["status"]["status_str"] == "success"
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "DragonMemoryBankLoad", "inputs": {"file": "sized.safetensors", "model": ["1", 0],
                                                               "latent": ["2", 0]}},
        "4": {"class_type": "DragonMemoryBankSave", "inputs": {"bank": ["3", 0], "name": "copy"}},
    }
    entry = server.run(graph)
    assert entry["status"]["status_str"] == "error"
    assert "file: file 'sized.safetensors': was made for latent (4, 8, 12)" in error_message(entry)


def test_bad_steps_are_refused_by_validation(server, image):
    graph = invert_graph(image, steps=1)
    entry = server.run(graph)
    assert entry["status"]["status_str"] == "invalid"
    assert "steps" in error_message(entry)
