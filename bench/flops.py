"""UNet work counted in FLOPs (issue 22): what one full forward, one truncated feature-tap forward and one backward
pass w.r.t. the input cost on a real architecture.

torch's ``FlopCounterMode`` counts the matmuls, convolutions and attention products of each pass (elementwise ops
and norms are not counted). On the meta device nothing is allocated or computed, so the full-size SD1.5 UNet is
counted in seconds. The guidance backward asks only for the latent's gradient, so a convolution's backward costs
its forward's FLOPs (no weight gradients), and attention's up to twice its forward's;
``tests/test_perf.py`` checks the per-pass figures against the FLOPs of the sampler's own run.

    bench/run.py flops            # SD1.5 at 512 and 768: FLOPs per pass and passes.Costs
"""
from __future__ import annotations

import argparse
import functools
from collections import Counter

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..dragon_ops import features, passes, unet_map
from . import sd_random

CONTEXT_TOKENS = 77  # SD's text encoder


def _counted(fn) -> Counter:
    with FlopCounterMode(display=False) as fc:
        fn()
    return Counter({str(op): n for op, n in fc.get_flop_counts()["Global"].items()})


def pass_flops(unet: torch.nn.Module, latent_hw: tuple[int, int], context: torch.Tensor) -> dict[str, Counter]:
    """FLOPs by op of one batch-1 pass of each kind: "full" forward, "truncated" forward (stopped after the
    feature taps, as ``features.tapped_features`` stops it) and "backward" from the tapped features to the input."""
    device, dtype = context.device, context.dtype
    x = torch.randn(1, unet.in_channels, *latent_hw, device=device, dtype=dtype)
    t = torch.full((1,), 500.0, device=device)
    options = {"optimized_attention_override": features.autograd_attention}
    full = _counted(lambda: unet(x, t, context=context, transformer_options=dict(options)))
    tap = features.FeatureTap(unet_map.map_unet(unet).tap_blocks)
    leaf = x.clone().requires_grad_(True)

    def truncated():
        try:
            unet(leaf, t, context=context, transformer_options={
                **options, "patches": {"output_block_patch": [features.output_block_patch]}, features.TAP_KEY: tap})
        except features.StopForward:
            pass

    with torch.enable_grad():
        forward = _counted(truncated)
        energy = sum((f.float() ** 2).sum() for f in tap.features.values())
        backward = _counted(lambda: torch.autograd.grad(energy, leaf))
    return {"full": full, "truncated": forward, "backward": backward}


def costs(flops: dict[str, Counter]) -> passes.Costs:
    """``passes.Costs`` from ``pass_flops``: each pass in full forwards."""
    full = flops["full"].total()
    return passes.Costs(truncated=flops["truncated"].total() / full, backward=flops["backward"].total() / full)


@functools.cache
def sd15(size: int = 512) -> dict[str, Counter]:
    """``pass_flops`` of the full-size SD1.5 UNet at ``size`` x ``size`` pixels, on the meta device (counted once per
    process: it depends on the architecture alone; read, do not modify)."""
    meta = torch.device("meta")
    unet = sd_random.base_model(meta, torch.float16).diffusion_model
    return pass_flops(unet, (size // 8, size // 8), torch.zeros(1, CONTEXT_TOKENS, 768, device=meta,
                                                                  dtype=torch.float16))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="512,768")
    a = ap.parse_args(argv)
    out = {}
    for size in (int(s) for s in a.sizes.split(",")):
        flops = sd15(size)
        c = costs(flops)
        out[size] = c
        print(f"SD1.5 {size}x{size}: full forward {flops['full'].total() / 1e12:.3f} TFLOP; truncated forward "
              f"{c.truncated:.3f}, backward {c.backward:.3f} full forwards (spec section 7 weights: "
              f"{passes.SPEC_COSTS.truncated}, {passes.SPEC_COSTS.backward})")
        for name, p in passes.counted_edits().items():
            print(f"  {name}: {passes.units(p, c) / passes.units(passes.plain(), c):.3f} x plain (FLOPs), "
                  f"{passes.units(p) / passes.units(passes.plain()):.3f} (spec weights)")
    return out
