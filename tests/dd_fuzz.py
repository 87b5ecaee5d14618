"""Seeded random fuzzing of every node of the pack through a real ComfyUI server (issue #9).

A case is one prompt: a random pipeline (picture or .latent file -> inversion or bank file -> up to three energy
terms, some fed by the points editor -> guided sampler -> SaveLatent), each input drawn valid or broken. A case
passes when it succeeds with finite outputs, or fails (at validation or while running) with a message that names
an input of the failing node. After every case the server must still answer, and no case may run longer than
``CASE_TIMEOUT`` seconds. ``fixtures`` writes the pictures, masks, latents and bank files the cases use.
"""
from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
from collections import Counter
from dataclasses import dataclass

import numpy as np
import safetensors.torch
import torch
from dd_tamper import CASES as TAMPERINGS
from dd_tamper import tamper
from PIL import Image

from dd_server import CKPT, error_message

CASE_TIMEOUT = 120.0
NAN = float("nan")
IMAGES = {"fz_64x64.png": (64, 64), "fz_96x64.png": (96, 64), "fz_64x96.png": (64, 96), "fz_67x45.png": (67, 45),
          "fz_8x8.png": (8, 8), "fz_128x128.png": (128, 128)}
MASK_SIZES = ((64, 64), (96, 64), (32, 32), (17, 13), (128, 128), (192, 128))
BAD_LATENTS = ("fz_nan.latent", "fz_inf.latent", "fz_batch2.latent", "fz_odd.latent", "fz_3ch.latent",
               "fz_huge.latent", "fz_good.latent")
BANKS = ("fz_good.safetensors", "fz_wide.safetensors", "fz_steps6.safetensors", "fz_toy.safetensors",
         "fz_trunc.safetensors", "fz_header.safetensors", "fz_garbage.safetensors", "fz_empty.safetensors",
         "fz_foreign.safetensors", "fz_nan.safetensors",
         *(f"fz_t{k}.safetensors" for k in range(len(TAMPERINGS))),  # edited after saving, stale digest
         *(f"fz_f{k}.safetensors" for k in range(len(TAMPERINGS))))  # edited with a fresh digest
DEEP = "[" * 100_000 + "]" * 100_000
STRINGS_BAD = ("[[1, 2", "[]", "[[1, 2, 3]]", '{"a": 1}', "nan", "[[NaN, 1, 2, 3]]", "[[1e400, 0, 1, 1]]",
               "[[1000, 1000, 5, 5]]", "[[-3, 4, 5, 6]]", "null", "[[1, 2, 3, 4], [5]]", "\u00e9\u00e8", "x" * 300,
               DEEP, "[" + "[1, 1, 2, 2]," * 300_000 + "[1, 1, 2, 2]]", json.dumps([[1, 1, 2, 2]] * 10_000))
BAD_STATES = ('{"width": 0, "height": 5}', '{"strokes": [{"r": -1, "pts": [[1, 1]]}]}', '{"arrows": [], "colour": 1}',
              '{"strokes": [{"r": 3, "pts": []}]}', '{"strokes": [{"r": 1e9, "pts": [[1, 1]]}]}',
              '{"width": 100000, "height": 100000}', '{"width": 1e308, "height": 64}', '{"arrows": ' + DEEP + '}',
              json.dumps({"width": 64, "height": 64, "strokes": [{"r": 2, "pts": [[1, 1]] * 30_000}]}))


