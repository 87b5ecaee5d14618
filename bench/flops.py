"""UNet work counted in FLOPs (issue 22): what one full forward, one truncated feature-tap forward and one backward
pass w.r.t. the input cost on a real architecture.

torch's ``FlopCounterMode`` counts the matmuls, convolutions and attention products of each pass (elementwise ops
and norms are not counted). On the meta device nothing is allocated or computed, so the full-size SD1.5 and SDXL
UNets are counted in seconds. The guidance backward asks only for the latent's gradient, so a convolution's
backward costs its forward's FLOPs (no weight gradients), and attention's up to twice its forward's;
``tests/test_perf.py`` checks the per-pass figures against the FLOPs of the sampler's own run.

    bench/run.py flops                                # SD1.5 at 512 and 768: FLOPs per pass and passes.Costs
    bench/run.py flops --family sdxl --sizes 1024     # SDXL at its native size
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


def pass_flops(unet: torch.nn.Module, latent_hw: tuple[int, int], context: torch.Tensor,
               y: torch.Tensor | None = None) -> dict[str, Counter]:
    """FLOPs by op of one batch-1 pass of each kind: "full" forward, "truncated" forward (stopped after the
    feature taps, as ``features.tapped_features`` stops it), "backward" from the tapped features to the input, and
    "before_bank": the forward up to the first bank layer's decoder block, the part that a guided step's guidance
    forward and its CFG cond half compute alike. ``y``: the ADM vector of a UNet that takes one (SDXL)."""
    device, dtype = context.device, context.dtype
    x = torch.randn(1, unet.in_channels, *latent_hw, device=device, dtype=dtype)
    t = torch.full((1,), 500.0, device=device)
    options = {"optimized_attention_override": features.autograd_attention}
    adm = {} if y is None else {"y": y}
    full = _counted(lambda: unet(x, t, context=context, transformer_options=dict(options), **adm))
    unet_layers = unet_map.map_unet(unet)

    def stopped(latent: torch.Tensor, tap: features.FeatureTap) -> None:
        try:
            unet(latent, t, context=context, transformer_options={
                **options, "patches": {"output_block_patch": [features.output_block_patch]}, features.TAP_KEY: tap},
                 **adm)
        except features.StopForward:
            pass

    tap = features.FeatureTap(unet_layers.tap_blocks)
    leaf = x.clone().requires_grad_(True)
    with torch.enable_grad():
        forward = _counted(lambda: stopped(leaf, tap))
        energy = sum((f.float() ** 2).sum() for f in tap.features.values())
        backward = _counted(lambda: torch.autograd.grad(energy, leaf))
    before_bank = _counted(lambda: stopped(x, features.FeatureTap((unet_layers.bank_layers[0].block,))))
    return {"full": full, "truncated": forward, "backward": backward, "before_bank": before_bank}


def costs(flops: dict[str, Counter]) -> passes.Costs:
    """``passes.Costs`` from ``pass_flops``: each pass in full forwards."""
    full = flops["full"].total()
    return passes.Costs(truncated=flops["truncated"].total() / full, backward=flops["backward"].total() / full)


@functools.cache
def counted(family: str = "sd15", size: int = 512) -> dict[str, Counter]:
    """``pass_flops`` of the full-size UNet of ``family`` (``sd_random.ARCHS``) at ``size`` x ``size`` pixels, on the
    meta device (counted once per process: it depends on the architecture alone; read, do not modify)."""
    meta = torch.device("meta")
    unet_config = sd_random.ARCHS[family][1]
    unet = sd_random.base_model(meta, torch.float16, family=family).diffusion_model
    context = torch.zeros(1, CONTEXT_TOKENS, unet_config["context_dim"], device=meta, dtype=torch.float16)
    adm = unet_config["adm_in_channels"]
    y = torch.zeros(1, adm, device=meta, dtype=torch.float16) if adm else None
    return pass_flops(unet, (size // 8, size // 8), context, y)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", choices=list(sd_random.ARCHS), default="sd15")
    ap.add_argument("--sizes", default="512,768")
    a = ap.parse_args(argv)
    out = {}
    for size in (int(s) for s in a.sizes.split(",")):
        flops = counted(a.family, size)
        c = costs(flops)
        out[size] = c
        print(f"{a.family} {size}x{size}: full forward {flops['full'].total() / 1e12:.3f} TFLOP; truncated forward "
              f"{c.truncated:.3f}, backward {c.backward:.3f} full forwards (spec section 7 weights: "
              f"{passes.SPEC_COSTS.truncated}, {passes.SPEC_COSTS.backward}); the forward before the first bank "
              f"layer {flops['before_bank'].total() / flops['full'].total():.3f}")
        for name, p in passes.counted_edits().items():
            print(f"  {name}: {passes.units(p, c) / passes.units(passes.plain(), c):.3f} x plain (FLOPs), "
                  f"{passes.units(p) / passes.units(passes.plain()):.3f} (spec weights)")
    return out
