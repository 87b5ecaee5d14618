"""UNet work in single-image passes: what a guided run counts as it goes, and what its schedule predicts.

One type and one set of keys for the sampler, the node's report, the benchmarks and the tests. The sampler puts
its ``Passes`` tally into each UNet call's ``transformer_options`` (as it puts the bank state), the APPLY_MODEL
wrapper ``count_forwards`` adds the call's batch to it, and the sampler returns the tally.
"""
from __future__ import annotations

import dataclasses

from .features import TAP_KEY
from .presets import PRESETS, StepPlan

PASSES_KEY = "dragon_passes"


@dataclasses.dataclass(frozen=True)
class Costs:
    """What a truncated forward and a backward pass cost, in full batch-1 UNet forwards."""

    truncated: float
    backward: float


# Spec section 7 (SD1.5 at 512x512): the estimator truncated after output_blocks[8] is about 0.75 of a forward; a
# backward w.r.t. the input costs "roughly 1-2x its forward", taken here at the upper end (2x the truncated
# forward). ``bench/flops.py`` counts both on the real architecture instead (FLOPs), which tests/test_perf.py checks.
SPEC_COSTS = Costs(truncated=0.75, backward=1.5)


@dataclasses.dataclass
class Passes:
    """A tally of single-image UNet passes."""

    full_forwards: int = 0  # through ComfyUI's CFG, plus time travel's cond-only re-noise forwards
    guidance_forwards: int = 0  # truncated cond-only forwards of the feature estimator (current and reference)
    backwards: int = 0  # backward passes through the truncated forward

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def __add__(self, other: Passes) -> Passes:
        return Passes(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def units(p: Passes, costs: Costs = SPEC_COSTS) -> float:
    """UNet work in full batch-1 forwards, each pass weighted by ``costs``."""
    return p.full_forwards + costs.truncated * p.guidance_forwards + costs.backward * p.backwards


def forward_kind(transformer_options: dict) -> str:
    """The ``Passes`` field a UNet call adds to: "guidance_forwards" when it is a truncated feature-tap forward."""
    return "guidance_forwards" if transformer_options.get(TAP_KEY) is not None else "full_forwards"


def count_forwards(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kw):
    """APPLY_MODEL wrapper: adds the call's batch to the ``Passes`` in its transformer_options, if any."""
    transformer_options = transformer_options if transformer_options is not None else {}
    tally = transformer_options.get(PASSES_KEY)
    if tally is not None:
        kind = forward_kind(transformer_options)
        setattr(tally, kind, getattr(tally, kind) + int(x.shape[0]))
    return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kw)


def expected(steps: StepPlan, *, cfg_batch: int, banks: int, backwards_per_guidance: int) -> Passes:
    """What the guided sampler counts for a run of ``steps``: at each step, ``repeats`` CFG calls of ``cfg_batch``
    images and ``repeats - 1`` re-noise forwards; at each guided step, one truncated forward per repeat and one per
    reference bank (``banks``; cached across repeats), and ``backwards_per_guidance`` backward passes per repeat
    (``edit.Plan.backwards_per_guidance``: 2, or 1 when no term has an E_content)."""
    idx = steps.indices
    guided = [i for i in idx if steps.guided(i)]
    return Passes(
        full_forwards=sum(steps.repeats(i) * cfg_batch + steps.repeats(i) - 1 for i in idx),
        guidance_forwards=sum(steps.repeats(i) for i in guided) + banks * len(guided),
        backwards=backwards_per_guidance * sum(steps.repeats(i) for i in guided),
    )


def plain(steps: int = 50, cfg_batch: int = 2) -> Passes:
    """A plain KSampler run: one CFG call per step."""
    return Passes(full_forwards=steps * cfg_batch)


def counted_edits(steps: int = 50, guide_until: int = 30, bank_from: int = 5) -> dict[str, Passes]:
    """The edits a user runs, counted for a move at CFG (batch 2) with the paper's settings: a real image's edit
    per preset with its inversion (one pass per step, ``refine`` 0), a generated image's (no inversion: its
    generation is the pass the user makes anyway), a preview from the same bank, a re-edit with the bank cached."""
    def edit(preset: str) -> Passes:
        plan = StepPlan(PRESETS[preset], steps, 0, guide_until, bank_from, True)
        return expected(plan, cfg_batch=2, banks=1, backwards_per_guidance=2)

    rows = {f"real-image edit, {p} (inversion included)": Passes(full_forwards=steps) + edit(p) for p in PRESETS}
    rows["generated-image edit, DragonDiffusion (no inversion)"] = edit("DragonDiffusion")
    rows["preview (bank reused)"] = edit("Preview")
    rows["re-edit, bank cached, DragonDiffusion"] = edit("DragonDiffusion")
    return rows
