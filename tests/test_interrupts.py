"""Cancel at random steps: the MODEL keeps no patch, and the next run is bit-identical to an uninterrupted one."""
import random

import comfy.model_management
import comfy.utils
import pytest
import torch

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import assert_unchanged, snapshot, tiny_unet_model

STEPS = 10
SETTINGS = {"preset": "DiffEditor", "guidance_until": 8, "bank_start_step": 1}


@pytest.fixture(scope="module")
def edit():
    model = tiny_unet_model("sd15", seed=0)
    bank = invert(model, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=STEPS)[1]
    energy = move_energy(bank, box_mask(64, 64, 16, 36, 12, 32), dx=16)
    return model, bank, energy


def interrupted_run(model, bank, energy, at_step: int) -> int:
    seen = []

    def hook(value, total, preview, node_id=None):
        seen.append(value)
        if value == at_step:
            comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            sample(model, bank, energy, **SETTINGS)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)
    return max(seen)


def test_ten_random_interrupts_leave_no_trace(edit):
    model, bank, energy = edit
    before = snapshot(model)
    reference, _ = sample(model, bank, energy, **SETTINGS)
    rng = random.Random(0)
    for _ in range(10):
        at = rng.randrange(1, STEPS - 1)
        assert interrupted_run(model, bank, energy, at) == at  # stopped right there, not at the end
        assert_unchanged(model, before)
        again, _ = sample(model, bank, energy, **SETTINGS)
        assert torch.equal(again, reference)


def _interrupt_latency(server, graph: dict, after: float) -> float:
    """Queue ``graph``, wait until it runs for ``after`` s, POST /interrupt: seconds until the prompt has ended."""
    import json
    import time
    import uuid

    _, raw = server.request("POST", "/prompt", {"prompt": graph, "client_id": str(uuid.uuid4())})
    pid = json.loads(raw)["prompt_id"]
    deadline = time.time() + 60
    while not server.get("/queue")["queue_running"] and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(after)
    t0 = time.time()
    server.request("POST", "/interrupt", {})
    while time.time() < t0 + 30:
        entry = server.get(f"/history/{pid}").get(pid)
        if entry and entry.get("status", {}).get("completed") is not None:
            assert entry["status"]["status_str"] == "error"  # interrupted, not finished
            return time.time() - t0
        time.sleep(0.02)
    raise AssertionError("the prompt did not stop within 30 s of /interrupt")


def test_interrupt_stops_a_huge_brush_stroke_within_a_second(server):
    """Issue 20: the 3000 x 3000 state with one 60-point stroke of radius 3000 (42 s of rasterising before)."""
    import json

    state = {"width": 3000, "height": 3000, "strokes": [{"r": 3000, "pts": [[x, 1500] for x in range(0, 3000, 50)]}]}
    graph = {"1": {"class_type": "DragonPointsEditor", "inputs": {"editor_state": json.dumps(state)}},
             "2": {"class_type": "MaskToImage", "inputs": {"mask": ["1", 1]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    assert _interrupt_latency(server, graph, after=1.0) < 1.0


def test_interrupt_stops_a_drag_with_the_most_pairs_within_a_second(server):
    """Issue 20: a Point Drag with the largest number of pairs the node takes (points.MAX_PAIRS)."""
    import json

    from dd_fuzz import Graph

    from dragon_drag_edit.dragon_ops.points import MAX_PAIRS

    rng = random.Random(0)
    pairs = [[rng.uniform(0, 63), rng.uniform(0, 63), rng.uniform(0, 63), rng.uniform(0, 63)] for _ in range(MAX_PAIRS)]
    g = Graph()
    ck, pos, neg = g.checkpoint()
    server_pictures(server)
    lat = g.add("VAEEncode", pixels=[g.add("LoadImage", image="interrupt.png"), 0], vae=[ck, 2])
    inv = g.add("DDIMInvertToMemoryBank", model=[ck, 0], latent=[lat, 0], conditioning=[pos, 0], steps=20,
                bank_precision="fp16", bank_device="cpu", refine=0)
    mask = g.add("SolidMask", value=1.0, width=64, height=64)
    drag = g.add("DragonEnergyDrag", bank=[inv, 1], mask=[mask, 0], points=json.dumps(pairs), w_edit=4.0,
                 w_content=6.0, w_inpaint=0.2)
    out = g.add("DragonGuidedSampler", model=[ck, 0], positive=[pos, 0], negative=[neg, 0], bank=[inv, 1],
                energy=[drag, 0], seed=0, cfg=4.0, energy_scale=1.0, preset="DragonDiffusion", start_step=0,
                guidance_until=20, bank_start_step=1, guidance_cap=0.0)
    g.add("SaveLatent", samples=[out, 0], filename_prefix="interrupt/drag")
    assert _interrupt_latency(server, g.nodes, after=4.0) < 1.0


def server_pictures(server) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(server.base / "input" / "interrupt.png")
