"""Example workflows (``example_workflows/*.json``, ComfyUI's UI format) against a real server's ``/object_info``.

* ``check_workflow``: every node type and input name exists, the widget values fit the node, every link
  joins an output to an input of the same type.
* ``ui_to_api``: the UI format converted to the API format ``/prompt`` takes (the frontend's graphToPrompt,
  for the plain graphs the examples use: no groups of nodes, subgraphs or bypassed nodes).
* ``write_pictures``: the pictures the examples load, drawn procedurally (no image is shipped).
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "example_workflows")
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")
DESIGN_SIZE = 512  # the examples' points are drawn on 512 x 512 pictures
# The tests run the examples as shipped except for the checkpoint and fewer steps (CPU time).
FAST = {"DDIMInvertToMemoryBank": {"steps": 4, "refine": 0},
        "DragonGuidedSampler": {"guidance_until": 2, "bank_start_step": 1}}


def load_examples() -> dict[str, dict]:
    names = sorted(f[:-5] for f in os.listdir(EXAMPLES) if f.endswith(".json"))
    return {name: json.load(open(os.path.join(EXAMPLES, name + ".json"))) for name in names}


def _input_specs(info: dict) -> list[tuple[str, list, bool]]:
    """(name, spec, required) in the order the frontend creates them."""
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    out = []
    for group in ("required", "optional"):
        for name in order.get(group, []):
            out.append((name, info["input"][group][name], group == "required"))
    return out


def _type_of(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def widget_names(info: dict) -> list[tuple[str, bool]]:
    """(widget name, is a server input) per entry of a node's ``widgets_values``. The frontend adds widgets of
    its own: a seed control after a seed, an upload button after the required inputs of an upload combo."""
    names = []
    upload = False
    specs = _input_specs(info)
    for k, (name, spec, required) in enumerate(specs):
        opts = spec[1] if len(spec) > 1 else {}
        if _type_of(spec) in WIDGET_TYPES and not opts.get("forceInput"):
            names.append((name, True))
            seed_like = _type_of(spec) == "INT" and name in ("seed", "noise_seed")
            if opts.get("control_after_generate", seed_like):
                names.append(("control_after_generate", False))
            upload = upload or any(opts.get(flag) for flag in UPLOAD_FLAGS)
        last_required = required and (k + 1 == len(specs) or not specs[k + 1][2])
        if last_required and upload:
            names.append(("upload", False))
    return names


def check_workflow(workflow: dict, object_info: dict) -> list[str]:
    """Problems of a UI-format workflow against /object_info; empty when it is sound."""
    problems = []
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in FRONTEND_ONLY:
            continue
        if kind not in object_info:
            problems.append(f"node {node['id']}: type {kind} is not on the server")
            continue
        info = object_info[kind]
        specs = {name: spec for name, spec, _ in _input_specs(info)}
        names = widget_names(info)
        frontend_widgets = {name for name, real in names if not real}
        for slot in node.get("inputs", []):
            if slot["name"] in frontend_widgets and slot.get("link") is None:
                continue
            if slot["name"] not in specs:
                problems.append(f"node {node['id']} ({kind}): no input named {slot['name']}")
            elif slot.get("link") is None and slot["name"] in info["input"].get("required", {}) \
                    and _type_of(specs[slot["name"]]) not in WIDGET_TYPES:
                problems.append(f"node {node['id']} ({kind}): required input {slot['name']} is not connected")
        if len(node.get("widgets_values", [])) != len(names):
            problems.append(f"node {node['id']} ({kind}): {len(node.get('widgets_values', []))} widget values, "
                            f"the node has {len(names)} widgets {[name for name, _ in names]}")
        outputs = [o["type"] for o in node.get("outputs", [])]
        if outputs != list(info["output"]):
            problems.append(f"node {node['id']} ({kind}): outputs {outputs} != server's {info['output']}")
    for link_id, origin, origin_slot, target, target_slot, link_type in workflow["links"]:
        source, sink = nodes.get(origin), nodes.get(target)
        if source is None or sink is None:
            problems.append(f"link {link_id}: joins a missing node")
            continue
        if source["type"] in FRONTEND_ONLY or sink["type"] in FRONTEND_ONLY:
            continue
        produced = object_info[source["type"]]["output"][origin_slot]
        name = sink["inputs"][target_slot]["name"]
        spec = dict((n, s) for n, s, _ in _input_specs(object_info[sink["type"]])).get(name)
        wanted = _type_of(spec) if spec else None
        if sink["inputs"][target_slot].get("link") != link_id:
            problems.append(f"link {link_id}: input {sink['type']}.{name} does not name it")
        if "*" not in (produced, wanted) and not (produced == wanted == link_type):
            problems.append(f"link {link_id}: {source['type']} output {origin_slot} ({produced}) -> "
                            f"{sink['type']}.{name} ({wanted}), link says {link_type}")
    return problems


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API-format prompt of a UI-format workflow (Note nodes dropped, widget values by input name)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY or node.get("mode", 0) in (2, 4):  # 2 = muted, 4 = bypassed
            continue
        inputs = {}
        for (name, real), value in zip(widget_names(object_info[node["type"]]), node.get("widgets_values", [])):
            if real:
                inputs[name] = {"__value__": value} if isinstance(value, list) else value
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, origin_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill, outline=None) -> None:
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=outline, width=3)


def _scene(size: int) -> Image.Image:
    """A ball in a meadow, a tree and the sun."""
    t = np.linspace(0, 1, size)[:, None, None]
    sky = (1 - t) * np.array([110, 170, 235]) + t * np.array([225, 238, 250])
    img = np.broadcast_to(sky, (size, size, 3)).copy()
    img[int(size * 0.6):] = np.array([96, 168, 80]) - 40 * t[int(size * 0.6):]
    pic = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(pic)
    k = size / DESIGN_SIZE
    _disc(d, 430 * k, 80 * k, 38 * k, (250, 215, 70))
    d.rectangle([378 * k, 230 * k, 402 * k, 340 * k], fill=(110, 72, 40))
    _disc(d, 390 * k, 200 * k, 62 * k, (40, 120, 50))
    _disc(d, 150 * k, 370 * k, 52 * k, (210, 50, 45), outline=(120, 20, 20))
    _disc(d, 135 * k, 352 * k, 14 * k, (245, 150, 140))
    return pic


def _reference(size: int) -> Image.Image:
    """A striped blue ball on a sand-coloured table."""
    pic = Image.new("RGB", (size, size), (236, 222, 196))
    d = ImageDraw.Draw(pic)
    k = size / DESIGN_SIZE
    d.rectangle([0, 380 * k, size, size], fill=(170, 130, 90))
    _disc(d, 256 * k, 300 * k, 70 * k, (50, 90, 200), outline=(20, 40, 110))
    for dy in (-35, 0, 35):
        d.line([(196 * k, (300 + dy) * k), (316 * k, (300 + dy) * k)], fill=(240, 240, 250), width=max(1, int(9 * k)))
    return pic


def _face(size: int) -> Image.Image:
    """A cartoon face: eyes, brows, nose and a flat mouth (the landmarks example lifts its corners)."""
    pic = Image.new("RGB", (size, size), (200, 215, 230))
    d = ImageDraw.Draw(pic)
    k = size / DESIGN_SIZE
    d.ellipse([136 * k, 96 * k, 376 * k, 416 * k], fill=(238, 196, 160), outline=(150, 100, 70), width=3)
    for x in (206, 306):
        _disc(d, x * k, 220 * k, 16 * k, (60, 40, 30))
        d.line([((x - 28) * k, 188 * k), ((x + 28) * k, 184 * k)], fill=(90, 60, 40), width=max(1, int(6 * k)))
    d.line([(256 * k, 240 * k), (246 * k, 290 * k), (262 * k, 292 * k)], fill=(170, 120, 90), width=max(1, int(4 * k)))
    d.line([(206 * k, 340 * k), (306 * k, 340 * k)], fill=(150, 50, 50), width=max(1, int(8 * k)))
    return pic


PICTURES = {"dragon_scene.png": _scene, "dragon_reference.png": _reference, "dragon_face.png": _face}


def write_pictures(folder, size: int = DESIGN_SIZE) -> None:
    """The pictures the example workflows load, at ``size`` x ``size`` (their points scale with it)."""
    for name, draw in PICTURES.items():
        draw(size).save(os.path.join(folder, name))
