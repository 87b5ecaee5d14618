"""What a memory-bank file must satisfy before it is used: its digest, and what a digest cannot vouch for.

A bank file carries a SHA-256 digest of its header and of every tensor's name, dtype, shape and bytes. An edit
made after saving (a header field changed, a tensor zeroed or scaled, a dtype swapped) no longer matches it. A file
written with a fresh digest by something else is still checked for what the pack relies on: the header's types,
step indices inside the schedule, one hidden tensor per layer in the declared dtype and shape, finite values, and,
with a MODEL at hand, the schedule and the layer map of that MODEL. Every refusal is a ``BankError`` whose message
says what differs (the nodes prefix it with the input's name).
"""
from __future__ import annotations

import hashlib
import json
import math

import torch

MAX_ABS_LATENT = 1e4  # an inverted latent in sigma space stays far below this (x_T ~ sigma_max * N(0, 1))


class BankError(ValueError):
    """A bank that cannot be used: corrupt, edited, or made by another model, size or schedule."""


def digest(header: dict, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the header (without its digest) and of every tensor's name, dtype, shape and raw bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "digest"}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise BankError(f"its header's {what} must be a list of integers (the file was edited or is damaged)")
    return tuple(value)


def _floats(value, what: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                                              math.isfinite(v) for v in value):
        raise BankError(f"its header's {what} must be a list of finite numbers (the file was edited or is damaged)")
    return tuple(float(v) for v in value)


def check_header(head: dict) -> None:
    """Types and ranges of the header fields the loader reads."""
    if not isinstance(head, dict):
        raise BankError("its header is not a JSON object (the file was edited or is damaged)")
    missing = [k for k in ("fingerprint", "schedule", "latent_shape", "steps", "dtype", "layers", "hidden_shapes")
               if k not in head]
    if missing:
        raise BankError(f"its header lacks {', '.join(missing)} (the file was edited or is damaged)")
    sched = head["schedule"]
    if not isinstance(sched, dict) or not {"timesteps", "sigmas", "sigma_final"} <= set(sched):
        raise BankError("its header's schedule is malformed (the file was edited or is damaged)")
    timesteps, sigmas = _ints(sched["timesteps"], "timesteps"), _floats(sched["sigmas"], "sigmas")
    (final,) = _floats([sched["sigma_final"]], "sigma_final")
    if len(timesteps) != len(sigmas) or len(sigmas) < 2:
        raise BankError("its header has timesteps and sigmas of different lengths (the file was edited or is damaged)")
    ladder = sigmas + (final,)
    if not all(a > b > 0 for a, b in zip(ladder, ladder[1:])):
        raise BankError("its schedule's sigmas do not fall step by step to a positive final sigma (the file was "
                        "edited or is damaged)")
    steps = _ints(head["steps"], "steps")
    if list(steps) != sorted(set(steps)) or (steps and not 0 <= steps[0] <= steps[-1] < len(sigmas)):
        raise BankError(f"its step indices must ascend inside 0..{len(sigmas) - 1} (got {list(steps)[:6]}...; the "
                        "file was edited or is damaged)")
    if not isinstance(head["layers"], list) or not all(
            isinstance(layer, dict) and set(layer) == {"block", "index", "channels", "factor"}
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in layer.values())
            for layer in head["layers"]):
        raise BankError("its header's layers are malformed (the file was edited or is damaged)")
    _ints(head["latent_shape"], "latent_shape")
    if not isinstance(head["hidden_shapes"], dict):
        raise BankError("its header's hidden_shapes are malformed (the file was edited or is damaged)")
    if head.get("cfg") is not None and not (_floats([head["cfg"]], "cfg")[0] > 0):
        raise BankError("its header's generation cfg must be a positive number (the file was edited or is damaged)")


def check_tensors(head: dict, latents: torch.Tensor | None, hidden: dict[str, torch.Tensor], dtype) -> None:
    """Every tensor as the header declares it: shapes, one per layer, the declared dtype, finite values."""
    keys = {f"output.{layer['block']}.{layer['index']}" for layer in head["layers"]}
    n = len(head["schedule"]["sigmas"])
    if latents is None or list(latents.shape) != [n + 1] + list(head["latent_shape"]) or \
            {k: list(v.shape) for k, v in hidden.items()} != head["hidden_shapes"]:
        raise BankError("its tensor shapes do not match the bank header (the file was edited or is damaged)")
    if set(hidden) != keys:
        raise BankError(f"its hidden states are for layers {sorted(hidden)[:4]}, its header names {sorted(keys)[:4]} "
                        "(the file was edited or is damaged)")
    if latents.dtype != torch.float32 or any(v.dtype != dtype for v in hidden.values()):
        raise BankError(f"its tensors are not stored as the header says (latents float32, hidden states "
                        f"{head['dtype']}): the file was edited or is damaged")
    if not bool(torch.isfinite(latents).all()) or float(latents.abs().max()) > MAX_ABS_LATENT:
        raise BankError("its latents are not finite or far out of range (the file was edited or is damaged)")
    halves = 2 if head.get("cfg") is not None else 1
    if any(v.ndim != 4 or not 1 <= v.shape[1] <= halves for v in hidden.values()):
        kind = "a generated" if halves == 2 else "an inverted"
        raise BankError(f"its hidden states hold more CFG halves than {kind} bank records (the file was edited or is "
                        "damaged)")
    for v in hidden.values():
        if not bool(torch.isfinite(v.float()).all()):
            raise BankError("its hidden states contain NaN or Inf (the file was edited or is damaged)")


def check_model(bank, schedule, layers: tuple) -> None:
    """A bank used with a MODEL must follow that MODEL's own DDIM schedule and decoder layer map."""
    ours = torch.tensor(bank.schedule.sigmas + (bank.schedule.sigma_final,), dtype=torch.float64)
    theirs = torch.tensor(schedule.sigmas + (schedule.sigma_final,), dtype=torch.float64)
    if bank.schedule.timesteps != schedule.timesteps or not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7):
        raise BankError(f"its {bank.schedule.steps}-step schedule differs from this MODEL's (timesteps or sigmas); "
                        "re-run DDIMInvertToMemoryBank with this MODEL")
    if tuple(bank.layers) != tuple(layers):
        raise BankError("its decoder layers differ from this MODEL's layer map; re-run DDIMInvertToMemoryBank "
                        "with this MODEL")
