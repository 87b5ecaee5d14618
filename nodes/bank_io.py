"""DragonMemoryBankSave / DragonMemoryBankLoad: keep a memory bank between sessions as safetensors."""
from __future__ import annotations

import os
import re

import folder_paths
from comfy_api.latest import io, ui

from ..dragon_ops import bank_checks, memory_bank, schedule, unet_map
from .common import BANK, InputError, MemoryBank, check_banks, patch_summary, search_words, unet_of

SUBFOLDER = "dragon_banks"
NAME_RULE = re.compile(r"[A-Za-z0-9_-]{1,100}")  # a saved bank's name, without ".safetensors"
NAME_HELP = "1 to 100 letters (A-Z, a-z), digits, '-' or '_'"


def bank_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), SUBFOLDER)


def bank_files() -> list[str]:
    """The banks Load offers: regular files (no links) in the banks folder whose names follow ``NAME_RULE``."""
    folder = bank_dir()
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.endswith(".safetensors")
                  and NAME_RULE.fullmatch(f.removesuffix(".safetensors")) and resolve(f) is not None)


def resolve(file: str) -> str | None:
    """The bank's path, or None unless it is a regular file directly inside the banks folder (links refused)."""
    folder = os.path.realpath(bank_dir())
    path = os.path.join(bank_dir(), file)
    if os.path.islink(path) or not os.path.isfile(path) or os.path.dirname(os.path.realpath(path)) != folder:
        return None
    return path


class DragonMemoryBankSave(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonMemoryBankSave",
            display_name="Save Dragon Memory Bank",
            category=BANK,
            **search_words("save memory bank"),
            description=(f"Writes a memory bank to output/{SUBFOLDER}/<name>.safetensors (a JSON header with format "
                         "version, model fingerprint, schedule and shapes). The write is atomic: the file is "
                         "complete or absent, never half-written."),
            inputs=[
                MemoryBank.Input("bank", tooltip="The memory bank from DDIMInvertToMemoryBank."),
                io.String.Input("name", default="bank", tooltip=f"File name without extension: {NAME_HELP}. An "
                                "existing bank of that name is replaced."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, *, bank, name) -> io.NodeOutput:
        check_banks(bank=bank)
        if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
            shown = repr(name)[:60]
            raise InputError(f"name: {shown} is not a bank name; use {NAME_HELP}.")
        path = os.path.join(bank_dir(), name + ".safetensors")
        memory_bank.save(bank, path)
        return io.NodeOutput(ui=ui.PreviewText(f"saved {os.path.relpath(path, folder_paths.get_output_directory())}"
                                               f": {bank.describe()}"))


class DragonMemoryBankLoad(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonMemoryBankLoad",
            display_name="Load Dragon Memory Bank",
            category=BANK,
            **search_words("load memory bank"),
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
        if not isinstance(file, str) or file not in bank_files():
            return (f"file: {repr(file)[:60]} is not a bank in output/{SUBFOLDER}/; save a bank first or refresh the "
                    "node list.")
        return True

    @classmethod
    def execute(cls, *, file, model=None, latent=None) -> io.NodeOutput:
        path = resolve(os.path.basename(file)) if isinstance(file, str) and file in bank_files() else None
        if path is None:
            raise InputError(f"file: {repr(file)[:60]} is not a bank in output/{SUBFOLDER}/; save a bank first.")
        try:
            bank = memory_bank.load(path)
            fp = None
            if model is not None:
                unet = unet_of(model)
                fp = unet_map.fingerprint(unet, patch_summary(model))
                sched = schedule.ddim_schedule(model.get_model_object("model_sampling"), bank.schedule.steps)
                bank_checks.check_model(bank, sched, unet_map.map_unet(unet).bank_layers)
            shape = tuple(latent["samples"].shape) if latent is not None else None
            memory_bank.check_matches(bank, fp, shape, what=f"file '{file}'")
        except memory_bank.BankError as e:
            raise InputError(f"file: {e}") from e
        return io.NodeOutput(bank, ui=ui.PreviewText(bank.describe()))