def _png(path: str, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def fixtures(server) -> None:
    """Pictures, masks and .latent files in input/, and good and damaged bank files in output/dragon_banks/."""
    inp, rng = server.base / "input", np.random.default_rng(0)
    for name, (w, h) in IMAGES.items():
        _png(str(inp / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    for w, h in MASK_SIZES:
        rect = np.zeros((h, w), np.uint8)
        rect[h // 4:h // 2 + 1, w // 4:w // 2 + 1] = 255
        _png(str(inp / f"fz_mask_{w}x{h}_rect.png"), rect)
        _png(str(inp / f"fz_mask_{w}x{h}_empty.png"), np.zeros((h, w), np.uint8))
        _png(str(inp / f"fz_mask_{w}x{h}_full.png"), np.full((h, w), 255, np.uint8))
    good = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    latents = {"fz_nan": good.clone().index_fill_(2, torch.tensor([3]), float("nan")),
               "fz_inf": good.clone().index_fill_(3, torch.tensor([1]), float("inf")),
               "fz_batch2": torch.cat([good, good]), "fz_odd": torch.randn(1, 4, 7, 9), "fz_3ch": good[:, :3],
               "fz_huge": good * 1e30, "fz_good": good}
    for name, t in latents.items():
        safetensors.torch.save_file({"latent_tensor": t.contiguous(), "latent_format_version_0": torch.tensor([])},
                                    str(inp / f"{name}.latent"))
    for name, graph in _bank_graphs().items():
        entry = server.run(graph)
        assert entry["status"]["status_str"] == "success", f"{name}: {error_message(entry)}"
    banks = server.base / "output" / "dragon_banks"
    raw = (banks / "fz_good.safetensors").read_bytes()
    (banks / "fz_trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    (banks / "fz_empty.safetensors").write_bytes(b"")
    (banks / "fz_garbage.safetensors").write_bytes(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
    (banks / "fz_header.safetensors").write_bytes(raw.replace(b'"latent_shape\\": [1, 4, 8, 8]',
                                                              b'"latent_shape\\": [1, 4, 8, 9]', 1))
    assert (banks / "fz_header.safetensors").read_bytes() != raw
    safetensors.torch.save_file({"x": torch.zeros(3)}, str(banks / "fz_foreign.safetensors"))
    tensors = safetensors.torch.load_file(str(banks / "fz_good.safetensors"))
    meta = safetensors.safe_open(str(banks / "fz_good.safetensors"), "pt").metadata()
    key = next(k for k in tensors if k.startswith("hidden/"))
    tensors[key] = tensors[key].clone().fill_(float("nan"))
    safetensors.torch.save_file(tensors, str(banks / "fz_nan.safetensors"), metadata=meta)
    for k, (change, _) in enumerate(TAMPERINGS.values()):
        for prefix, fresh in (("fz_t", False), ("fz_f", True)):
            tamper(str(banks / "fz_good.safetensors"), change, fresh, out=str(banks / f"{prefix}{k}.safetensors"))


def _bank_graphs() -> dict[str, dict]:
    out = {}
    for name, image, steps in (("fz_good", "fz_64x64.png", 4), ("fz_wide", "fz_96x64.png", 4),
                               ("fz_steps6", "fz_64x64.png", 6)):
        g = Graph()
        ck, pos, _ = g.checkpoint()
        lat = g.add("VAEEncode", pixels=[g.add("LoadImage", image=image), 0], vae=[ck, 2])
        inv = g.add("DDIMInvertToMemoryBank", model=[ck, 0], latent=[lat, 0], conditioning=[pos, 0], steps=steps,
                    bank_precision="fp16", bank_device="cpu", refine=1)
        g.add("DragonMemoryBankSave", bank=[inv, 1], name=name)
        out[name] = g.nodes
    g = Graph()
    toy = g.add("DragonToyModelLoader", load=True)
    px = g.add("VAEEncode", pixels=[g.add("EmptyImage", width=32, height=32, batch_size=1, color=0x405060), 0],
               vae=[g.add("VAELoader", vae_name="pixel_space"), 0])
    inv = g.add("DDIMInvertToMemoryBank", model=[toy, 0], latent=[px, 0], conditioning=[toy, 1], steps=4,
                bank_precision="fp16", bank_device="cpu", refine=0)
    g.add("DragonMemoryBankSave", bank=[inv, 1], name="fz_toy")
    out["fz_toy"] = g.nodes
    return out


class Graph:
    """An API-format prompt under construction."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}

    def add(self, class_type: str, **inputs) -> str:
        nid = str(len(self.nodes) + 1)
        self.nodes[nid] = {"class_type": class_type, "inputs": inputs}
        return nid

    def checkpoint(self) -> tuple[str, str, str]:
        ck = self.add("CheckpointLoaderSimple", ckpt_name=CKPT)
        pos = self.add("CLIPTextEncode", text="a photo", clip=[ck, 1])
        neg = self.add("CLIPTextEncode", text="", clip=[ck, 1])
        return ck, pos, neg


class CaseBuilder:
    """Draws one random pipeline; ``bad`` is the chance that any one input is drawn from its broken values."""

    def __init__(self, seed: int, bad: float = 0.035) -> None:
        self.r, self.bad, self.g = random.Random(seed), bad, Graph()
        self.seed = seed

    def pick(self, good, broken):
        return self.r.choice(broken if broken and self.r.random() < self.bad else good)

    def build(self) -> dict:
        r, g = self.r, self.g
        ck, pos, neg = g.checkpoint()
        self.ck, self.pos = ck, pos
        latent, self.size = self.source()
        bank = self.bank(latent)
        energy = None
        for _ in range(r.choice((0, 1, 1, 1, 2, 2, 3))):
            energy = self.energy(bank, energy)
        model = [ck, 0] if r.random() > self.bad else [g.add("DragonToyModelLoader", load=True), 0]
        inputs = {"model": model, "positive": [pos, 0], "negative": [neg, 0], "bank": bank,
                  "seed": r.choice((0, 42, 2**64 - 1)), "cfg": self.pick((0.0, 1.0, 4.0, 30.0), (-1.0, 31.0, NAN)),
                  "energy_scale": self.pick((0.0, 1.0, 5.0, 100.0), (-1.0, 101.0, NAN)),
                  "preset": self.pick(("DragonDiffusion", "DragonDiffusion", "DiffEditor"), ("Dragon", "")),
                  "start_step": self.pick((0, 0, 1, 2, 3, 5), (-1, 1000)),
                  "guidance_until": self.pick((0, 2, 30, 1000), (-5, 1001)),
                  "bank_start_step": self.pick((0, 1, 5, 1000), (-1, 1001)),
                  "guidance_cap": self.pick((0.0, 0.05, 10.0), (-0.1, 11.0))}
        if energy is not None:
            inputs["energy"] = energy
        if r.random() < 0.5:
            inputs["mask_grid"] = self.pick(("nearest", "dilated"), ("max", ""))
        out = g.add("DragonGuidedSampler", **inputs)
        g.add("SaveLatent", samples=[out, 0], filename_prefix=f"fuzz/c{self.seed}")
        if r.random() < 0.15:
            g.add("DragonMemoryBankSave", bank=bank, name=self.pick(("fz_saved", "fz_saved-2"), (
                "", "../x", ".h", "fz saved", "a\x00b", "a" * 300, "\u202egnp.evil", "%2e%2e%2fx")))
        return g.nodes

    def source(self) -> tuple[list, tuple[int, int] | None]:
        if self.r.random() < self.bad * 2:
            name = self.r.choice(BAD_LATENTS)
            return [self.g.add("LoadLatent", latent=name), 0], (64, 64) if name == "fz_good.latent" else None
        name = self.pick(("fz_64x64.png", "fz_64x64.png", "fz_96x64.png", "fz_64x96.png"),
                         ("fz_67x45.png", "fz_8x8.png", "fz_128x128.png"))
        self.image = [self.g.add("LoadImage", image=name), 0]
        return [self.g.add("VAEEncode", pixels=self.image, vae=[self.ck, 2]), 0], IMAGES[name]

    def bank(self, latent: list, image_size=None) -> list:
        r, g = self.r, self.g
        if r.random() < 0.2:
            extra = {}
            if r.random() < 0.5:
                extra["model"] = [self.ck, 0]
            if r.random() < 0.5:
                extra["latent"] = latent
            name = self.pick(("fz_good.safetensors",), BANKS[1:] + ("missing.safetensors",))
            return [g.add("DragonMemoryBankLoad", file=name, **extra), 0]
        inputs = {"model": [self.ck, 0], "latent": latent, "conditioning": [self.pos, 0],
                  "steps": self.pick((2, 3, 4, 4), (0, 1, 1001, 60)),
                  "bank_precision": self.pick(("fp16", "fp32", "bf16", "fp8"), ("fp64",)),
                  "bank_device": self.pick(("cpu", "model device"), ("cuda:7",)),
                  "refine": self.pick((0, 1, 2), (-1, 6))}
        if r.random() < 0.1:
            inputs["isolate_mask"] = self.mask(image_size or self.size)
        return [g.add("DDIMInvertToMemoryBank", **inputs), 1]

    def mask(self, size) -> list:
        r, g = self.r, self.g
        w, h = size or (64, 64)
        kind = self.pick(("rect", "rect", "rect", "full"), ("empty",))
        if r.random() < self.bad or (w, h) not in MASK_SIZES:
            w, h = r.choice(MASK_SIZES)
        roll = r.random()
        if roll < 0.15:
            return [g.add("SolidMask", value=self.pick((1.0, 0.6), (0.0,)), width=w, height=h), 0]
        if roll < 0.15 + self.bad:
            img = g.add("LoadImage", image=f"fz_mask_{w}x{h}_rect.png")
            batch = g.add("RepeatImageBatch", image=[img, 0], amount=2)
            return [g.add("ImageToMask", image=[batch, 0], channel="red"), 0]
        return [g.add("LoadImageMask", image=f"fz_mask_{w}x{h}_{kind}.png", channel="red"), 0]

    def rows(self, size, count: int, width: int = 4) -> list[list[float]]:
        w, h = size or (64, 64)
        return [[round(self.r.uniform(0, w - 1), 1) if k % 2 == 0 else round(self.r.uniform(0, h - 1), 1)
                 for k in range(width)] for _ in range(count)]

    def points(self, size, count: int = 1, width: int = 4) -> str:
        if self.r.random() < self.bad * 2:
            return self.r.choice(STRINGS_BAD)
        return json.dumps(self.rows(size, count, width))

    def energy(self, bank: list, upstream) -> list:
        r, g = self.r, self.g
        kind = r.choice(("Move", "Move", "Drag", "Landmarks", "Appearance", "Paste", "Editor"))
        weights = {k: self.pick((0.0, 1.0, 4.0, 100.0), (-1.0, 101.0, NAN)) for k in ("w_edit", "w_content")}
        offset = {k: self.pick((0, 3, -7, 20, 500, -8192), (9000, -9000)) for k in ("dx", "dy")}
        scale = self.pick((1.0, 0.7, 1.4, 0.1, 4.0), (0.05, 5.0, 0.0, NAN))
        roll = r.random()
        common = {"bank": bank if roll > self.bad else self.other_bank() if roll > self.bad / 3 else "raw value"}
        if upstream is not None:
            common["energy"] = upstream
        if kind == "Move":
            extra = {"reference_mask": self.mask(self.size)} if r.random() < 0.2 else {}
            if r.random() < 0.5:
                extra["vacated_noise"] = self.pick(("fresh", "inverted"), ("none",))
            nid = g.add("DragonEnergyMove", mask=self.mask(self.size), **offset, scale=scale,
                        arrow=self.points(self.size) if r.random() < 0.3 else "", **weights,
                        w_contrast=self.pick((0.0, 0.2), (-1.0,)), w_inpaint=self.pick((0.0, 0.8), (200.0,)),
                        **extra, **common)
        elif kind in ("Drag", "Editor"):
            mask, pts = self.mask(self.size), self.points(self.size, count=r.choice((1, 2, 3)))
            if kind == "Editor":
                ed = g.add("DragonPointsEditor", editor_state=self.editor_state(), **(
                    {"image": self.image} if r.random() < 0.7 and self.size and hasattr(self, "image") else {}))
                mask, pts = [ed, 1], [ed, 0]
            nid = g.add("DragonEnergyDrag", mask=mask, points=pts, **weights, w_inpaint=self.pick((0.2,), (-0.2,)),
                        **common)
        elif kind == "Landmarks":
            n = r.choice((1, 5, 68))
            src = self.points(self.size, n, 2)
            tgt = self.points(self.size, n if r.random() > self.bad else n + 1, 2)
            extra = {"image": self.image} if r.random() < 0.8 and hasattr(self, "image") else {}
            nid = g.add("DragonEnergyLandmarks", source_points=src, target_points=tgt, w_edit=weights["w_edit"],
                        **extra, **common)
        else:
            ref_size = (64, 64) if r.random() > self.bad else (96, 64)
            ref_img = g.add("LoadImage", image=f"fz_{ref_size[0]}x{ref_size[1]}.png")
            ref = self.bank([g.add("VAEEncode", pixels=[ref_img, 0], vae=[self.ck, 2]), 0], ref_size)
            two = {"reference_bank": ref, "reference_mask": self.mask(ref_size), **weights, **common}
            if kind == "Appearance":
                style = {"match": r.choice(["stretched", "mean", "nope"] if self.bad > r.random() else
                                           ["stretched", "mean"]), "noise_shift": round(r.uniform(-0.2, 1.2), 2)}
                nid = g.add("DragonEnergyAppearance", mask=self.mask(self.size), **two,
                            **(style if r.random() < 0.7 else {}))
            else:
                start = {"start_noise": r.choice(["reference mean", "reference noise"])} if r.random() < 0.5 else {}
                nid = g.add("DragonEnergyPaste", **offset, scale=scale, **two, **start)
        return [nid, 0]

    def other_bank(self) -> list:
        lat = self.g.add("VAEEncode", pixels=[self.g.add("LoadImage", image="fz_96x64.png"), 0], vae=[self.ck, 2])
        return self.bank([lat, 0], (96, 64))

    def editor_state(self) -> str:
        w, h = self.size or (64, 64)
        if self.r.random() < self.bad * 2:
            return self.r.choice(STRINGS_BAD + BAD_STATES)
        state = {"width": w, "height": h, "arrows": self.rows(self.size, self.r.choice((1, 2))),
                 "strokes": [{"r": self.r.choice((2, 6, 40)), "erase": False,
                              "pts": [[self.r.uniform(0, w), self.r.uniform(0, h)] for _ in range(3)]}]}
        return json.dumps(state)


@dataclass
class Outcome:
    kind: str  # success | refused | failed | unnamed | nonfinite | hang | crash
    message: str = ""
    seconds: float = 0.0


def _named(message: str, inputs: set[str]) -> bool:
    """The message starts with ``name:`` (or ``a/b:``) for inputs of the failing node."""
    m = re.match(r"\s*([A-Za-z_]\w*(?:/[A-Za-z_]\w*)*):", message)
    return bool(m) and all(part in inputs for part in m.group(1).split("/"))


def _validation_named(body: dict, info: dict) -> tuple[bool, str]:
    errors = body.get("node_errors") or {}
    if not errors:
        return False, json.dumps(body.get("error", body))[:300]
    for err in errors.values():
        names = _inputs(info, err.get("class_type", ""))
        for e in err.get("errors", []):
            extra = e.get("extra_info") or {}
            text = f"{e.get('details', '')} {e.get('message', '')}"
            if extra.get("input_name") not in names and not any(re.search(rf"\b{n}\b", text) for n in names):
                return False, f"{err.get('class_type')}: {text[:300]}"
    return True, json.dumps(errors)[:300]


def _inputs(info: dict, class_type: str) -> set[str]:
    spec = info.get(class_type, {}).get("input", {})
    return set(spec.get("required", {})) | set(spec.get("optional", {}))


def run_case(server, graph: dict, info: dict) -> Outcome:
    t0 = time.time()
    try:
        entry = server.run(graph, timeout=CASE_TIMEOUT)
    except TimeoutError as e:
        server.request("POST", "/interrupt", {})
        return Outcome("hang", str(e), time.time() - t0)
    except (urllib.error.URLError, ConnectionError) as e:
        return Outcome("crash", repr(e), time.time() - t0)
    dt = time.time() - t0
    if entry["status"].get("status_str") == "invalid":
        ok, text = _validation_named(entry["validation"], info)
        return Outcome("refused" if ok else "unnamed", text, dt)
    if entry["status"]["status_str"] == "error":
        msg = error_message(entry)
        node_type, _, text = msg.partition(": ")
        return Outcome("failed" if _named(text, _inputs(info, node_type)) else "unnamed", msg[:400], dt)
    for node_out in entry.get("outputs", {}).values():
        for item in node_out.get("latents", []):
            path = server.base / "output" / item["subfolder"] / item["filename"]
            samples = safetensors.torch.load_file(str(path))["latent_tensor"]
            os.remove(path)
            if not torch.isfinite(samples).all():
                return Outcome("nonfinite", item["filename"], dt)
    return Outcome("success", "", dt)


def alive(server) -> bool:
    try:
        return server.proc.poll() is None and isinstance(server.get("/system_stats", timeout=10), dict)
    except OSError:
        return False


def run_fuzz(server, seeds, log=print) -> tuple[Counter, list[tuple[int, Outcome]], float]:
    """Run one case per seed; returns the outcome counts, the cases that broke a rule and the slowest case's s."""
    info = server.get("/object_info")
    counts, bad, slowest = Counter(), [], 0.0
    for seed in seeds:
        out = run_case(server, CaseBuilder(seed).build(), info)
        slowest = max(slowest, out.seconds)
        if not alive(server):
            out = Outcome("crash", out.message, out.seconds)
        counts[out.kind] += 1
        if out.kind in ("unnamed", "nonfinite", "hang", "crash"):
            bad.append((seed, out))
            log(f"case {seed}: {out.kind}: {out.message}")
        if out.kind == "crash":
            break
    return counts, bad, slowest
