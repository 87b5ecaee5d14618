"""Issue 32: the conformance harness's verdicts (bench/conformance/report.py) and the README's table of them.

The harness itself runs as ``make conformance`` (the official code in its own venv); here: a stage over tolerance
fails its case, a deviation excuses only the stages it names, and the README shows the results file's summary."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "conformance"))
import report  # noqa: E402


def result(deviations=(), **worst):
    step = {"i": 7, "eps": 1e-6, "g": 2e-6, "x0": 1e-6, "z_next": 1e-6, "E_edit": 1e-7}
    step.update({k: v for k, v in worst.items() if k in report.STEP_KEYS})
    res = {"case": "c", "width": "tiny", "deviations": deviations, "inversion": 1e-6, "bank": 1e-5, "masks": 0,
           "start": 1e-6, "steps": [step], "seconds": 1.0}
    res.update({k: v for k, v in worst.items() if k not in report.STEP_KEYS})
    return res


def test_a_case_within_tolerance_passes():
    assert report.failures(result()) == []


@pytest.mark.parametrize("stage", ["g", "eps", "z_next", "E_edit", "repeats", "inversion", "bank", "start"])
def test_any_stage_over_tolerance_fails_its_case(stage):
    assert report.failures(result(**{stage: 3e-4})) == [stage]
    text, failed = report.table([result(**{stage: 3e-4})])
    assert failed and f"FAIL: {stage}" in text


def test_a_mask_cell_off_fails_unless_a_deviation_excuses_masks():
    assert report.failures(result(masks=1)) == ["masks"]
    assert report.failures(result(deviations=("resize",), masks=3, start=1.0)) == []
    assert report.failures(result(deviations=("drag start",), masks=1)) == ["masks"]  # excuses the start only


def test_the_free_run_is_reported_not_asserted():
    assert report.failures(result(free_run=5e-2)) == []


def test_the_readme_shows_the_results_files_summary():
    results = open(os.path.join(ROOT, "bench", "results", "conformance.md"), encoding="utf-8").read()
    summary = results.split("## Summary\n\n")[1].split("\n\n")[0].strip()
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert summary in readme
    rows = summary.splitlines()[2:]
    assert len(rows) == 15 and all("| pass" in r for r in rows)
