"""Issue 9, caching: a memory bank that ComfyUI's output cache evicts is recomputed, the edit repeats bit for bit,
and the node classes keep no edit state between runs.

The evicting server SIMULATES upstream's default cache (RAM_PRESSURE, main.py @02018c7e; mid-prompt release in
execution.py @04e2a914) with 0.3.75's own ``--cache-ram``: a headroom above the machine's RAM makes it evict every
entry after every node, so the bank is evicted between the inversion and the sampler."""
import pytest
import safetensors.torch
import torch
from dd_fuzz import Graph

from dragon_drag_edit.dragon_ops.edit import Edit
from dragon_drag_edit.dragon_ops.memory_bank import MemoryBank
from dragon_drag_edit.nodes.registry import NODES

import dd_server
from dd_edit import box_mask, invert, move_energy, sample
from dd_server import error_message


def _inputs(base) -> None:
    dd_server.write_picture_and_mask(base / "input", "evict", seed=1)


@pytest.fixture(scope="module")
def evicting(tmp_path_factory):
    # RAM-pressure caching (upstream's default) with a headroom far above this machine's RAM: the cache is always
    # under pressure and evicts whatever it holds after every node.
    with dd_server.ComfyServer(tmp_path_factory.mktemp("evicting"), extra_args=("--cache-ram", "100000")) as srv:
        _inputs(srv.base)
        yield srv


def edit_graph() -> tuple[dict, str, str]:
    g = Graph()
    ck, pos, neg = g.checkpoint()
    lat = g.add("VAEEncode", pixels=[g.add("LoadImage", image="evict.png"), 0], vae=[ck, 2])
    inv = g.add("DDIMInvertToMemoryBank", model=[ck, 0], latent=[lat, 0], conditioning=[pos, 0], steps=4,
                bank_precision="fp16", bank_device="cpu", refine=1)
    move = g.add("DragonEnergyMove", bank=[inv, 1], mask=[g.add("LoadImageMask", image="evict_mask.png",
                                                                channel="red"), 0],
                 dx=16, dy=0, scale=1.0, arrow="", w_edit=4.0, w_content=6.0, w_contrast=0.2, w_inpaint=0.8)
    out = g.add("DragonGuidedSampler", model=[ck, 0], positive=[pos, 0], negative=[neg, 0], bank=[inv, 1],
                energy=[move, 0], seed=3, cfg=4.0, energy_scale=1.0, preset="DragonDiffusion", start_step=0,
                guidance_until=3, bank_start_step=1, guidance_cap=0.0)
    save = g.add("SaveLatent", samples=[out, 0], filename_prefix="evict/edit")
    return g.nodes, inv, save


def _run_twice(srv):
    graph, inv, save = edit_graph()
    entries = [srv.run(graph), srv.run(graph)]
    latents = []
    for entry in entries:
        assert entry["status"]["status_str"] == "success", error_message(entry)
        item = entry["outputs"][save]["latents"][0]
        latents.append(safetensors.torch.load_file(str(srv.base / "output" / item["subfolder"] /
                                                       item["filename"]))["latent_tensor"])
    cached = set()
    for kind, data in entries[1]["status"]["messages"]:
        if kind == "execution_cached":
            cached |= set(data["nodes"])
    return latents, inv in cached


def test_an_evicted_bank_is_recomputed_and_the_edit_repeats_bit_for_bit(evicting):
    latents, bank_cached = _run_twice(evicting)
    assert not bank_cached  # the second run had to invert again
    assert torch.equal(latents[0], latents[1]) and torch.isfinite(latents[0]).all()


def test_eviction_between_inversion_and_sampler_changes_no_result(evicting, server):
    _inputs(server.base)
    graph, _, save = edit_graph()
    latents = []
    for srv in (evicting, server):
        entry = srv.run(graph)
        assert entry["status"]["status_str"] == "success", error_message(entry)
        item = entry["outputs"][save]["latents"][0]
        latents.append(safetensors.torch.load_file(str(srv.base / "output" / item["subfolder"] /
                                                       item["filename"]))["latent_tensor"])
    assert torch.equal(latents[0], latents[1])


def test_with_the_classic_cache_the_bank_is_reused(server):
    _inputs(server.base)
    latents, bank_cached = _run_twice(server)
    assert bank_cached
    assert torch.equal(latents[0], latents[1])


def test_a_bank_tells_the_ram_cache_its_size(tiny_sd15):
    bank = invert(tiny_sd15, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=4)[1]
    assert bank.get_ram_usage() == bank.nbytes() > 0
    assert sum(t.numel() * t.element_size() for t in bank._comfy_cache_tensors()) == bank.nbytes()


def test_node_classes_hold_no_edit_state(tiny_sd15):
    def state():
        return {(cls.__name__, k): v for cls in NODES for k, v in vars(cls).items()
                if isinstance(v, (torch.Tensor, MemoryBank, Edit, dict, list))}

    before = state()
    bank = invert(tiny_sd15, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), steps=4)[1]
    sample(tiny_sd15, bank, move_energy(bank, box_mask(64, 64, 8, 24, 8, 24), dx=8), guidance_until=2)
    after = state()
    assert after.keys() == before.keys()
    assert not any(isinstance(v, (torch.Tensor, MemoryBank, Edit)) for v in after.values())
