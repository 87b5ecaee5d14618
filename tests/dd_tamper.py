"""Ways a memory-bank file gets edited after it was saved (issue 20), shared by the integrity tests and the fuzz."""
from __future__ import annotations

import json

import safetensors.torch
import torch

from dragon_drag_edit.dragon_ops import bank_checks


def tamper(path: str, change, fresh_digest: bool, out: str | None = None) -> None:
    """Apply ``change(header, tensors)`` to the bank file at ``path`` (written to ``out``, default in place);
    ``fresh_digest``: also write a digest that matches the edit, as a deliberate forger would."""
    tensors = safetensors.torch.load_file(path)
    with safetensors.safe_open(path, framework="pt") as f:
        head = json.loads(f.metadata()["dragon"])
    change(head, tensors)
    if fresh_digest:
        head["digest"] = bank_checks.digest(head, tensors)
    safetensors.torch.save_file(tensors, out or path, metadata={"dragon": json.dumps(head)})


def _hidden(tensors):
    return [k for k in tensors if k.startswith("hidden/")]


def sigmas_x10(head, tensors):
    head["schedule"]["sigmas"] = [s * 10 for s in head["schedule"]["sigmas"]]
    head["schedule"]["sigma_final"] *= 10


def steps_reversed(head, tensors):
    head["steps"] = head["steps"][::-1]


def steps_not_numbers(head, tensors):
    head["steps"] = ["a"] * len(head["steps"])


def layers_renumbered(head, tensors):
    for layer in head["layers"]:
        layer["block"] += 20


def dtype_swapped(head, tensors):
    for k in _hidden(tensors):
        tensors[k] = tensors[k].float().clamp(-127, 127).to(torch.int8)


def zeroed(head, tensors):
    for k in _hidden(tensors):
        tensors[k] = torch.zeros_like(tensors[k])


def nan_sigmas(head, tensors):
    head["schedule"]["sigmas"][1] = float("nan")


def latents_x1e30(head, tensors):
    tensors["latents"] = tensors["latents"] * 1e30


CASES = {  # tampering: (edit, what the checks say when the editor also writes a fresh digest)
    "sigmas x10": (sigmas_x10, "schedule differs from this MODEL"),
    "steps reversed": (steps_reversed, "step indices must ascend"),
    "steps not numbers": (steps_not_numbers, "steps must be a list of integers"),
    "layers renumbered": (layers_renumbered, "hidden states are for layers"),
    "int8 hidden states, header says float16": (dtype_swapped, "not stored as the header says"),
    "hidden states zeroed": (zeroed, None),  # a consistent bank of something else: only the digest can tell
    "NaN sigmas": (nan_sigmas, "finite numbers"),
    "latents x1e30": (latents_x1e30, "not finite or far out of range"),
}
