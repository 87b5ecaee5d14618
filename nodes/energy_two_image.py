"""DragonEnergyAppearance and DragonEnergyPaste: edits that read a second image's memory bank."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..dragon_ops import geometry, memory_bank
from ..dragon_ops.terms import TwoImageTerm
from .common import (
    CATEGORY,
    InputError,
    MemoryBank,
    chain,
    check_choice,
    check_finite,
    energy_input,
    energy_output,
    mask_2d,
)


def _grid_mask(mask, name: str, bank):
    h, w = bank.latent_shape[-2:]
    m = mask_2d(mask, name, (h, w))
    grid = geometry.resize_mask(m, (2 * h, 2 * w))
    if not bool(grid.any()):
        raise InputError(f"{name}: is empty (or smaller than one latent cell); mask the object.")
    return m, grid


def _same_source(bank, reference_bank):
    try:
        memory_bank.check_same_source(bank, reference_bank, what="reference_bank")
    except memory_bank.BankError as e:
        raise InputError(str(e)) from e


MATCHES = ("stretched", "mean")
START_NOISE = ("reference mean", "reference noise")
COMMON = [
    MemoryBank.Input("reference_bank", tooltip="Memory bank of the reference image, inverted with its own "
                     "prompt by the same MODEL, at the same size and steps."),
    io.Mask.Input("reference_mask", tooltip="The object on the reference image, at its resolution."),
]


class DragonEnergyAppearance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonEnergyAppearance",
            display_name="Dragon Energy: Replace Appearance",
            category=CATEGORY,
            description=(
                "Adds an appearance-replacement term: the object under 'mask' keeps its outline and takes the look "
                "of the reference image's masked object; the rest stays. The start noise inside the mask takes the "
                "reference object's mean, and guidance matches decoder features, cell by cell with the reference "
                "stretched onto the object ('stretched'), or as whole-object means (the paper's 'mean'). For "
                "steps 0-35 the self-attention reads the base's background and the reference's object. No "
                "image-prompt encoder is used, so the official code's image-token leak into the text attention "
                "(quirk Q3) cannot occur."),
            inputs=[
                MemoryBank.Input("bank", tooltip="Memory bank of the image to edit."),
                io.Mask.Input("mask", tooltip="The object to restyle, at the image's resolution."),
                *COMMON,
                io.Float.Input("w_edit", default=3.5, min=0.0, max=100.0, step=0.1, tooltip="Weight of E_edit."),
                io.Float.Input("w_content", default=5.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Weight of E_content outside the object."),
                io.Combo.Input("match", options=list(MATCHES), default="stretched", optional=True, tooltip=(
                    "How E_edit compares the object with the reference. 'stretched': cell by cell, the "
                    "reference object's box stretched onto the object's box (keeps the object's outline; best "
                    "on the project's benchmark). 'mean': the object's mean features against the reference's, "
                    "as in the paper (a global look; the outline may drift toward the reference's).")),
                io.Float.Input("noise_shift", default=1.0, min=0.0, max=1.0, step=0.05, optional=True, tooltip=(
                    "How far the start noise inside the mask moves to the reference object's mean noise: 1 "
                    "matches it (the look starts right), 0 leaves the inverted noise as it is (the paper).")),
                energy_input(),
            ],
            outputs=[energy_output()],
        )

    @classmethod
    def execute(cls, *, bank, mask, reference_bank, reference_mask, w_edit, w_content, match="stretched",
                noise_shift=1.0, energy=None):
        edit = chain(energy)
        check_finite(w_edit=w_edit, w_content=w_content, noise_shift=noise_shift)
        check_choice("match", match, MATCHES)
        if not 0.0 <= noise_shift <= 1.0:
            raise InputError(f"noise_shift: {noise_shift} is outside 0..1.")
        _same_source(bank, reference_bank)
        _, target = _grid_mask(mask, "mask", bank)
        _, source = _grid_mask(reference_mask, "reference_mask", reference_bank)
        pairs = geometry.fit(source, target) if match == "stretched" else None
        shift = (geometry.to_latent_grid(target, 2), geometry.to_latent_grid(source, 2), noise_shift)
        term = TwoImageTerm(bank, reference_bank, target, source, w_edit, w_content, pairs, shift=shift)
        return io.NodeOutput(edit.then(term), ui=ui.PreviewText(f"appearance ({match}): reference object -> "
                                                                f"masked object"))


class DragonEnergyPaste(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonEnergyPaste",
            display_name="Dragon Energy: Paste Object",
            category=CATEGORY,
            description=(
                "Adds an object-pasting term: the reference image's masked object is pasted into this image, "
                "moved by (dx, dy) and scaled about its own centre, and blended by per-pixel feature "
                "correspondence. The start noise at the target is the background's own inverted noise moved to "
                "the reference object's mean ('reference mean'), or the reference's inverted noise copied in "
                "('reference noise', the paper); mask and latent offsets come from one geometry, so they always "
                "agree (quirk Q11)."),
            inputs=[
                MemoryBank.Input("bank", tooltip="Memory bank of the background image."),
                *COMMON,
                io.Int.Input("dx", default=0, min=-8192, max=8192, tooltip="Horizontal offset of the pasted object "
                             "from where it is on the reference, in image pixels."),
                io.Int.Input("dy", default=0, min=-8192, max=8192, tooltip="Vertical offset, in image pixels."),
                io.Float.Input("scale", default=1.0, min=0.1, max=4.0, step=0.05,
                               tooltip="Resize the object about its own centre."),
                io.Float.Input("w_edit", default=4.0, min=0.0, max=100.0, step=0.1, tooltip="Weight of E_edit."),
                io.Float.Input("w_content", default=6.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Weight of E_content outside the pasted object."),
                io.Combo.Input("start_noise", options=list(START_NOISE), default="reference mean", optional=True,
                               tooltip=(
                    "The pasted object's start noise. 'reference mean': the background's own inverted noise, "
                    "moved to the reference object's mean (guidance then draws the object; on the project's "
                    "benchmark this keeps the whole picture clean). 'reference noise': the reference's inverted "
                    "noise copied in, as the paper does (carries the reference's detail, but noise inverted from "
                    "another picture can leave artefacts across this one).")),
                energy_input(),
            ],
            outputs=[energy_output()],
        )

    @classmethod
    def execute(cls, *, bank, reference_bank, reference_mask, dx, dy, scale, w_edit, w_content,
                start_noise="reference mean", energy=None):
        edit = chain(energy)
        check_finite(scale=scale, w_edit=w_edit, w_content=w_content)
        check_choice("start_noise", start_noise, START_NOISE)
        _same_source(bank, reference_bank)
        if not 0.1 <= scale <= 4.0:
            raise InputError(f"scale: {scale} is outside 0.1..4.")
        m, source = _grid_mask(reference_mask, "reference_mask", reference_bank)
        cell = m.shape[1] / source.shape[1]  # image pixels per matching cell
        cy, cx = geometry.centroid(m > 0.5)
        grid = geometry.move(source, dy / cell, dx / cell, scale, (cy / cell, cx / cell))
        lat_src = geometry.resize_mask(m, tuple(s // 2 for s in source.shape))
        if not bool(grid.target.any()) or not bool(lat_src.any()):
            raise InputError("dx/dy: the pasted object lands entirely outside the image; use a smaller offset.")
        lat = geometry.move(lat_src, dy / (2 * cell), dx / (2 * cell), scale, (cy / (2 * cell), cx / (2 * cell)))
        pasted = start_noise == "reference noise"  # the paper's start noise, else this picture's noise shifted
        term = TwoImageTerm(bank, reference_bank, grid.target, source, w_edit, w_content, grid,
                            lat if pasted else None, 1500 * 0.04, None if pasted else (lat.target, lat.source, 1.0))
        return io.NodeOutput(edit.then(term), ui=ui.PreviewText(f"paste at ({dx}, {dy}) px, scale {scale:g}"))
