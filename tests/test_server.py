"""The pack inside a real ComfyUI server (main.py on 127.0.0.1) on a generated tiny SD1.5 checkpoint."""
import os

import numpy as np
import pytest
from PIL import Image

from dragon_drag_edit.nodes.registry import NODES

from dd_server import CKPT, PACK_NAME, error_message


@pytest.fixture(scope="module")
def image(server):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(server.base / "input" / "scene.png")
    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[16:40, 16:40] = 255
    Image.fromarray(mask).save(server.base / "input" / "object_mask.png")
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(server.base / "input" / "ref.png")
    return "scene.png"


def invert_graph(image, steps=4, save_name="from_server"):
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo", "clip": ["1", 1]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": image}},
        "4": {"class_type": "VAEEncode", "inputs": {"pixels": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "DDIMInvertToMemoryBank", "inputs": {
            "model": ["1", 0], "latent": ["4", 0], "conditioning": ["2", 0], "steps": steps,
            "bank_precision": "fp16", "bank_device": "cpu", "refine": 1}},
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


def test_move_workflow(server, image):
    graph = invert_graph(image, steps=6)
    del graph["6"]
    graph.update({
        "7": {"class_type": "LoadImageMask", "inputs": {"image": "object_mask.png", "channel": "red"}},
        "8": {"class_type": "DragonEnergyMove", "inputs": {
            "bank": ["5", 1], "mask": ["7", 0], "dx": 24, "dy": 8, "scale": 1.0, "arrow": "", "w_edit": 4.0,
            "w_content": 6.0, "w_contrast": 0.2, "w_inpaint": 0.8}},
        "9": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "10": {"class_type": "DragonGuidedSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["9", 0], "bank": ["5", 1], "energy": ["8", 0],
            "seed": 1, "cfg": 4.0, "energy_scale": 1.0, "preset": "DiffEditor", "start_step": 0,
            "guidance_until": 4, "bank_start_step": 1, "guidance_cap": 0.0}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "moved"}},
    })
    entry = server.run(graph)
    assert entry["status"]["status_str"] == "success", error_message(entry)
    saved = entry["outputs"]["12"]["images"][0]
    img = Image.open(server.base / "output" / saved["subfolder"] / saved["filename"])
    assert img.size == (96, 64)
    report = entry["outputs"]["10"]["text"][0]
    assert "backwards" in report and "backwards 0" not in report  # autograd ran inside the server


SAMPLER = {"seed": 1, "cfg": 4.0, "energy_scale": 1.0, "preset": "DiffEditor", "start_step": 0, "guidance_until": 3,
           "bank_start_step": 1, "guidance_cap": 0.0}
MODES = {
    "drag": {"class_type": "DragonEnergyDrag", "inputs": {
        "bank": ["5", 1], "mask": ["7", 0], "points": "[[20, 20, 30, 26], [30, 30, 34, 30]]", "w_edit": 4.0,
        "w_content": 6.0, "w_inpaint": 0.2}},
    "landmarks": {"class_type": "DragonEnergyLandmarks", "inputs": {
        "bank": ["5", 1], "source_points": "[[20, 20], [40, 30], [60, 40]]",
        "target_points": "[[22, 24], [42, 30], [58, 44]]", "w_edit": 12.0, "image": ["3", 0]}},
    "appearance": {"class_type": "DragonEnergyAppearance", "inputs": {
        "bank": ["5", 1], "mask": ["7", 0], "reference_bank": ["21", 1], "reference_mask": ["7", 0], "w_edit": 3.5,
        "w_content": 5.0}},
    "paste": {"class_type": "DragonEnergyPaste", "inputs": {
        "bank": ["5", 1], "reference_bank": ["21", 1], "reference_mask": ["7", 0], "dx": 32, "dy": 8, "scale": 1.0,
        "w_edit": 4.0, "w_content": 6.0}},
    "move+drag": {"class_type": "DragonEnergyDrag", "inputs": {
        "bank": ["5", 1], "mask": ["7", 0], "points": "[[20, 20, 26, 20]]", "w_edit": 4.0, "w_content": 6.0,
        "w_inpaint": 0.2, "energy": ["8", 0]}},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_workflow(server, image, mode):
    graph = invert_graph(image, steps=5)
    del graph["6"]
    graph.update({
        "7": {"class_type": "LoadImageMask", "inputs": {"image": "object_mask.png", "channel": "red"}},
        "8": {"class_type": "DragonEnergyMove", "inputs": {
            "bank": ["5", 1], "mask": ["7", 0], "dx": 16, "dy": 0, "scale": 1.0, "arrow": "", "w_edit": 4.0,
            "w_content": 6.0, "w_contrast": 0.2, "w_inpaint": 0.8}},
        "9": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "20": {"class_type": "LoadImage", "inputs": {"image": "ref.png"}},
        "22": {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["1", 2]}},
        "21": {"class_type": "DDIMInvertToMemoryBank", "inputs": {
            "model": ["1", 0], "latent": ["22", 0], "conditioning": ["2", 0], "steps": 5, "bank_precision": "fp16",
            "bank_device": "cpu", "refine": 1}},
        "30": MODES[mode],
        "10": {"class_type": "DragonGuidedSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["9", 0], "bank": ["5", 1], "energy": ["30", 0],
            **SAMPLER}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": mode}},
    })
    if mode not in ("appearance", "paste"):
        for k in ("20", "21", "22"):
            del graph[k]
    entry = server.run(graph)
    assert entry["status"]["status_str"] == "success", error_message(entry)
    assert entry["outputs"]["12"]["images"], entry["outputs"]
