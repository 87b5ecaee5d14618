"""The pack side of the conformance harness: the same weights and inputs through the pack, compared stage by stage
with what ``official_side.py`` wrote. Runs in the pack's venv (.dev/venv), against real ComfyUI.

    python bench/conformance/pack_side.py OFFICIAL_OUT [--out bench/results/conformance.md] [case names...]

The pack is driven as its nodes drive it: weights mapped with ComfyUI's own key map into ComfyUI's SD1.5 UNet,
the inversion of ``dragon_ops.inversion``, the terms built by the energy nodes' ``execute``, the run built by
``nodes.sampler.guided_run`` and sampled by ``nodes.sampler.sample_run`` on ``patched_clone`` through ComfyUI's
CFGGuider. Teacher forcing: each compared step starts from the official latent z_i (a one-step ladder), with the
official inversion latents in the bank (its hidden states stay the pack's own, compared in stage 1) and the
official regional SDE noise (``noise_at``); the sampler's ``trace`` gives each step's and repeat's values.
Nothing of the pack is replaced or wrapped.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location("_dragon_bootstrap", os.path.join(ROOT, "bench", "bootstrap.py"))
bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bootstrap)
bootstrap.setup_comfy()
bootstrap.load_pack()

import cases as C  # noqa: E402
import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.utils  # noqa: E402
import report  # noqa: E402
import terms  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from dragon_drag_edit.bench import sd_random  # noqa: E402
from dragon_drag_edit.dragon_ops import inversion, schedule, unet_map  # noqa: E402
from dragon_drag_edit.nodes.common import patch_summary  # noqa: E402
from dragon_drag_edit.nodes.grad_model import patched_clone  # noqa: E402
from dragon_drag_edit.nodes.sampler import guided_run, sample_run  # noqa: E402

SCALE = C.SCALE
PRESET = {"D": "DragonDiffusion", "D+": "DiffEditor"}
CHANNELS = {"tiny": 32, "full": 320}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| in float64."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@dataclasses.dataclass
class Model:
    patcher: object
    schedule: schedule.DdimSchedule
    ldm: dict
    fingerprint: str


def load_model(width: str, official_out: str) -> Model:
    """ComfyUI's SD1.5 UNet at the width, with the official run's diffusers weights mapped by ComfyUI's key map."""
    sd = load_file(os.path.join(official_out, f"unet_{width}.safetensors"))
    base = sd_random.base_model(torch.device("cpu"), torch.float32, channels=CHANNELS[width])
    keymap = comfy.utils.unet_to_diffusers(base.model_config.unet_config)  # diffusers key -> ldm key
    missing = sorted(set(sd) - set(keymap))
    if missing:
        raise RuntimeError(f"ComfyUI's key map has no entry for {len(missing)} diffusers keys, e.g. {missing[:3]}")
    ldm = {keymap[k]: v for k, v in sd.items()}
    base.diffusion_model.load_state_dict(ldm, strict=True)
    base.diffusion_model.requires_grad_(False)
    mp = comfy.model_patcher.ModelPatcher(base, load_device=mm.get_torch_device(),
                                          offload_device=mm.unet_offload_device())
    fp = unet_map.fingerprint(base.diffusion_model, patch_summary(mp))
    return Model(mp, schedule.ddim_schedule(base.model_sampling, C.STEPS), ldm, fp)


def invert(model: Model, z0: torch.Tensor, cond: torch.Tensor):
    """The pack's inversion of the official clean latent z0, given as the VAE would give it (z0 / 0.18215)."""
    return inversion.invert_to_bank(model.patcher, z0 / SCALE, [[cond, {}]], model.schedule, torch.float32,
                                    torch.device("cpu"), fingerprint=model.fingerprint)[1]


