"""DragonMemoryBankSave / DragonMemoryBankLoad: keep a memory bank between sessions as safetensors."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io, ui

from ..dragon_ops import memory_bank, unet_map
from .common import CATEGORY, InputError, MemoryBank, patch_summary, unet_of

SUBFOLDER = "dragon_banks"


def bank_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), SUBFOLDER)


def bank_files() -> list[str]:
    folder = bank_dir()
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))


class DragonMemoryBankSave(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonMemoryBankSave",
            display_name="Save Dragon Memory Bank",
            category=CATEGORY,
            description=(f"Writes a memory bank to output/{SUBFOLDER}/<name>.safetensors (a JSON header with format "
                         "version, model fingerprint, schedule and shapes). The write is atomic: the file is "
                         "complete or absent, never half-written."),
            inputs=[
                MemoryBank.Input("bank", tooltip="The memory bank from DDIMInvertToMemoryBank."),
                io.String.Input("name", default="bank", tooltip="File name without extension; an existing file of "
                                "that name is replaced."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, *, bank, name) -> io.NodeOutput:
        clean = os.path.basename(str(name).strip())
        if not clean or clean.startswith(".") or clean != str(name).strip():
            raise InputError(f"name: '{name}' is not a plain file name; use letters, digits, '-' or '_'.")
        path = os.path.join(bank_dir(), clean + ".safetensors")
        memory_bank.save(bank, path)
        return io.NodeOutput(ui=ui.PreviewText(f"saved {os.path.relpath(path, folder_paths.get_output_directory())}"
                                               f": {bank.describe()}"))


class DragonMemoryBankLoad(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonMemoryBankLoad",
            display_name="Load Dragon Memory Bank",
            category=CATEGORY,
            description=(f"Reads a memory bank saved in output/{SUBFOLDER}/. Refuses a truncated or edited file, and, "
                         "when a MODEL or LATENT is connected, a bank made by another model or for another size."),
            inputs=[
                io.Combo.Input("file", options=bank_files(), tooltip=f"A bank in output/{SUBFOLDER}/."),
                io.Model.Input("model", optional=True, tooltip="Optional: check the bank was made by this MODEL."),
                io.Latent.Input("latent", optional=True, tooltip="Optional: check the bank fits this latent's size."),
            ],
            outputs=[MemoryBank.Output("bank_out", display_name="memory bank",
                                       tooltip="The loaded memory bank (on the CPU).")],
        )

    @classmethod
    def validate_inputs(cls, file) -> bool | str:
        if file not in bank_files():
            return f"file: '{file}' is not in output/{SUBFOLDER}/; save a bank first or refresh the node list."
        return True

    @classmethod
    def execute(cls, *, file, model=None, latent=None) -> io.NodeOutput:
        path = os.path.join(bank_dir(), os.path.basename(file))
        try:
            bank = memory_bank.load(path)
            fp = None
            if model is not None:
                fp = unet_map.fingerprint(unet_of(model), patch_summary(model))
            shape = tuple(latent["samples"].shape) if latent is not None else None
            memory_bank.check_matches(bank, fp, shape, what=f"file '{file}'")
        except memory_bank.BankError as e:
            raise InputError(f"file: {e}") from e
        return io.NodeOutput(bank, ui=ui.PreviewText(bank.describe()))
