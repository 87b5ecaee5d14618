"""DDIMInvertToMemoryBank: invert an image latent with DDIM and record the memory bank."""
from __future__ import annotations

import logging

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ..dragon_ops import geometry, inversion, memory_bank, paper, schedule, unet_map
from ..dragon_ops.memory_bank import DTYPES
from .common import (
    BANK,
    InputError,
    MemoryBank,
    check_choice,
    check_latent_fits,
    check_memory,
    mask_2d,
    patch_summary,
    search_words,
    single_latent,
    unet_of,
)

log = logging.getLogger("dragon_drag_edit")


BANK_DEVICES = ("cpu", "model device")

class DDIMInvertToMemoryBank(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DDIMInvertToMemoryBank",
            display_name="Dragon DDIM Invert to Memory Bank",
            category=BANK,
            **search_words("invert image", "inversion", "memory bank", "drag edit", "DragonDiffusion"),
            description=(
                "Runs deterministic DDIM inversion of one image latent (cond only, no CFG) and records the memory "
                "bank every DragonDiffusion edit reads: the inversion latent of every step and the decoder "
                "self-attention inputs. Outputs the inverted noise x_T, which a KSampler with add_noise off "
                "turns back into the image."),
            inputs=[
                io.Model.Input("model", tooltip="The UNet model (SD1.x, SD2.x, SDXL) that will also do the edit."),
                io.Latent.Input("latent", tooltip="VAEEncode of the image to edit: one image, batch 1."),
                io.Conditioning.Input("conditioning", tooltip="A prompt describing the image. Inversion uses it "
                                      "alone, without CFG."),
                *bank_inputs("Storage type of the recorded hidden states. fp16 halves fp32's memory with no "
                             "visible change; fp8 (e4m3) halves it again (SD1.5 512x512, 50 steps: 0.32 GiB)."),
                io.Int.Input("refine", default=paper.REFINE, min=0, max=5, tooltip="Fixed-point iterations per "
                             "step that make the inversion exactly undo DDIM sampling, each adding one UNet pass per "
                             "step. 0 = the paper's plain DDIM inversion. 1 (this pack's variant) took "
                             "reconstruction from 34 to 47 dB on the project's 32x32 Shapes32 model; not measured "
                             "on Stable Diffusion."),
                io.Mask.Input("isolate_mask", optional=True, tooltip="Optional, for the reference image of Paste "
                              "or Appearance: its object mask. Latent cells the mask does not touch are zeroed "
                              "before inversion, so the reference's background cannot reach the edit at all. "
                              "Leave unconnected to invert the whole image (the paper's behaviour)."),
            ],
            outputs=[
                io.Latent.Output("inverted", display_name="inverted latent",
                                 tooltip="x_T: the noise that DDIM turns back into the image."),
                MemoryBank.Output("bank", display_name="memory bank",
                                  tooltip="Inversion latents and decoder self-attention inputs for every step."),
            ],
        )

    @classmethod
    def execute(cls, *, model, latent, conditioning, steps, bank_precision, bank_device,
                refine=paper.REFINE, isolate_mask=None) -> io.NodeOutput:
        unet = unet_of(model)
        samples = single_latent(latent)
        umap = unet_map.map_unet(unet)
        check_latent_fits(samples, model, umap)
        if not conditioning:
            raise InputError("conditioning: is empty; connect a CLIPTextEncode of the image's prompt.")
        if not 0 <= refine <= 5:
            raise InputError(f"refine: must be 0..5 (got {refine}).")
        check_choice("bank_precision", bank_precision, DTYPES)
        check_choice("bank_device", bank_device, BANK_DEVICES)
        if isolate_mask is not None:
            m = mask_2d(isolate_mask, "isolate_mask", tuple(samples.shape[-2:]))
            if not bool((m > 0.5).any()):
                raise InputError("isolate_mask: is empty; connect the reference object's mask, or disconnect it.")
            samples = geometry.isolate(samples, m)
        sched, device, fp, progress = bank_setup(model, unet, umap, samples, steps, bank_precision, bank_device,
                                                 halves=1)
        x_t, bank = inversion.invert_to_bank(model, samples, conditioning, sched, DTYPES[bank_precision], device,
                                             fp, callback=progress, refine=refine)
        if not (torch.isfinite(x_t).all() and torch.isfinite(bank.latents).all()):
            raise InputError(f"latent: DDIM inversion overflowed to NaN/Inf (the latent's largest value is "
                             f"{float(samples.abs().max()):.3g}); encode the image with this model's VAE.")
        text = bank.describe()
        log.info("DDIMInvertToMemoryBank: %s", text)
        return io.NodeOutput({"samples": x_t}, bank, ui=ui.PreviewText(text))


def bank_inputs(precision_tooltip: str) -> list:
    """The inputs every node that records a bank has: steps, bank_precision, bank_device."""
    return [
        io.Int.Input("steps", default=50, min=2, max=1000,
                     tooltip="DDIM steps. The edit uses the same steps; 50 is the paper's value."),
        io.Combo.Input("bank_precision", options=list(DTYPES), default="fp16", tooltip=precision_tooltip),
        io.Combo.Input("bank_device", options=list(BANK_DEVICES), default="cpu", tooltip="Where the bank lives. "
                       "'cpu' saves GPU memory; 'model device' saves host-to-GPU copies."),
    ]


def bank_setup(model, unet, umap, samples: torch.Tensor, steps: int, bank_precision: str, bank_device: str,
               halves: int) -> tuple:
    """What inversion and generation check and build alike before recording a bank of ``halves`` CFG halves:
    (the DDIM schedule, the bank's device, the model fingerprint, a progress callback that honours Cancel)."""
    ms = model.get_model_object("model_sampling")
    if not 2 <= steps <= ms.sigmas.shape[0]:
        raise InputError(f"steps: must be 2..{ms.sigmas.shape[0]} (the model's training timesteps; got {steps}).")
    sched = schedule.ddim_schedule(ms, steps)
    device = torch.device("cpu") if bank_device == "cpu" else comfy.model_management.get_torch_device()
    h, w = samples.shape[-2:]
    need = memory_bank.hidden_nbytes(umap.bank_layers, steps, halves, h, w, DTYPES[bank_precision].itemsize)
    check_memory(need, device, f"a {steps}-step {bank_precision} memory bank for this image", "use a smaller "
                 "image, fewer steps, bank_precision fp8, or bank_device cpu.")
    fp = unet_map.fingerprint(unet, patch_summary(model))
    pbar = comfy.utils.ProgressBar(steps)

    def progress(i, denoised, x, total):
        comfy.model_management.throw_exception_if_processing_interrupted()
        pbar.update_absolute(i + 1, total)

    return sched, device, fp, progress
