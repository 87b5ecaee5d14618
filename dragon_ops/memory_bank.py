"""The memory bank: what DDIM inversion of the source image leaves for the edit to read.

Per sampling step i it holds the inversion latent z_i^gud = L[N-i] (all N+1
latents are kept: they are small) and, for every bank layer, the
self-attention *input* of the decoder: the normalised hidden state LN1(h) that
enters to_q/to_k/to_v. The official code stores the projected K and V instead;
since both are linear in LN1(h), storing LN1(h) and projecting on use is
identical and takes half the bytes (algorithm spec, section 2).

Byte count of the hidden states: steps * batch * sum_l tokens_l * channels_l * itemsize.
SD1.5 at 512x512, 50 steps, fp16: 50 * 3360*64*64/2 * 2 bytes = 0.64 GiB.

The bank is immutable by convention: nothing in the pack writes into its tensors.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import safetensors
import safetensors.torch
import torch

from . import bank_checks
from .bank_checks import BankError
from .schedule import DdimSchedule
from .unet_map import BankLayer

FORMAT = "dragon-memory-bank"
# v3: the official clean-latent convention (L[0]) and a fingerprint that a cast of the weights to fp16 keeps;
# v2: the fingerprint no longer hashes ComfyUI's unet_config; the header carries a digest
VERSION = 3
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}
FP8_MAX = 448.0  # largest finite float8_e4m3fn; LN1(h) is clamped to it before the cast


@dataclasses.dataclass(frozen=True)
class MemoryBank:
    schedule: DdimSchedule
    latents: torch.Tensor  # (N+1, B, C, H, W) float32 in LATENT space; latents[k] = L[k]
    hidden: dict[str, torch.Tensor]  # layer key -> (len(steps), B, tokens, channels)
    steps: tuple[int, ...]  # sampling step indices with hidden states, ascending
    layers: tuple[BankLayer, ...]
    fingerprint: str
    cfg: float | None = None  # None: DDIM inversion (cond only); a number: generated at this CFG scale

    @property
    def generated(self) -> bool:
        """Recorded along its own generation (``generation.py``), not by inverting an image."""
        return self.cfg is not None

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape[1:])

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.hidden.values())).dtype

    def latent_at(self, step: int) -> torch.Tensor:
        """z_i^gud: the inversion latent at the noise level of sampling step ``step`` (L[N-step])."""
        return self.latents[self.schedule.steps - step]

    def hidden_at(self, step: int, key: str) -> torch.Tensor | None:
        """LN1(h) recorded for sampling step ``step`` at bank layer ``key``, or None if not kept."""
        if step not in self.steps or key not in self.hidden:
            return None
        return self.hidden[key][self.steps.index(step)]

    def nbytes(self) -> int:
        return _nbytes((self.latents, *self.hidden.values()))

    # ComfyUI's RAM-pressure output cache (upstream's default) sizes cached outputs to pick what to evict: 0.3.75
    # calls get_ram_usage(), upstream scans the CPU tensors that _comfy_cache_tensors() returns
    # (comfy_execution/caching.py @0c5058b9). The bank reports its true size on purpose. Under RAM pressure
    # upstream may evict entries of 512 MiB or more even during the running prompt (execution.py @04e2a914), but
    # the nodes that still need the bank hold it through the execution list (comfy_execution/graph.py
    # ``execution_cache``), so the running edit never re-inverts; the cost is one inversion in the next prompt,
    # paid only when RAM is short, where keeping 0.3-0.7 GiB cached could end the run out of memory instead.
    def get_ram_usage(self) -> int:
        return _nbytes(self._comfy_cache_tensors())

    def _comfy_cache_tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.latents, *self.hidden.values()) if t.device.type == "cpu"]

    def header(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
            "schedule": self.schedule.as_dict(), "latent_shape": list(self.latent_shape),
            "steps": list(self.steps), "dtype": str(self.dtype).removeprefix("torch."),
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
            "hidden_shapes": {k: list(v.shape) for k, v in self.hidden.items()}, "cfg": self.cfg,
        }

    def describe(self) -> str:
        b, c, h, w = self.latent_shape
        made = "inverted" if self.cfg is None else f"generated at cfg {self.cfg:g}"
        return (f"memory bank ({made}): {len(self.layers)} layers x {len(self.steps)} steps, latent {c}x{h}x{w}, "
                f"{str(self.dtype).removeprefix('torch.')}, {self.nbytes() / 2**20:.2f} MiB "
                f"on {next(iter(self.hidden.values())).device}")


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def hidden_nbytes(layers: tuple[BankLayer, ...], steps: int, batch: int, height: int, width: int,
                  itemsize: int) -> int:
    """Bytes of the recorded hidden states, from the layer map alone (the bank's byte formula)."""
    return steps * batch * itemsize * sum(layer.tokens(height, width) * layer.channels for layer in layers)


def check_same_source(a: MemoryBank, b: MemoryBank, what: str = "reference bank") -> None:
    """Two-image edits need banks from the same model, latent size and schedule."""
    if a.fingerprint != b.fingerprint:
        raise BankError(f"{what}: was made by another model ({b.fingerprint} vs {a.fingerprint}); "
                        "invert both images with the same MODEL")
    if a.latent_shape[1:] != b.latent_shape[1:]:
        raise BankError(f"{what}: has latent size {b.latent_shape[1:]}, the base bank {a.latent_shape[1:]}; "
                        "resize both images to the same size before VAEEncode")
    if a.schedule != b.schedule:
        raise BankError(f"{what}: used {b.schedule.steps} inversion steps, the base bank "
                        f"{a.schedule.steps}; use the same steps for both")


def check_matches(bank: MemoryBank, fingerprint: str | None = None, latent_shape: tuple | None = None,
                  what: str = "bank") -> None:
    """Refuse a bank made by another model, or for another latent size."""
    if fingerprint is not None and bank.fingerprint != fingerprint:
        raise BankError(f"{what}: was made by another model (fingerprint {bank.fingerprint}, this MODEL is "
                        f"{fingerprint}); re-run DDIMInvertToMemoryBank with this MODEL")
    if latent_shape is not None and tuple(bank.latent_shape[1:]) != tuple(latent_shape[1:]):
        raise BankError(f"{what}: was made for latent {tuple(bank.latent_shape[1:])} but this latent is "
                        f"{tuple(latent_shape[1:])}; invert the image at the size you edit")


def save(bank: MemoryBank, path: str) -> None:
    """Write ``bank`` as safetensors with a JSON header and its digest. Atomic: the file appears complete or not."""
    tensors = {"latents": bank.latents.contiguous().cpu()}
    tensors.update({f"hidden/{k}": v.contiguous().cpu() for k, v in bank.hidden.items()})
    header = bank.header()
    header["digest"] = bank_checks.digest(header, tensors)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bank-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        safetensors.torch.save_file(tensors, tmp, metadata={"dragon": json.dumps(header)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str, device: str | torch.device = "cpu") -> MemoryBank:
    """Read a bank written by ``save``; refuse a corrupt, edited or foreign file with a message that says why.
    Messages name the file by its base name only (no server path)."""
    name = os.path.basename(path)
    try:
        with safetensors.safe_open(path, framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if "dragon" not in meta:
                raise BankError(f"{name} is a safetensors file but not a Dragon memory bank (no 'dragon' header)")
            head = json.loads(meta["dragon"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except BankError:
        raise
    except (OSError, json.JSONDecodeError, RecursionError, safetensors.SafetensorError, RuntimeError,
            ValueError) as e:
        raise BankError(f"{name} is truncated or corrupt and cannot be read as a memory bank "
                        f"({type(e).__name__})") from e
    try:
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise BankError(f"unsupported bank format {head.get('format') if isinstance(head, dict) else head!r}, "
                            f"this pack reads {FORMAT}")
        if head.get("version") != VERSION:
            raise BankError(f"was saved as bank format v{head.get('version')}, this pack reads v{VERSION}; "
                            "re-run DDIMInvertToMemoryBank on the image and save the bank again")
        if head.get("digest") != bank_checks.digest(head, {k: v for k, v in tensors.items()}):
            raise BankError("does not match the digest it was saved with: it was edited or damaged after saving; "
                            "re-run DDIMInvertToMemoryBank and save it again")
        bank_checks.check_header(head)
        dtype = {str(t).removeprefix("torch."): t for t in DTYPES.values()}.get(head["dtype"])
        if dtype is None:
            raise BankError(f"its header names the hidden-state dtype {head['dtype']!r}, not one this pack writes")
        hidden = {k.removeprefix("hidden/"): v for k, v in tensors.items() if k.startswith("hidden/")}
        bank_checks.check_tensors(head, tensors.get("latents"), hidden, dtype)
    except BankError as e:
        raise BankError(f"{name}: {e}") from e
    sched = head["schedule"]
    schedule = DdimSchedule(tuple(sched["timesteps"]), tuple(float(s) for s in sched["sigmas"]),
                            float(sched["sigma_final"]))
    layers = tuple(BankLayer(**layer) for layer in head["layers"])
    return MemoryBank(schedule, tensors["latents"], hidden, tuple(head["steps"]), layers, str(head["fingerprint"]),
                      head.get("cfg"))
