"""Tiny models built through ComfyUI's own classes (random, seeded weights) for mechanics tests.

Each has three resolution levels, so it has two decoder upsamplers (the
feature taps) and decoder self-attention layers (the memory bank).
"""
from __future__ import annotations

import torch

from dragon_drag_edit.bench import sd_random
from dragon_drag_edit.bench.sd_random import init_weights_

BASE_UNET = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 32,
    "num_res_blocks": [1, 1, 1], "channel_mult": [1, 2, 2],
    "transformer_depth": [0, 1, 1], "transformer_depth_output": [0, 0, 1, 1, 1, 1],
    "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 32,
    "use_temporal_resblock": False, "use_temporal_attention": False,
}
FAMILIES = {
    # name: (ComfyUI config class, unet overrides, context dim)
    "sd15": ("SD15", {}, 32),
    "sd2v": ("SD20", {"use_linear_in_transformer": True, "num_head_channels": 16}, 48),
    "sdxl": ("SDXL", {"use_linear_in_transformer": True, "adm_in_channels": 2816, "num_classes": "sequential",
                      "transformer_depth": [0, 2, 2], "transformer_depth_output": [0, 0, 2, 2, 2, 2],
             "num_head_channels": 16}, 64),
}


def tiny_unet_model(family: str = "sd15", seed: int = 0):
    """A ModelPatcher around a tiny random model of ``family`` (sd15: eps; sd2v: v-prediction; sdxl)."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models as sm

    cls_name, overrides, ctx = FAMILIES[family]
    config = {**BASE_UNET, **overrides, "context_dim": ctx}
    base_cls = getattr(sm, cls_name)

    class Tiny(base_cls):
        unet_config = dict(config)
        unet_extra_config = {"num_heads": 2, "num_head_channels": -1} if family == "sd15" else {}

        def model_type(self, state_dict, prefix=""):
            import comfy.model_base
            return comfy.model_base.ModelType.V_PREDICTION if family == "sd2v" else comfy.model_base.ModelType.EPS

    cfg = Tiny(dict(config))
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    unet = model.diffusion_model
    init_weights_(unet, seed)
    unet.requires_grad_(False)
    with torch.no_grad():  # scale the output to unit std, so eps/v predictions are well-behaved
        x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
        kw = {"y": torch.zeros(2, config["adm_in_channels"])} if config["adm_in_channels"] else {}
        out = unet(x, torch.tensor([250.0, 750.0]), context=torch.zeros(2, 1, ctx), transformer_options={}, **kw)
        unet.out[2].weight.div_(out.std())
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def conds_for(model, seed: int = 1, tokens: int = 7) -> tuple[list, list]:
    """Random (positive, negative) CONDITIONING matching the model's context width."""
    ctx = model.model.model_config.unet_config["context_dim"]
    adm = model.model.model_config.unet_config.get("adm_in_channels")
    g = torch.Generator().manual_seed(seed)

    def one():
        extra = {"pooled_output": torch.randn(1, 1280, generator=g)} if adm else {}
        return [[torch.randn(1, tokens, ctx, generator=g), extra]]

    return one(), one()


def sd15_structure():
    """The full-size SD1.5 UNet on the meta device: its structure, with no weights allocated."""
    return sd_random.base_model(torch.device("meta"), torch.float16).diffusion_model


def tiny_flux():
    """A tiny random Flux (a DiT, not a UNet) as a ModelPatcher, for the 'not a UNet' error."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models

    cfg = comfy.supported_models.Flux({
        "image_model": "flux", "in_channels": 16, "patch_size": 2, "out_channels": 16, "vec_in_dim": 32,
        "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1,
        "depth_single_blocks": 1, "axes_dim": [8, 12, 12], "theta": 10000, "qkv_bias": True,
        "guidance_embed": False})
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights_(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def snapshot(model) -> tuple[dict, str]:
    """Everything a node could mutate on a MODEL: its weights (copied) and its options (as text)."""
    import pprint

    weights = {k: v.detach().clone() for k, v in model.model.state_dict().items()}
    return weights, pprint.pformat(model.model_options) + pprint.pformat(getattr(model, "patches", {}))


def assert_unchanged(model, snap: tuple[dict, str]) -> None:
    weights, options = snapshot(model)
    assert options == snap[1], "model_options or patches changed"
    assert weights.keys() == snap[0].keys()
    for k, v in weights.items():
        assert torch.equal(v, snap[0][k]), f"weight {k} changed"
