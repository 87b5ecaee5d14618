"""UNet work in single-image passes: what a guided run counts as it goes, and what its schedule predicts.

One type and one set of keys for the sampler, the node's report, the benchmarks and the tests. The sampler puts
its ``Passes`` tally into each UNet call's ``transformer_options`` (as it puts the bank state), the APPLY_MODEL
wrapper ``count_forwards`` adds the call's batch to it, and the sampler returns the tally.
"""
from __future__ import annotations

import dataclasses

from .features import TAP_KEY
from .presets import StepPlan

PASSES_KEY = "dragon_passes"


@dataclasses.dataclass
class Passes:
    """A tally of single-image UNet passes."""

    full_forwards: int = 0  # through ComfyUI's CFG, plus time travel's cond-only re-noise forwards
    guidance_forwards: int = 0  # truncated cond-only forwards of the feature estimator (current and reference)
    backwards: int = 0  # backward passes through the truncated forward

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


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
    idx = range(steps.start, steps.steps)
    guided = [i for i in idx if steps.guided(i)]
    return Passes(
        full_forwards=sum(steps.repeats(i) * cfg_batch + steps.repeats(i) - 1 for i in idx),
        guidance_forwards=sum(steps.repeats(i) for i in guided) + banks * len(guided),
        backwards=backwards_per_guidance * sum(steps.repeats(i) for i in guided),
    )
