"""Types and checks shared by the nodes. Errors name the input and say how to fix it."""
from __future__ import annotations

import math

import torch
from comfy_api.latest import io

MemoryBank = io.Custom("DRAGON_MEMORY_BANK")
CATEGORY = "Dragon Drag Edit"
BANK, EDITS, SAMPLING = (f"{CATEGORY}/{part}" for part in ("memory bank", "edits", "sampling"))


def search_words(*words: str) -> dict:
    """``io.Schema`` keyword for extra node-search words, where ComfyUI has the field (newer than 0.3.75; frontend
    1.58 searches it). Both frontends search display names, so those carry the words a user types first."""
    return {"search_aliases": list(words)} if "search_aliases" in getattr(io.Schema, "__dataclass_fields__", {}) \
        else {}


class InputError(ValueError):
    """Bad node input; the message starts with the input's name."""


def check_finite(**values: float) -> None:
    """Refuse NaN/Inf numbers by name. ComfyUI's min/max validation lets NaN through (NaN compares false)."""
    for name, value in values.items():
        if not math.isfinite(value):
            raise InputError(f"{name}: must be a finite number, got {value}.")


def check_choice(name: str, value, options) -> None:
    """Refuse a value outside a combo's options by name (API-format prompts can send anything)."""
    if value not in options:
        raise InputError(f"{name}: {value!r} is not one of {', '.join(map(str, options))}.")


def check_banks(**banks) -> None:
    """Refuse by name anything that is not a memory bank (an API prompt can send a raw value where a link goes)."""
    from ..dragon_ops.memory_bank import MemoryBank as Bank

    for name, bank in banks.items():
        if not isinstance(bank, Bank):
            raise InputError(f"{name}: is not a DRAGON_MEMORY_BANK ({type(bank).__name__}); connect the memory bank "
                             "output of DDIMInvertToMemoryBank or Load Dragon Memory Bank.")


def unet_of(model, name: str = "model"):
    """The ComfyUI UNetModel inside a MODEL, or a clear error."""
    from ..dragon_ops.unet_map import is_unet

    unet = getattr(getattr(model, "model", None), "diffusion_model", None)
    if unet is None or not is_unet(unet):
        kind = type(unet).__name__ if unet is not None else type(model).__name__
        raise InputError(f"{name}: DragonDiffusion needs a UNet model (SD1.x, SD2.x, SDXL); this MODEL is a "
                         f"{kind}. Load a UNet checkpoint.")
    ms = model.get_model_object("model_sampling")
    if not hasattr(ms, "sigmas") or not hasattr(ms, "sigma"):
        raise InputError(f"{name}: its model_sampling ({type(ms).__name__}) is not a discrete DDPM schedule; "
                         "DDIM inversion needs one (remove ModelSampling* nodes that change it).")
    return unet


def single_latent(latent: dict, name: str = "latent") -> torch.Tensor:
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or getattr(samples, "is_nested", False) or samples.ndim != 4:
        raise InputError(f"{name}: expected an image LATENT of shape [1, C, H, W] (VAEEncode of one image).")
    if samples.shape[0] != 1:
        raise InputError(f"{name}: holds a batch of {samples.shape[0]} images; one bank inverts one image. "
                         "Pick one with 'Latent From Batch'.")
    if not torch.isfinite(samples).all():
        raise InputError(f"{name}: contains NaN or Inf values; re-encode the image.")
    return samples


def check_latent_fits(samples: torch.Tensor, model, umap, name: str = "latent") -> None:
    channels = getattr(model.model.latent_format, "latent_channels", samples.shape[1])
    if samples.shape[1] != channels:
        raise InputError(f"{name}: has {samples.shape[1]} channels but this MODEL uses {channels}; encode the "
                         "image with the VAE that belongs to the model.")
    grid = max(layer.factor for layer in umap.bank_layers)
    if samples.shape[2] % grid or samples.shape[3] % grid:
        raise InputError(f"{name}: size {samples.shape[3]}x{samples.shape[2]} latent cells is not a multiple of "
                         f"{grid}; resize the image so both sides are multiples of {grid} latent cells.")


def free_bytes(device: torch.device) -> int:
    """Memory free for new tensors on ``device``: available RAM for the CPU, free VRAM for a GPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def check_memory(need: int, device: torch.device, what: str, options: str, name: str = "latent") -> None:
    """Fail before any compute when ``need`` bytes would not fit on ``device`` (kept 10 % headroom)."""
    free = free_bytes(device)
    if need > 0.9 * free:
        raise InputError(f"{name}: {what} needs about {need / 2**30:.2f} GiB but only {free / 2**30:.2f} GiB is "
                         f"free on {device}; {options}")


def patch_summary(model) -> str:
    """Weight patches (LoRA etc.) that change what the UNet computes, for the bank fingerprint."""
    patches = getattr(model, "patches", {}) or {}
    return ";".join(f"{k}:{[round(float(p[0]), 6) for p in v]}" for k, v in sorted(patches.items()))


Energy = io.Custom("DRAGON_ENERGY")


def energy_input():
    return Energy.Input("energy", optional=True, tooltip="Optional upstream edit to extend.")


def energy_output():
    return Energy.Output("energy_out", display_name="energy", tooltip="The edit with this term added.")


def mask_2d(mask: torch.Tensor, name: str, latent_hw: tuple[int, int]) -> torch.Tensor:
    """A ComfyUI MASK ([H, W] or [1, H, W]) as a float (H, W) tensor whose aspect ratio matches the latent's."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or (mask.ndim == 3 and mask.shape[0] != 1):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"{name}: expected one mask [H, W] or [1, H, W], got {shape}; pick one with a mask "
                         "batch node.")
    m = mask.reshape(mask.shape[-2:]).float()
    if not torch.isfinite(m).all():
        raise InputError(f"{name}: contains NaN or Inf values.")
    h, w = latent_hw
    if abs(m.shape[0] / m.shape[1] - h / w) > 1.0 / min(h, w):
        raise InputError(f"{name}: is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h} latent cells, a different "
                         "aspect ratio; use a mask of the edited image.")
    return m


def check_points(pairs, size: tuple[int, int], name: str, target_name: str | None = None) -> None:
    """Every point of (hx, hy, tx, ty) pairs must lie inside a (width, height) image. Errors name ``name`` for a
    handle and ``target_name`` (default ``name``) for a target."""
    w, h = size
    for pair in pairs:
        for x, y, who in ((*pair[:2], name), (*pair[2:], target_name or name)):
            if not (0 <= x < w and 0 <= y < h):
                raise InputError(f"{who}: point ({x:g}, {y:g}) is outside the {w}x{h} image.")


def chain(energy):
    """The upstream edit, or an empty one."""
    from ..dragon_ops.edit import Edit

    edit = energy if energy is not None else Edit()
    if not isinstance(edit, Edit):
        raise InputError("energy: is not a DRAGON_ENERGY value.")
    return edit
