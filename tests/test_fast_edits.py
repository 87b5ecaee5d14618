"""Issue 22 through a real ``main.py`` server (the generated tiny SD1.5 checkpoint): a re-edit finds the inversion
in ComfyUI's cache and spends only the sampler's passes, and a generated image's bank gives the image back."""
import safetensors.torch
import torch
from dd_fuzz import Graph

from dragon_drag_edit.dragon_ops import passes, presets

from dd_edit import counts
from dd_server import error_message, write_picture_and_mask

STEPS = 6
SETTINGS = {"seed": 3, "cfg": 0.0, "energy_scale": 1.0, "start_step": 0, "guidance_until": 4,
            "bank_start_step": 1, "guidance_cap": 0.0}


def _picture(base) -> None:
    write_picture_and_mask(base / "input", "fast", seed=5)


def _latent(srv, entry, node) -> torch.Tensor:
    item = entry["outputs"][node]["latents"][0]
    return safetensors.torch.load_file(str(srv.base / "output" / item["subfolder"] / item["filename"]))["latent_tensor"]


def _executed(entry) -> set[str]:
    cached = set()
    for kind, data in entry["status"]["messages"]:
        if kind == "execution_cached":
            cached |= set(data["nodes"])
    return cached


def edit_graph(dx: int, preset: str = "DragonDiffusion"):
    g = Graph()
    ck, pos, neg = g.checkpoint()
    lat = g.add("VAEEncode", pixels=[g.add("LoadImage", image="fast.png"), 0], vae=[ck, 2])
    inv = g.add("DDIMInvertToMemoryBank", model=[ck, 0], latent=[lat, 0], conditioning=[pos, 0], steps=STEPS,
                bank_precision="fp16", bank_device="cpu", refine=0)
    move = g.add("DragonEnergyMove", bank=[inv, 1], mask=[g.add("LoadImageMask", image="fast_mask.png",
                                                                channel="red"), 0],
                 dx=dx, dy=0, scale=1.0, arrow="", w_edit=4.0, w_content=6.0, w_contrast=0.2, w_inpaint=0.8)
    out = g.add("DragonGuidedSampler", model=[ck, 0], positive=[pos, 0], negative=[neg, 0], bank=[inv, 1],
                energy=[move, 0], preset=preset, **SETTINGS)
    save = g.add("SaveLatent", samples=[out, 0], filename_prefix="fast/edit")
    return g.nodes, inv, out, save


def test_a_re_edit_reuses_the_cached_inversion(server):
    """Two prompts that differ only in the arrow: the second runs no inversion (ComfyUI's cache), so its UNet work
    is the sampler's alone, as the README's re-edit row counts it."""
    _picture(server.base)
    plan = presets.StepPlan(presets.PRESETS["DragonDiffusion"], STEPS, 0, 4, 1, True)
    guided = passes.expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2).as_dict()
    results = []
    for dx in (16, 8):
        graph, inv, out, save = edit_graph(dx)
        entry = server.run(graph)
        assert entry["status"]["status_str"] == "success", error_message(entry)
        report = counts(entry["outputs"][out]["text"][0])
        results.append((inv in _executed(entry), report, _latent(server, entry, save)))
    (first_cached, first, a), (second_cached, second, b) = results
    assert not first_cached and second_cached  # the first prompt inverted (STEPS passes), the second did not
    assert first == second == guided
    assert not torch.equal(a, b)  # the edit did change


def test_a_generated_image_comes_back_from_its_bank(server):
    g = Graph()
    ck, pos, neg = g.checkpoint()
    empty = g.add("EmptyLatentImage", width=64, height=64, batch_size=1)
    gen = g.add("DragonSampleToMemoryBank", model=[ck, 0], positive=[pos, 0], negative=[neg, 0], latent=[empty, 0],
                seed=11, steps=STEPS, cfg=6.0, bank_precision="fp32", bank_device="cpu")
    out = g.add("DragonGuidedSampler", model=[ck, 0], positive=[pos, 0], negative=[neg, 0], bank=[gen, 2],
                preset="DragonDiffusion", **SETTINGS)
    saved = [g.add("SaveLatent", samples=[gen, 0], filename_prefix="fast/generated"),
             g.add("SaveLatent", samples=[out, 0], filename_prefix="fast/retraced")]
    entry = server.run(g.nodes)
    assert entry["status"]["status_str"] == "success", error_message(entry)
    generated, retraced = (_latent(server, entry, s) for s in saved)
    assert float((generated - retraced).abs().max()) <= 1e-5
    assert "cfg 6 (the bank's generation cfg)" in entry["outputs"][out]["text"][0]
    assert counts(entry["outputs"][out]["text"][0]) == {"full_forwards": 2 * STEPS, "guidance_forwards": 0,
                                                        "backwards": 0}
