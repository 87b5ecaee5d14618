"""The project's prompt-conditioned proxy model ("ShapesText48"): a small Stable-Diffusion-like model that can judge
edits at the paper's settings, CFG included.

* UNet: ComfyUI's own ``UNetModel`` (eps prediction, SD's 1000-step scaled-linear schedule) on 3x48x48 pixels
  (``ChromaRadiance`` latent format, so core ComfyUI's pixel-space VAE is its VAE), with self- and
  cross-attention in the encoder, the middle and the decoder, as in SD.
* Text: a word-level tokenizer over the scene generator's vocabulary (``bench/scenes2.py``) and a 2-layer
  transformer, trained jointly with the UNet; its output (``TOKENS`` x ``CONTEXT_DIM``) is the cross-attention
  context, as CLIP's is for SD. The empty prompt (all padding) is the unconditional context: training drops
  the prompt 10 % of the time, so CFG means what it means in SD.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from . import scenes2

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "weights", "shapestext48.safetensors")
CONTEXT_DIM = 64
TOKENS = 24
VOCAB = ("<pad>", "<unk>", "a", "and", "on", "background", *scenes2.COLOURS, *scenes2.BG_COLOURS,
         *scenes2.TRAIN_SHAPES, *scenes2.HELD_OUT_SHAPES, *scenes2.TRAIN_FILLS[1:], *scenes2.HELD_OUT_FILLS)

UNET_CONFIG = {
    "image_size": scenes2.SIZE, "in_channels": 3, "out_channels": 3, "model_channels": 32,
    "num_res_blocks": [1, 1, 1], "channel_mult": [1, 2, 2],
    "transformer_depth": [0, 1, 1], "transformer_depth_output": [0, 0, 1, 1, 1, 1], "transformer_depth_middle": 1,
    "context_dim": CONTEXT_DIM, "num_head_channels": 32, "use_spatial_transformer": True,
    "use_linear_in_transformer": True, "legacy": False, "adm_in_channels": None, "use_checkpoint": False,
    "use_temporal_resblock": False, "use_temporal_attention": False,
}
# An alternative tried for issue 18 (bench/PROXY_CARD.md): the same UNet on a 2x space-to-depth latent (12 x 24 x 24,
# lossless, like a VAE of factor 2), with self-attention at every level as SD1.5 has it down to its full latent
# resolution, so the memory bank reaches the top level. Its convolutions see a quarter of the positions. At 2,250
# steps it reconstructs no better at CFG 4 than the pixel48 model.
S2D_CONFIG = {**UNET_CONFIG, "image_size": scenes2.SIZE // 2, "in_channels": 12, "out_channels": 12,
              "transformer_depth": [1, 1, 1], "transformer_depth_output": [1] * 6}
# The larger model for a GPU (issue 18): training pixel48 on to its schedule's end did not make it draw the shapes
# its prompts name (bench/PROXY_CARD.md), so we expect capacity, not training time, to be what a lent GPU should
# raise. SD1.5's two residual blocks a level and its first three channel multipliers (x1, x2, x4: 128 channels at
# 12x12), pixel48's attention levels and text encoder: 3.6x pixel48's UNet parameters at 2.3x its FLOPs, and an
# fp16 EMA of 12.4 MB, which comes back from the lent machine as one file (16 MiB at most).
LARGE_CONFIG = {**UNET_CONFIG, "num_res_blocks": [2, 2, 2], "channel_mult": [1, 2, 4],
                "transformer_depth": [0, 0, 1, 1, 1, 1], "transformer_depth_output": [0, 0, 0, 1, 1, 1, 1, 1, 1]}
ARCHS = {"pixel48": UNET_CONFIG, "s2d24": S2D_CONFIG, "large48": LARGE_CONFIG}


def tokenize(prompts: list[str]) -> torch.Tensor:
    """Word ids (N, TOKENS), padded with 0; unknown words map to <unk>, words past TOKENS are dropped."""
    index = {w: k for k, w in enumerate(VOCAB)}
    out = torch.zeros(len(prompts), TOKENS, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids = [index.get(w, 1) for w in p.lower().replace(",", " ").split()][:TOKENS]
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


class TextEncoder(torch.nn.Module):
    """Word embeddings + learned positions + a 2-layer pre-norm transformer -> (N, TOKENS, CONTEXT_DIM)."""

    def __init__(self) -> None:
        super().__init__()
        import comfy.ops

        ops = comfy.ops.disable_weight_init  # plain PyTorch layers that ComfyUI can cast and offload
        self.embed = ops.Embedding(len(VOCAB), CONTEXT_DIM)
        torch.nn.Embedding.reset_parameters(self.embed)  # drawn where nn.Embedding draws it: training starts as before
        self.pos = torch.nn.Parameter(torch.zeros(TOKENS, CONTEXT_DIM))
        layer = torch.nn.TransformerEncoderLayer(CONTEXT_DIM, 4, 2 * CONTEXT_DIM, dropout=0.0, batch_first=True,
                                                 norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = ops.LayerNorm(CONTEXT_DIM)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.embed(ids) + self.pos))


class SpaceToDepth:
    """The s2d24 architecture's VAE, for ComfyUI's VAEEncode / VAEDecode nodes: IMAGE (B, H, W, 3) in [0, 1] <->
    LATENT (B, 12, H/2, W/2) in [-1, 1], each 2x2 pixel block as 12 channels (exact both ways)."""

    @staticmethod
    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(pixels[..., :3].movedim(-1, 1) * 2 - 1, 2)

    @staticmethod
    def decode(latent: torch.Tensor) -> torch.Tensor:
        return ((F.pixel_shuffle(latent, 2) + 1) / 2).clamp(0, 1).movedim(1, -1)


def latent_format(arch: str):
    import comfy.latent_formats

    if is_pixel(arch):
        return comfy.latent_formats.ChromaRadiance

    class SpaceToDepth12(comfy.latent_formats.LatentFormat):
        latent_channels = 12

    return SpaceToDepth12


def to_latent(arch: str, x: torch.Tensor) -> torch.Tensor:
    """Scenes (B, 3, H, W) in [-1, 1] as the architecture's latent (what VAEEncode of the picture gives)."""
    return x if is_pixel(arch) else F.pixel_unshuffle(x, 2)


