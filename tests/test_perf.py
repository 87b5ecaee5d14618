"""The perf command (bench/perf.py) at CI size: the SD1.5 architecture, narrowed, on the CPU. Its pass counts and
bank bytes are deterministic and are asserted; its times are reported, never asserted."""
import torch

from dragon_drag_edit.bench import backward_lever, perf, sd15_random
from dragon_drag_edit.dragon_ops import memory_bank, passes, presets, unet_map

STEPS = 6


def test_perf_counts_and_bank_bytes_at_ci_size(capsys):
    results = perf.main(["--model", "sd15", "--channels", "32", "--size", "64", "--steps", str(STEPS)])
    assert "x (a) time" in capsys.readouterr().out
    plain, inv = results["(a) plain KSampler"], results["inversion"]
    assert (plain["full_forwards"], plain["guidance_forwards"], plain["backwards"]) == (2 * STEPS, 0, 0)  # CFG
    assert (inv["full_forwards"], inv["backwards"]) == (STEPS, 0)  # refine=0 (the paper's): one pass per step
    for name, preset in presets.PRESETS.items():
        plan = presets.StepPlan(preset, STEPS, 0, presets.at(30, STEPS), presets.at(5, STEPS), True)
        got = {k: results[f"guided, {name}"][k] for k in ("full_forwards", "guidance_forwards", "backwards")}
        assert got == passes.expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2).as_dict()  # a move
    unet = sd15_random.base_model(torch.device("meta"), torch.float16, 32).diffusion_model
    layers = unet_map.map_unet(unet).bank_layers
    hidden = memory_bank.hidden_nbytes(layers, STEPS, 1, 8, 8, 2)
    assert inv["bank_bytes"] == hidden + (STEPS + 1) * 4 * 8 * 8 * 4  # fp16 hidden states + fp32 latents
    assert all(r["seconds"] > 0 and r["peak_rss_bytes"] > 0 for r in results.values())


def test_one_batched_backward_gives_the_two_gradients_of_two_backwards():
    result = backward_lever.main(["--channels", "32", "--size", "8", "--repeats", "1"])
    assert result["max_difference"] < 1e-6  # its timing is printed, never asserted
