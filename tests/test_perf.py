"""The perf command (bench/perf.py) at CI size: the SD1.5 and SDXL architectures, narrowed, on the CPU. Its pass
counts and bank bytes are deterministic and are asserted; its times are reported, never asserted."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dragon_drag_edit.bench import backward_lever, flops, perf, sd_random
from dragon_drag_edit.dragon_ops import memory_bank, passes, presets, unet_map

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import conds_for

STEPS = 6


@pytest.mark.parametrize("family, size", [("sd15", 64), ("sdxl", 32)])  # SDXL's 10-block transformers: smaller
def test_perf_counts_and_bank_bytes_at_ci_size(capsys, family, size):
    results = perf.main(["--model", family, "--channels", "32", "--size", str(size), "--steps", str(STEPS)])
    assert "x (a) time" in capsys.readouterr().out
    plain, inv = results["(a) plain KSampler"], results["inversion"]
    assert (plain["full_forwards"], plain["guidance_forwards"], plain["backwards"]) == (2 * STEPS, 0, 0)  # CFG
    assert (inv["full_forwards"], inv["backwards"]) == (STEPS, 0)  # refine=0 (the paper's): one pass per step
    for name, preset in presets.PRESETS.items():
        plan = presets.StepPlan(preset, STEPS, 0, presets.at(30, STEPS), presets.at(5, STEPS), True)
        got = {k: results[f"guided, {name}"][k] for k in ("full_forwards", "guidance_forwards", "backwards")}
        assert got == passes.expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2).as_dict()  # a move
    unet = sd_random.base_model(torch.device("meta"), torch.float16, 32, family).diffusion_model
    layers = unet_map.map_unet(unet).bank_layers
    lat = size // 8
    hidden = memory_bank.hidden_nbytes(layers, STEPS, 1, lat, lat, 2)
    assert inv["bank_bytes"] == hidden + (STEPS + 1) * 4 * lat * lat * 4  # fp16 hidden states + fp32 latents
    gen, on_gen = results["generation with its bank"], results["guided on the generated bank, DragonDiffusion"]
    assert (gen["full_forwards"], gen["guidance_forwards"], gen["backwards"]) == (2 * STEPS, 0, 0)  # as (a)
    assert gen["bank_bytes"] == 2 * hidden + (STEPS + 1) * 4 * lat * lat * 4  # both CFG halves
    plan = presets.StepPlan(presets.PRESETS["DragonDiffusion"], STEPS, 0, presets.at(30, STEPS), presets.at(5, STEPS),
                            True)
    assert {k: on_gen[k] for k in ("full_forwards", "guidance_forwards", "backwards")} == \
        passes.expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2).as_dict()
    assert all(r["seconds"] > 0 and r["peak_rss_bytes"] > 0 for r in results.values())


def test_the_edits_counted_for_sd15_at_512():
    """The table of issue 22 (README, Performance): UNet work per edit as a ratio to a plain 50-step CFG pass."""
    rows = {k: (p.full_forwards, p.guidance_forwards, p.backwards, round(passes.units(p) / 100, 3))
            for k, p in passes.counted_edits().items()}
    assert passes.units(passes.plain()) == 100
    assert rows == {
        "real-image edit, DragonDiffusion (inversion included)": (150, 60, 60, 2.85),
        "real-image edit, DiffEditor (inversion included)": (174, 48, 56, 2.94),
        "real-image edit, Fast (inversion included)": (150, 30, 30, 2.175),
        "real-image edit, Preview (inversion included)": (76, 6, 6, 0.895),
        "generated-image edit, DragonDiffusion (no inversion)": (100, 60, 60, 2.35),
        "preview (bank reused)": (26, 6, 6, 0.395),
        "re-edit, bank cached, DragonDiffusion": (100, 60, 60, 2.35),
    }
    assert rows["preview (bank reused)"][3] <= 0.4  # issue 22, must-show 3


def test_the_edits_counted_in_flops_for_sd15_at_512():
    """The same table with each pass weighted by its FLOPs, counted on the full-size SD1.5 UNet (meta device)."""
    counted = flops.counted("sd15", 512)
    costs = flops.costs(counted)
    assert counted["full"].total() == pytest.approx(0.803e12, rel=1e-3)  # spec section 7: about 0.40 TMAC
    assert costs.truncated == pytest.approx(0.754, abs=1e-3)  # spec section 7: about 0.75
    assert costs.backward == pytest.approx(0.823, abs=1e-3)  # 1.09x the truncated forward (spec: 1-2x)
    # README, levers: the guidance forward and the CFG cond half agree up to output_blocks[3], the first bank layer
    assert counted["before_bank"].total() / counted["full"].total() == pytest.approx(0.358, abs=1e-3)
    # the latent's gradient only: each convolution's backward costs its forward
    assert counted["backward"]["aten.convolution_backward"] == counted["truncated"]["aten.convolution"]
    rows = {k: round(passes.units(p, costs) / passes.units(passes.plain(), costs), 2)
            for k, p in passes.counted_edits().items()}
    assert rows == {
        "real-image edit, DragonDiffusion (inversion included)": 2.45,
        "real-image edit, DiffEditor (inversion included)": 2.56,
        "real-image edit, Fast (inversion included)": 1.97,
        "real-image edit, Preview (inversion included)": 0.85,
        "generated-image edit, DragonDiffusion (no inversion)": 1.95,
        "preview (bank reused)": 0.35,
        "re-edit, bank cached, DragonDiffusion": 1.95,
    }
    at768 = flops.costs(flops.counted("sd15", 768))  # README: the shares at 768 (spec section 7: about 0.71)
    assert (round(at768.truncated, 3), round(at768.backward, 3)) == (0.709, 0.844)
    default = passes.counted_edits()["real-image edit, DragonDiffusion (inversion included)"]
    assert passes.units(default, at768) / passes.units(passes.plain(), at768) == pytest.approx(2.43, abs=0.005)


def test_the_edits_counted_in_flops_for_sdxl_at_1024():
    """SDXL's taps sit after output_blocks[2] and [5], under its 10-deep transformers, so a truncated forward skips
    only the last, attention-free level: guidance costs more of a full forward than on SD1.5."""
    counted = flops.counted("sdxl", 1024)
    costs = flops.costs(counted)
    assert counted["full"].total() == pytest.approx(6.761e12, rel=1e-3)  # 8.4x SD1.5 at 512
    assert costs.truncated == pytest.approx(0.952, abs=1e-3)
    assert costs.backward == pytest.approx(1.055, abs=1e-3)
    assert counted["before_bank"].total() / counted["full"].total() == pytest.approx(0.434, abs=1e-3)  # README, levers
    assert counted["backward"]["aten.convolution_backward"] == counted["truncated"]["aten.convolution"]
    ratio = {k: passes.units(p, costs) / passes.units(passes.plain(), costs) for k, p in passes.counted_edits().items()}
    assert ratio["real-image edit, DragonDiffusion (inversion included)"] == pytest.approx(2.70, abs=0.005)
    assert ratio["generated-image edit, DragonDiffusion (no inversion)"] == pytest.approx(2.20, abs=0.005)
    assert ratio["preview (bank reused)"] == pytest.approx(0.38, abs=0.005)
    assert perf.counted_arch("sdxl") == ("sdxl", 1024) and perf.counted_arch("proxy") == ("sd15", 512)


def test_the_sampler_spends_the_flops_counted_per_pass(tiny_sd15):
    """A guided move's convolution FLOPs are its pass tally times the per-pass FLOPs of ``flops.pass_flops``: its
    truncated forwards stop at the taps and its backwards take no weight gradient (either would add FLOPs)."""
    _, bank = invert(tiny_sd15, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), STEPS)
    energy = move_energy(bank, box_mask(64, 64, 16, 36, 12, 32), dx=16, dy=8)
    with FlopCounterMode(display=False) as fc:
        _, counts = sample(tiny_sd15, bank, energy, guidance_until=2, bank_start_step=1)
    spent = fc.get_flop_counts()["Global"]
    per = flops.pass_flops(tiny_sd15.model.diffusion_model, (8, 8), conds_for(tiny_sd15)[0][0][0])
    assert counts == {"full_forwards": 2 * STEPS, "guidance_forwards": 4, "backwards": 4}
    conv = torch.ops.aten.convolution
    assert spent[conv] == (counts["full_forwards"] * per["full"][str(conv)]
                           + counts["guidance_forwards"] * per["truncated"][str(conv)])
    assert spent[torch.ops.aten.convolution_backward] == counts["backwards"] * per["backward"][str(conv) + "_backward"]


def test_one_batched_backward_gives_the_two_gradients_of_two_backwards():
    result = backward_lever.main(["--channels", "32", "--size", "8", "--repeats", "1"])
    assert result["max_difference"] < 1e-6  # its timing is printed, never asserted
