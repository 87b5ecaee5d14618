"""DragonSampleToMemoryBank: generate an image with DDIM and record its memory bank along the way."""
from __future__ import annotations

import logging
import math

import comfy.sample
import torch
from comfy_api.latest import io, ui

from ..dragon_ops import generation, unet_map
from ..dragon_ops.memory_bank import DTYPES
from .common import (
    BANK,
    InputError,
    MemoryBank,
    check_choice,
    check_finite,
    check_latent_fits,
    search_words,
    single_latent,
    unet_of,
)
from .inversion import BANK_DEVICES, bank_inputs, bank_setup

log = logging.getLogger("dragon_drag_edit")


class DragonSampleToMemoryBank(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonSampleToMemoryBank",
            display_name="Dragon Sample to Memory Bank",
            category=BANK,
            **search_words("generate", "txt2img", "memory bank", "drag edit", "no inversion"),
            description=(
                "Generates an image with DDIM (ComfyUI's CFG, your prompts and seed) and records its memory bank "
                "along the same steps, so the image can be edited without inverting it: no inversion passes and "
                "no inversion error. A Dragon Guided Sampler with the same MODEL and prompts and no edit "
                "reproduces the image exactly."),
            inputs=[
                io.Model.Input("model", tooltip="The UNet model (SD1.x, SD2.x, SDXL) that will also do the edit."),
                io.Conditioning.Input("positive", tooltip="The prompt. Give the guided sampler the same one."),
                io.Conditioning.Input("negative", tooltip="The negative prompt. Give the guided sampler the same."),
                io.Latent.Input("latent", tooltip="An Empty Latent Image of the size to generate (batch 1)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Noise seed, as in KSampler (the same seed gives KSampler's start noise). It "
                             "stays as set after a run (no randomize control), so queueing again to edit finds "
                             "the picture and its bank in ComfyUI's cache instead of generating a new one."),
                io.Float.Input("cfg", default=7.5, min=1.0, max=30.0, step=0.1, tooltip="Classifier-free guidance "
                               "of the generation. The bank keeps it and the guided sampler uses it when its own "
                               "cfg is 0, so the untouched image is retraced exactly. Above 1 the bank holds both "
                               "CFG halves (twice an inverted bank's bytes)."),
                *bank_inputs("Storage type of the recorded hidden states. fp32: an empty edit retraces the "
                             "image exactly; fp16 and fp8 save memory at a small deviation (see the README)."),
            ],
            outputs=[
                io.Latent.Output("image", display_name="LATENT", tooltip="The generated image (for VAEDecode)."),
                io.Latent.Output("start", display_name="start latent",
                                 tooltip="x_T: the start of the generation, as DDIM inversion would give it."),
                MemoryBank.Output("bank", display_name="memory bank",
                                  tooltip="Latents and decoder self-attention inputs of every generation step."),
            ],
        )

    @classmethod
    def execute(cls, *, model, positive, negative, latent, seed, steps, cfg, bank_precision,
                bank_device) -> io.NodeOutput:
        unet = unet_of(model)
        samples = single_latent(latent)
        umap = unet_map.map_unet(unet)
        check_latent_fits(samples, model, umap)
        for name, cond in (("positive", positive), ("negative", negative)):
            if not cond:
                raise InputError(f"{name}: is empty; connect a CLIPTextEncode.")
        check_finite(cfg=cfg)
        if cfg < 1:
            raise InputError(f"cfg: must be at least 1 (got {cfg}).")
        check_choice("bank_precision", bank_precision, DTYPES)
        check_choice("bank_device", bank_device, BANK_DEVICES)
        sched, device, fp, progress = bank_setup(model, unet, umap, samples, steps, bank_precision, bank_device,
                                                 halves=1 if math.isclose(cfg, 1.0) else 2)  # ComfyUI skips uncond at 1
        noise = comfy.sample.prepare_noise(samples, seed)
        image, start, bank = generation.generate_to_bank(model, samples, noise, positive, negative, cfg, sched,
                                                         DTYPES[bank_precision], device, fp, seed, callback=progress)
        if not (torch.isfinite(image).all() and torch.isfinite(bank.latents).all()):
            raise InputError("model: the generation overflowed to NaN/Inf; check the MODEL (an fp16 model at an "
                             "extreme cfg, or a broken patch or LoRA).")
        text = bank.describe()
        log.info("DragonSampleToMemoryBank: %s", text)
        return io.NodeOutput({"samples": image}, {"samples": start}, bank, ui=ui.PreviewText(text))
