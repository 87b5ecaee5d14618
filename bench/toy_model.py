"""The project's small diffusion model ("Shapes32"): a real ComfyUI MODEL that edits.

Architecture (see bench/MODEL_CARD.md): ComfyUI's own ``UNetModel`` inside a
``model_base.BaseModel`` with epsilon prediction and SD's 1000-step
scaled-linear schedule, wrapped in a ``ModelPatcher``.

Latent space: pixels. The model denoises 3x32x32 RGB images in [-1, 1] directly,
with ComfyUI's ``ChromaRadiance`` latent format (3 channels, identity scaling).
The matching VAE is core ComfyUI's pixel-space VAE (``VAELoader`` -> "pixel_space"),
so image -> VAEEncode -> LATENT -> ... -> VAEDecode -> image is the same graph
as for SD1.5.

Conditioning: none. The cross-attention context is a single all-zero token
(``null_conditioning``), so CFG is a no-op on this model.
"""
from __future__ import annotations

import os

import torch

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "shapes32.safetensors")
CONTEXT_DIM = 32

UNET_CONFIG = {
    "image_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "model_channels": 32,
    "num_res_blocks": [1, 1, 1],
    "channel_mult": [1, 2, 2],
    # self-attention (SpatialTransformer) at 16x16 and 8x8, encoder, middle and decoder
    "transformer_depth": [0, 1, 1],
    "transformer_depth_output": [0, 0, 1, 1, 1, 1],
    "transformer_depth_middle": 1,
    "context_dim": CONTEXT_DIM,
    "num_head_channels": 32,
    "use_spatial_transformer": True,
    "use_linear_in_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "use_checkpoint": False,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}


def pixel_base_model(unet_config: dict, dtype: torch.dtype = torch.float32, latent_format=None):
    """A ``comfy.model_base.BaseModel`` for a pixel-space model (3-channel ``ChromaRadiance`` latents unless
    ``latent_format`` says otherwise, SD's 1000-step scaled-linear schedule, eps prediction) with uninitialised UNet
    weights (ComfyUI's layers skip init)."""
    import comfy.latent_formats
    import comfy.supported_models_base

    class PixelModel(comfy.supported_models_base.BASE):
        unet_extra_config = {"num_heads": -1, "num_head_channels": unet_config["num_head_channels"]}
        sampling_settings = {}  # ModelSamplingDiscrete defaults: 1000 steps, 0.00085..0.012 scaled-linear
        memory_usage_factor = 1.0
        supported_inference_dtypes = [torch.float32]

        def inpaint_model(self) -> bool:  # ComfyUI takes a UNet of more than 4 input channels for an inpainting one
            return False

    PixelModel.latent_format = latent_format or comfy.latent_formats.ChromaRadiance
    PixelModel.unet_config = dict(unet_config)
    cfg = PixelModel(dict(unet_config))
    cfg.set_inference_dtype(dtype, None)
    return cfg.get_model({}, "", device=torch.device("cpu"))


def build_base_model(dtype: torch.dtype = torch.float32):
    """The Shapes32 ``BaseModel`` with uninitialised UNet weights."""
    return pixel_base_model(UNET_CONFIG, dtype)


def load_model(path: str = WEIGHTS):
    """Load the trained weights as a ComfyUI MODEL (``ModelPatcher``)."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import safetensors.torch

    base = build_base_model()
    state = safetensors.torch.load_file(path)
    missing, unexpected = base.diffusion_model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path}: weights do not fit the Shapes32 UNet (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")
    base.diffusion_model.requires_grad_(False)
    return comfy.model_patcher.ModelPatcher(base, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def null_conditioning(batch: int = 1) -> list:
    """CONDITIONING with the model's null context (one all-zero token)."""
    return [[torch.zeros(batch, 1, CONTEXT_DIM), {}]]
