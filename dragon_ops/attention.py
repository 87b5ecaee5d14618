"""Visual cross-attention: the decoder self-attention patch that records and reads the memory bank.

One plain function, ``attn1_patch``, is set on a clone of the MODEL with
``set_model_attn1_patch``. It sees LN1(h), the input of to_q/to_k/to_v, and
returns (query input, key input, value input). It is stateless: the sampler
puts a ``BankState`` into ``transformer_options[STATE_KEY]`` for each model
call, so the patch behaves the same whether ComfyUI deep-copies patches on
``clone()`` (0.3.75) or shares them (upstream), and it is inert in any call
that carries no state (other samplers, other workflows).
"""
from __future__ import annotations

import dataclasses

import torch

from .bank_rule import BankRead
from .memory_bank import FP8_MAX

STATE_KEY = "dragon_bank_state"


COND, UNCOND = 0, 1  # ComfyUI's chunk labels in transformer_options["cond_or_uncond"] (comfy/samplers.py)


@dataclasses.dataclass
class BankRecorder:
    """Collects LN1(h) per (step, layer, CFG half) while inversion or generation runs; the first call per key wins.

    Inversion runs cond only, so it records one half. Generation records each half that CFG evaluates (cond and,
    at cfg > 1, uncond), so that sampling it back can give each half what it saw (``halves_for``).
    """

    layer_keys: frozenset[str]
    dtype: torch.dtype
    device: torch.device
    step: int = -1
    records: dict[tuple[int, str, int], torch.Tensor] = dataclasses.field(default_factory=dict)

    def __call__(self, key: str, hidden: torch.Tensor, halves: list[int]) -> None:
        if key not in self.layer_keys:
            return
        for half, h in zip(halves, hidden.chunk(len(halves))):
            if (self.step, key, half) in self.records:
                continue
            h = h.detach()
            if self.dtype == torch.float8_e4m3fn:  # a plain cast would turn values past the fp8 range into NaN
                h = h.clamp(-FP8_MAX, FP8_MAX)
            self.records[(self.step, key, half)] = h.to(device=self.device, dtype=self.dtype, copy=True)

    def stacked(self, step: int, key: str) -> torch.Tensor:
        """(halves, tokens, channels) for one step and layer: cond first, then uncond if it was recorded."""
        return torch.cat([self.records[(step, key, half)] for half in (COND, UNCOND)
                          if (step, key, half) in self.records])


def chunk_halves(extra_options: dict, batch: int) -> list[int]:
    """The CFG half of each batch chunk in this call (``cond_or_uncond``); all cond when ComfyUI does not say."""
    order = list(extra_options.get("cond_or_uncond") or ())
    return order if order and batch % len(order) == 0 else [COND]


def halves_for(stored: torch.Tensor, halves: list[int], batch: int) -> torch.Tensor:
    """The bank's tokens for a batch of ``batch`` rows in chunks of ``halves``: a one-half bank (inversion, cond
    only) serves every chunk, as in the spec; a two-half bank (generation) gives each chunk its own half."""
    if stored.shape[0] == 1:
        return stored.expand(batch, -1, -1)
    return stored[halves].repeat_interleave(batch // len(halves), dim=0)


@dataclasses.dataclass(frozen=True)
class BankState:
    """What the patch does in one model call: record, or read the bank's K/V inputs for ``step``.

    ``read`` is the step's ``bank_rule.BankRead`` (spec section 5); ``halves_for`` fits the bank's states to the
    CFG batch.
    """

    recorder: BankRecorder | None = None
    read: BankRead | None = None
    layers: dict | None = None  # layer key -> BankLayer
    step: int = -1  # the sampling step, for inspection


def layer_key(extra_options: dict) -> str | None:
    block = extra_options.get("block")
    if block is None or block[0] != "output":
        return None
    return f"output.{block[1]}.{extra_options.get('block_index', 0)}"


def attn1_patch(n: torch.Tensor, context: torch.Tensor, value: torch.Tensor, extra_options: dict):
    """ComfyUI attn1_patch: (n, context, value, extra_options) -> (n, context, value)."""
    state = extra_options.get(STATE_KEY)
    key = layer_key(extra_options) if state is not None else None
    if key is None:
        return n, context, value
    if state.recorder is not None:
        state.recorder(key, n, chunk_halves(extra_options, n.shape[0]))
        return n, context, value
    layer = state.layers.get(key) if state.read is not None else None
    stored = state.read.tokens(layer) if layer is not None else None
    if stored is None:
        return n, context, value
    stored = stored.to(device=n.device, dtype=n.dtype)  # one copy of the bank's rows, before fitting the batch
    kv = halves_for(stored, chunk_halves(extra_options, n.shape[0]), n.shape[0])
    return (n, *state.read.rule.keys_values(context, value, kv))
