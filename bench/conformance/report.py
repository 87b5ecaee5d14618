"""The conformance table: one row per case, the worst relative error of each stage, and the verdict."""
from __future__ import annotations

import math

from cases import DEVIATIONS

TOL = 1e-4  # relative max error, every teacher-forced stage, fp32
# (column, what it is); teacher-forced columns are the worst over the compared steps (and time-travel repeats)
COLUMNS = (
    ("inversion", "the 51 inversion latents"),
    ("bank", "K and V of every bank layer at every kept step"),
    ("masks", "cells where the pack's masks or pairings differ from the official ones"),
    ("start", "the start latent after the mode's own start-noise edits"),
    ("eps", "the CFG eps of each compared step and repeat"),
    ("E_edit", "E_edit (the official value / lambda vs the pack's / its strength)"),
    ("E_content", "E_content, as E_edit"),
    ("g", "the guidance gradient"),
    ("x0", "x0_hat"),
    ("z_next", "the step's output latent (before a time-travel re-noise)"),
    ("sde", "z_next on the regional SDE steps"),
    ("renoise", "time travel's re-noise eps"),
    ("free_run", "the final latent of the whole edit, free-running (reported, not asserted)"),
)
# "repeats" (not a column): 0 when a step ran as many time-travel repeats as the official one, else inf
STEP_KEYS = ("eps", "E_edit", "E_content", "g", "x0", "z_next", "sde", "renoise", "repeats")
ASSERTED = ("inversion", "bank", "start", *STEP_KEYS)


def worst(res: dict) -> dict[str, tuple[float, int | None]]:
    """Stage -> (worst value, step where it occurred)."""
    out = {k: (res[k], None) for k in ("inversion", "bank", "masks", "start", "free_run") if k in res}
    for row in res["steps"]:
        for k in STEP_KEYS:
            if k in row and (k not in out or row[k] > out[k][0]):
                out[k] = (row[k], row["i"])
    return out


def failures(res: dict) -> list[str]:
    """Stages over tolerance (masks: any cell differing), except those a deviation of the case excuses
    (docs/conformance.md); a converted stage is asserted on its converted value."""
    w = worst(res)
    excused = {s for name in res["deviations"] for s in DEVIATIONS[name].excuses}
    bad = [k for k in ASSERTED if k in w and not w[k][0] <= TOL and k not in excused]
    if w["masks"][0] != 0 and "masks" not in excused:
        bad.append("masks")
    return bad


def note(res: dict) -> str:
    """The case's deviations, with the unconverted size of each converted stage."""
    sizes = ", ".join(f"{k} {v:.1e} unconverted" for k, v in res.get("unconverted", {}).items())
    return "; ".join(res["deviations"]) + (f" ({sizes})" if sizes else "")


def _fmt(v: float, masks: bool = False) -> str:
    if masks:
        return str(int(v))
    return "inf" if math.isinf(v) else f"{v:.1e}"


def line(res: dict) -> str:
    bad = failures(res)
    w = worst(res)
    parts = ", ".join(f"{k} {_fmt(v, k == 'masks')}" + (f"@{i}" if i is not None else "") for k, (v, i) in w.items())
    dev = f" [deviations: {note(res)}]" if res["deviations"] else ""
    return f"{res['case']}: {'FAIL ' + ','.join(bad) if bad else 'pass'}{dev} ({res['seconds']:.0f}s; {parts})"


def table(results: list[dict]) -> tuple[str, bool]:
    head = "| case | " + " | ".join(k for k, _ in COLUMNS) + " | steps | verdict |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    failed = False
    for res in results:
        w, bad = worst(res), failures(res)
        failed |= bool(bad)
        cells = [_fmt(w[k][0], k == "masks") if k in w else "-" for k, _ in COLUMNS]
        steps = len({r["i"] for r in res["steps"]})
        verdict = ("FAIL: " + ", ".join(bad)) if bad else "pass"
        verdict += f" (deviations: {note(res)})" if res["deviations"] else ""
        rows.append(f"| {res['case']} | " + " | ".join(cells) + f" | {steps} | {verdict} |")
    return "\n".join(rows), failed


def summary(results: list[dict]) -> str:
    """One row per case: the verdict and the worst asserted teacher-forced error (the README's table)."""
    rows = ["| case | SD1.5 width | teacher-forced steps | worst teacher-forced error | verdict (deviations) |",
            "|---|---|---|---|---|"]
    for res in results:
        w = worst(res)
        k = max((k for k in STEP_KEYS if k in w), key=lambda k: w[k][0])
        steps = len({r["i"] for r in res["steps"]})
        verdict = "FAIL" if failures(res) else "pass"
        dev = f" ({', '.join(res['deviations'])})" if res["deviations"] else ""
        rows.append(f"| {res['case']} | {res['width']} | {steps} | {w[k][0]:.1e} ({k}) | {verdict}{dev} |")
    return "\n".join(rows)


def document(text: str, results: list[dict]) -> str:
    legend = "\n".join(f"- `{k}`: {what}" for k, what in COLUMNS)
    legend += "\n\nDeviations (kept on purpose; a case that meets one may differ in the stages it excuses):\n"
    legend += "\n".join(f"- {name}: {d.what}" + (f" (excuses: {', '.join(d.excuses)})" if d.excuses else "")
                         for name, d in DEVIATIONS.items())
    return (
        "# Conformance: the official DragonDiffusion code and the pack, step by step\n\n"
        "Written by `make conformance` (bench/conformance/). Relative max error max|pack - official| / "
        f"max|official| in float32 on the CPU; tolerance {TOL:.0e} for every asserted stage. "
        "How it is computed and every deliberate deviation: docs/conformance.md.\n\n"
        f"## Summary\n\n{summary(results)}\n\n## Every stage\n\n{text}\n\n{legend}\n")