def vae(arch: str):
    """The VAE that VAEEncode / VAEDecode take for ``arch``."""
    if is_pixel(arch):
        from .move_eval import pixel_vae

        return pixel_vae()
    return SpaceToDepth()


def is_pixel(arch: str) -> bool:
    """Whether ``arch`` samples the picture's pixels themselves (no space-to-depth latent)."""
    return ARCHS[arch]["in_channels"] == 3


def _layout(cfg: dict) -> tuple[int, int, int]:
    """What tells the architectures apart in their weights: latent channels, the deepest level's channels and the
    number of encoder blocks (ComfyUI's UNetModel: the input convolution, the residual blocks and a downsampler
    between levels)."""
    return cfg["in_channels"], cfg["model_channels"] * cfg["channel_mult"][-1], len(cfg["channel_mult"]) + sum(
        cfg["num_res_blocks"])


def arch_of(unet_state: dict) -> str:
    """The architecture of a UNet state dict."""
    layout = (unet_state["input_blocks.0.0.weight"].shape[1], unet_state["middle_block.0.in_layers.0.weight"].shape[0],
              1 + max(int(k.split(".")[1]) for k in unet_state if k.startswith("input_blocks.")))
    arch = next((name for name, cfg in ARCHS.items() if _layout(cfg) == layout), None)
    if arch is None:
        raise ValueError(f"weights of no proxy architecture (latent channels, deepest channels, encoder blocks: "
                         f"{layout}); known: {', '.join(ARCHS)}")
    return arch


def model_arch(model) -> str:
    """The architecture of a loaded proxy MODEL."""
    return arch_of(model.model.diffusion_model.state_dict())


def empty_latent(arch: str) -> torch.Tensor:
    """An Empty Latent Image for one scene of ``arch``."""
    cfg = ARCHS[arch]
    return torch.zeros(1, cfg["in_channels"], cfg["image_size"], cfg["image_size"])


def build_base_model(dtype: torch.dtype = torch.float32, arch: str = "pixel48"):
    """A ``comfy.model_base.BaseModel`` with uninitialised UNet weights."""
    from .toy_model import pixel_base_model

    return pixel_base_model(ARCHS[arch], dtype, latent_format(arch))


def split_state(state: dict) -> tuple[dict, dict]:
    """A saved state dict -> (UNet part, text-encoder part); the text encoder's keys start with 'text.'."""
    text = {k[5:]: v for k, v in state.items() if k.startswith("text.")}
    return {k: v for k, v in state.items() if not k.startswith("text.")}, text


def load(path: str = WEIGHTS):
    """(MODEL as a ComfyUI ModelPatcher, TextEncoder) from the trained weights."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import safetensors.torch

    unet_state, text_state = split_state(safetensors.torch.load_file(path))
    base = build_base_model(arch=arch_of(unet_state))
    base.diffusion_model.load_state_dict(unet_state)
    base.diffusion_model.requires_grad_(False)
    text = TextEncoder()
    text.load_state_dict(text_state)
    text.requires_grad_(False).eval()
    model = comfy.model_patcher.ModelPatcher(base, load_device=mm.get_torch_device(),
                                             offload_device=mm.unet_offload_device())
    return model, text


@torch.no_grad()
def encode(text: TextEncoder, prompt: str) -> list:
    """CONDITIONING for ``prompt`` (the empty prompt: the unconditional context)."""
    return [[text(tokenize([prompt])).float(), {}]]
