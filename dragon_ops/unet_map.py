"""Where DragonDiffusion reads a ComfyUI ``UNetModel``: found from its structure, not hard-coded.

* Bank layers (the memory bank's visual cross-attention): the self-attention of
  the first transformer block of every decoder block that has a
  SpatialTransformer. For SD1.5 that is ``output_blocks[3..11]``, the nine
  layers the official code patches.
* Feature taps (the correspondence features of E_edit / E_content): the decoder
  feature right after each of the last two upsamplers, i.e. the paper's
  "decoder layers 2 and 3". In SD1.5 that is h after ``output_blocks[5]`` and
  ``[8]`` (latent/2 and latent/1 resolution); in SDXL after ``[2]`` and ``[5]``.
  ComfyUI's ``output_block_patch`` for block id sees h after block id-1, so the
  taps are read at patch ids 6 and 9, and a guidance forward can stop there.
"""
from __future__ import annotations

import dataclasses
import hashlib

import torch


@dataclasses.dataclass(frozen=True)
class BankLayer:
    """One decoder self-attention layer: ComfyUI block key, channels and down-sampling factor."""

    block: int  # output_blocks index
    index: int  # transformer block inside the SpatialTransformer
    channels: int
    factor: int  # latent pixels per token side

    @property
    def key(self) -> str:
        return f"output.{self.block}.{self.index}"

    def tokens(self, height: int, width: int) -> int:
        return -(-height // self.factor) * -(-width // self.factor)


@dataclasses.dataclass(frozen=True)
class UNetMap:
    bank_layers: tuple[BankLayer, ...]
    tap_blocks: tuple[int, ...]  # output_block_patch ids whose incoming h is a feature tap
    tap_channels: tuple[int, ...]
    tap_factors: tuple[int, ...]


def _kinds(block: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in block]


def is_unet(module: torch.nn.Module) -> bool:
    return all(hasattr(module, a) for a in ("input_blocks", "output_blocks", "out"))


def map_unet(unet: torch.nn.Module) -> UNetMap:
    """Analyse a ComfyUI ``UNetModel`` (SD1.x, SD2.x, SDXL and relatives)."""
    if not is_unet(unet):
        raise TypeError(f"{type(unet).__name__} is not a UNet (no input_blocks/output_blocks)")
    downs = sum("Downsample" in _kinds(b) for b in unet.input_blocks)
    layers, taps, tap_ch, tap_f = [], [], [], []
    ups = 0
    for i, block in enumerate(unet.output_blocks):
        factor = 2 ** (downs - ups)
        for m in block:
            if type(m).__name__ == "SpatialTransformer":
                ch = m.transformer_blocks[0].attn1.to_q.in_features
                layers.append(BankLayer(i, 0, ch, factor))
            if type(m).__name__ == "Upsample":
                ups += 1
                taps.append(i + 1)
                tap_ch.append(m.out_channels)
                tap_f.append(2 ** (downs - ups))
    if len(taps) < 2:
        raise ValueError("the UNet has fewer than two upsampling decoder levels; DragonDiffusion needs two "
                         "decoder feature maps")
    if not layers:
        raise ValueError("the UNet decoder has no self-attention (SpatialTransformer) layers for the memory bank")
    return UNetMap(tuple(layers), tuple(taps[-2:]), tuple(tap_ch[-2:]), tuple(tap_f[-2:]))


def fingerprint(unet: torch.nn.Module, patch_summary: str = "") -> str:
    """A short, cheap identity for a model: its architecture (class, every weight's name and shape), a sample of
    its weight values, and its weight patches.

    Two banks are compatible only if made by models with the same fingerprint. ComfyUI's ``unet_config`` is left
    out on purpose: newer ComfyUI versions add keys to it for the same weights, which must not orphan saved banks.
    The sampled values are hashed at fp16 precision: ComfyUI 0.3.75 casts an fp32 checkpoint to fp16, upstream's
    dynamic VRAM keeps lazily loaded weights in their stored fp32, and both must give one fingerprint.
    """
    h = hashlib.sha256(type(unet).__name__.encode())
    h.update(patch_summary.encode())
    items = sorted(unet.state_dict().items())
    for name, t in items:
        h.update(f"{name}{tuple(t.shape)};".encode())
    for name, t in items[:: max(1, len(items) // 16)]:
        if t.device.type == "meta" or not t.dtype.is_floating_point:
            continue
        sample = t.detach().flatten()[:4096].to(torch.float16).cpu()
        h.update(name.encode() + sample.numpy().tobytes())
    return h.hexdigest()[:16]
