"""Write a tiny random checkpoint that ComfyUI's CheckpointLoaderSimple detects as SD1.5.

Detection (comfy/supported_models.py SD15.unet_config) needs model_channels 320,
context_dim 768 and a non-linear proj_in; the rest is read off the state dict,
so three 320-wide levels with one res block and one transformer each are enough
(and give the two decoder upsamplers DragonDiffusion reads). The CLIP-L text
encoder config is fixed, so it is full size (stored in fp8 to halve the file);
the VAE is a TAESD. Generated per test session, never committed (~210 MiB).
"""
from __future__ import annotations

import math

import torch

UNET = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 320, "context_dim": 768,
    "num_res_blocks": [1, 1, 1], "channel_mult": [1, 1, 1], "transformer_depth": [1, 1, 1],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1], "transformer_depth_middle": -2,
    "use_linear_in_transformer": False, "use_temporal_resblock": False, "use_temporal_attention": False,
}


def _random_like(state: dict, gen: torch.Generator, std: float | None = None) -> dict:
    out = {}
    for name in sorted(state):
        t = state[name]
        if not torch.is_floating_point(t):
            out[name] = t.clone()
        elif name.endswith("weight") and t.ndim >= 2:
            out[name] = torch.randn(t.shape, generator=gen) * (std or 1.0 / math.sqrt(t[0].numel()))
        elif name.endswith("weight") or name.endswith("scale"):
            out[name] = torch.ones(t.shape)
        else:
            out[name] = torch.zeros(t.shape)
    return out


def write_checkpoint(path: str, seed: int = 0) -> None:
    import comfy.sd1_clip
    import comfy.supported_models
    import comfy.taesd.taesd
    import safetensors.torch

    g = torch.Generator().manual_seed(seed)
    cfg = comfy.supported_models.SD15(dict(UNET))
    cfg.set_inference_dtype(torch.float32, None)
    unet = cfg.get_model({}, "", device=torch.device("cpu")).diffusion_model
    sd = {"model.diffusion_model." + k: v.half() for k, v in _random_like(unet.state_dict(), g).items()}
    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float16)
    sd.update({"cond_stage_model." + k: v.to(torch.float8_e4m3fn)
               for k, v in _random_like(clip.state_dict(), g, std=0.02).items() if not k.endswith("logit_scale")})
    vae = comfy.taesd.taesd.TAESD(latent_channels=4)
    sd.update({"first_stage_model." + k: v.half() for k, v in _random_like(vae.state_dict(), g).items()
               if torch.is_floating_point(v)})
    safetensors.torch.save_file(sd, path, metadata={"dragon_drag_edit": "tiny random SD1.5 test checkpoint"})