def vp(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Sigma-space x (ComfyUI's scaled latent) -> the official VP latent z."""
    return x.double() / (1.0 + float(sigma) ** 2) ** 0.5


def stage_inversion(model: Model, banks: list, d: dict, meta: dict) -> dict[str, float]:
    """Stage 1: all 51 inversion latents, and the bank's K and V at every kept step and layer."""
    sig = model.schedule.inversion_sigmas().double()
    scale = (1 + sig[:, None, None, None, None] ** 2).sqrt()
    inv = max(rel(b.latents.double() * SCALE / scale, d["inversion"][:, j:j + 1]) for j, b in enumerate(banks))
    worst = 0.0
    for name in {k.split("/")[1] for k in d if k.startswith("bank/")}:
        kb, jb = int(name.split(".")[1]), int(name.split(".")[3])
        block = 3 * kb + jb
        w = {p: model.ldm[f"output_blocks.{block}.1.transformer_blocks.0.attn1.to_{p}.weight"] for p in "kv"}
        for n, step in enumerate(meta["bank_steps"]):
            for j, b in enumerate(banks):
                h = b.hidden_at(step, f"output.{block}.0")
                for p in "kv":
                    worst = max(worst, rel(F.linear(h, w[p]), d[C.key("bank", name, p)][n, j:j + 1]))
    return {"inversion": inv, "bank": worst}


def teacher_bank(bank, official: torch.Tensor, model: Model):
    """The bank with the official inversion latents (converted to the pack's storage: x_k / 0.18215)."""
    sig = model.schedule.inversion_sigmas().double()
    lat = official.double() * (1 + sig[:, None, None, None, None] ** 2).sqrt() / SCALE
    return dataclasses.replace(bank, latents=lat.float())


def official_eps(d: dict, i: int, r: int, cfg: float) -> torch.Tensor:
    u, c = d[C.key("eps_u", i, r)], d[C.key("eps_c", i, r)]
    return u + cfg * (c - u)  # the official CFG, in eps space


SDE_STEPS = range(11, 20)  # where the official D+ draws its regional SDE noise (10 < i < 20)


def noise(d: dict, i: int) -> torch.Tensor:
    """The official draw of step i; zeros where it drew none (that step's ``sde`` then fails)."""
    return d.get(C.key("noise", i), torch.zeros_like(d[C.key("noise", SDE_STEPS[0])]))


def official_next(d: dict, i: int, r: int) -> torch.Tensor | None:
    """The official latent after step i's repeat r: the re-noise input, the next step's input, or the result."""
    for k in (C.key("renoise_in", i, r), C.key("z_in", i + 1, 0)):
        if k in d:
            return d[k]
    return d.get("final") if i == C.STEPS - 1 else None


def landmark_direction(d: dict, i: int, eps: torch.Tensor) -> torch.Tensor:
    """Deviation "landmark D direction": what the official alg-D landmark step adds at steps 11-19 beyond a plain
    DDIM step, (sqrt(1 - a_prev - s^2) - sqrt(1 - a_prev)) eps with s = 0.2 x the DDPM posterior std."""
    ac, t = d["alphas_cumprod"].double(), int(d[C.key("t", i)])
    a_t = ac[t]
    a_prev = ac[t - 1000 // C.STEPS] if t - 1000 // C.STEPS >= 0 else ac[0]
    var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    s2 = (C.MODE_ARGS["landmark"]["sde"] ** 2) * var
    return ((1 - a_prev - s2).sqrt() - (1 - a_prev).sqrt()) * eps.double()


def step_rows(case: C.Case, model: Model, run_for, d: dict, cfg: float) -> list[dict]:
    """Stage 3: each compared step teacher-forced from the official z_i; one dict per step and repeat."""
    rows = []
    ac = d["alphas_cumprod"]
    for i in case.steps:
        run = run_for(i)
        sigmas = model.schedule.sampling_sigmas(i)[:2]
        sigma, sigma_next = float(sigmas[0]), float(sigmas[1])
        init = d[C.key("z_in", i, 0)].double() * (1 + sigma ** 2) ** 0.5 / SCALE
        trace: list = []
        sample_run(patched_clone(model.patcher, True), [[d["cond"], {}]], [[d["uncond"], {}]], cfg, run,
                   init=init.float(), sigmas=sigmas, trace=trace, noise_at=lambda k: noise(d, k))
        official_repeats = sum(C.key("z_in", i, r) in d for r in range(len(trace) + 1))
        rows.append({"i": i, "r": -1, "repeats": 0.0 if official_repeats == len(trace) else float("inf")})
        for rec in trace:
            r = rec["r"]
            eps_o = official_eps(d, i, r, cfg)
            g_o = d.get(C.key("g", i, r))
            a_t = ac[int(d[C.key("t", i)])]
            z_o = d[C.key("z_in", i, r)]
            x0_o = (z_o - (1 - a_t) ** 0.5 * (eps_o + (0 if g_o is None else g_o))) / a_t ** 0.5
            row = {"i": i, "r": r, "x0": rel(rec["x0"], x0_o), "eps": rel(rec["eps"], eps_o)}
            nxt = official_next(d, i, r)
            if nxt is not None and "landmark D direction" in case.deviations and 10 < i < 20:
                row["z_next (unconverted)"] = rel(vp(rec["x_next"], sigma_next), nxt)
                nxt = nxt.double() - landmark_direction(d, i, eps_o)
            row["z_next"] = rel(vp(rec["x_next"], sigma_next), nxt) if nxt is not None else float("inf")
            if "noise" in rec:  # the SDE steps' z_next; noise on a step where the official code adds none fails
                row["sde"] = row["z_next"] if C.key("noise", i) in d and i in SDE_STEPS else float("inf")
            if "renoise_eps" in rec:
                row["renoise"] = rel(rec["renoise_eps"], d[C.key("renoise_eps", i, r)])
            if g_o is not None and "energies" in rec:
                row["g"] = rel(rec["g"], g_o)
                row.update(terms.energy_errors(case, rec, d[C.key("E", i, r)], run.plan))
            elif g_o is not None or "energies" in rec:  # guided on one side only
                row["g"] = float("inf")
            rows.append(row)
    return rows


def run_case(case: C.Case, model: Model, official_out: str) -> dict:
    slug = case.name.replace(" ", "_")
    d = load_file(os.path.join(official_out, f"{slug}.safetensors"))
    with open(os.path.join(official_out, f"{slug}.json")) as f:
        meta = json.load(f)
    t0 = time.time()
    banks = [invert(model, d["x0"], d["cond"])]
    if case.two_images:
        banks.append(invert(model, d["x0_ref"], d["cond_ref"]))
    result = stage_inversion(model, banks, d, meta)
    cfg = C.MODE_ARGS[case.mode]["cfg"]
    edit, _ = terms.build(case, banks, d)
    result["masks"] = terms.mask_differences(case, edit, d)
    run0, _ = guided_run(model.patcher, banks[0], edit, seed=42, cfg=cfg, energy_scale=1.0, preset=PRESET[case.alg],
                         start_step=0, guidance_until=30, bank_start_step=5, guidance_cap=0.0)
    s0 = model.schedule.sigmas[0]
    start = run0.plan.initial_latent(banks[0].latent_at(0), 0, run0.seed)
    result["start"] = rel(vp(start * SCALE, s0), d["start"])
    official_inv = d["inversion"]
    if "drag reference" in case.deviations:  # the official x_T after its in-place patch copy
        official_inv = official_inv.clone()
        official_inv[-1] = d["start"]

    def runs_on(inv: torch.Tensor):
        """Step i -> the guided run starting at i, on banks holding the inversion latents ``inv``."""
        tf = [teacher_bank(b, inv[:, j:j + 1], model) for j, b in enumerate(banks)]
        edit_tf = terms.build(case, tf, d)[1]
        return lambda i: guided_run(model.patcher, tf[0], edit_tf, seed=42, cfg=cfg, energy_scale=1.0,
                                    preset=PRESET[case.alg], start_step=i, guidance_until=30, bank_start_step=5,
                                    guidance_cap=0.0)[0]

    runs = runs_on(official_inv)
    result["steps"] = step_rows(case, model, runs, d, cfg)
    result["unconverted"] = {}
    if "drag reference" in case.deviations:
        plain = dataclasses.replace(case, steps=(0,))
        rows = step_rows(plain, model, runs_on(d["inversion"]), d, cfg)
        result["unconverted"]["g"] = max(r["g"] for r in rows if "g" in r)
    shrink = [r["z_next (unconverted)"] for r in result["steps"] if "z_next (unconverted)" in r]
    if shrink:
        result["unconverted"]["z_next"] = max(shrink)
    if "final" in d:  # stage 4: the whole edit, free-running from the official start latent (reported only)
        init = d["start"].double() * (1 + s0 ** 2) ** 0.5 / SCALE
        out, _ = sample_run(patched_clone(model.patcher, True), [[d["cond"], {}]], [[d["uncond"], {}]], cfg,
                            runs(0), init=init.float(), noise_at=lambda k: noise(d, k))
        result["free_run"] = rel(out * SCALE, d["final"])
    result.update(case=case.name, width=case.width, deviations=case.deviations, seconds=time.time() - t0, official=meta)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("official_out")
    ap.add_argument("names", nargs="*")
    ap.add_argument("--out", default=None, help="write the markdown table here")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("CONFORMANCE_THREADS", "2")))
    todo = [C.by_name(n) for n in a.names] if a.names else C.CASES + C.FULL
    results, models = [], {}
    for case in todo:
        if case.width not in models:
            models.clear()
            models[case.width] = load_model(case.width, a.official_out)
        res = run_case(case, models[case.width], a.official_out)
        print(report.line(res), flush=True)
        results.append(res)
    text, failed = report.table(results)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report.document(text, results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
