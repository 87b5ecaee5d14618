"""The SD1.5 and SDXL UNet architectures built through ComfyUI's own classes, with seeded random weights.

Speed and memory do not depend on the weight values, so these stand in for real checkpoints in the performance
script (``bench/perf.py``) and in the layer-map tests, where no weights can be downloaded.
"""
from __future__ import annotations

import math

import torch

SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2], "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "transformer_depth_output": [1] * 9 + [0] * 3,
    "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768,
    "use_temporal_resblock": False, "use_temporal_attention": False,
}
# SDXL base as ComfyUI's model detection reads it from the checkpoint (comfy/model_detection.py, 0.3.75)
SDXL_UNET = {
    **SD15_UNET, "num_classes": "sequential", "adm_in_channels": 2816, "num_res_blocks": [2, 2, 2],
    "channel_mult": [1, 2, 4], "transformer_depth": [0, 0, 2, 2, 10, 10],
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "transformer_depth_middle": 10,
    "use_linear_in_transformer": True, "context_dim": 2048, "num_head_channels": 64,
}
ARCHS = {"sd15": ("SD15", SD15_UNET), "sdxl": ("SDXL", SDXL_UNET)}  # family: (ComfyUI config class, UNet config)
POOLED = 1280  # SDXL's pooled CLIP-G output, the ADM input besides the 6 size embeddings
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@torch.no_grad()
def init_weights_(module: torch.nn.Module, seed: int) -> None:
    """Seeded weights: fan-in scaled normals for matrices and kernels, norms near 1, small biases."""
    g = torch.Generator().manual_seed(seed)
    for name, t in sorted(module.state_dict(keep_vars=True).items()):
        if not torch.is_floating_point(t):
            continue
        if name.endswith("weight") and t.ndim >= 2:
            t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel()))
        elif name.endswith("weight"):
            t.copy_(1.0 + 0.05 * torch.randn(t.shape, generator=g))
        else:
            t.copy_(0.02 * torch.randn(t.shape, generator=g))


def base_model(device: torch.device, dtype: torch.dtype, channels: int = 320, family: str = "sd15"):
    """A ComfyUI ``BaseModel`` (eps) of ``family``'s UNet at width ``channels``; no weights on 'meta'."""
    import comfy.supported_models

    name, unet = ARCHS[family]
    cfg = getattr(comfy.supported_models, name)({**unet, "model_channels": channels})
    cfg.set_inference_dtype(dtype, None)
    return cfg.get_model({}, "", device=device)


def model(device: torch.device, dtype: torch.dtype, channels: int = 320, seed: int = 0, family: str = "sd15"):
    """A ModelPatcher around a random model of ``family``'s architecture: weights made in fp32 on the CPU, scaled so
    the UNet's output has unit std, then loaded into a model of ``dtype`` on ``device``."""
    import comfy.model_management as mm
    import comfy.model_patcher

    unet = ARCHS[family][1]
    ref = base_model(torch.device("cpu"), torch.float32, channels, family).diffusion_model
    init_weights_(ref, seed)
    adm = {"y": torch.zeros(1, unet["adm_in_channels"])} if unet["adm_in_channels"] else {}
    with torch.no_grad():
        out = ref(torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed + 1)),
                  torch.tensor([500.0]), context=torch.zeros(1, 1, unet["context_dim"]), transformer_options={},
                  **adm)
        ref.out[2].weight.div_(out.std())
    base = base_model(device, dtype, channels, family)
    base.diffusion_model.load_state_dict(ref.state_dict())
    base.diffusion_model.requires_grad_(False)
    load = device if device.type != "cpu" else mm.get_torch_device()
    return comfy.model_patcher.ModelPatcher(base, load_device=load, offload_device=mm.unet_offload_device())


def conds(seed: int = 1, family: str = "sd15") -> tuple[list, list]:
    """Random 77-token (positive, negative) CONDITIONING of ``family``'s text width (SDXL: with a pooled output)."""
    g = torch.Generator().manual_seed(seed)
    width = ARCHS[family][1]["context_dim"]

    def one() -> list:
        extra = {"pooled_output": torch.randn(1, POOLED, generator=g)} if family == "sdxl" else {}
        return [[torch.randn(1, 77, width, generator=g), extra]]

    return one(), one()
