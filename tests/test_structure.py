"""Issue 21: the shape of the code, checked. ``dragon_ops/README.md`` lists every module and what it imports; no
attention rule is spelt as a string outside its type; the matching-grid ratio has one name; no hook fills the
sampler's run; no file is over 400 lines."""
import ast
import dataclasses
import os
import re

import pytest

from dragon_drag_edit.dragon_ops import sampler
from dragon_drag_edit.dragon_ops.bank_rule import Rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = os.path.join(ROOT, "dragon_ops")
CODE_DIRS = ("dragon_ops", "nodes", "bench", "tests", "web")


def sources(exts=(".py",)):
    for top in CODE_DIRS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__")) and d != "node_modules"]
            for name in files:
                if name.endswith(exts):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT), open(path, encoding="utf-8").read()


def own_imports(path: str) -> set[str]:
    """The dragon_ops modules a module imports (``from .x import`` and ``from . import x``)."""
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.level > 1:
            out.add("../" + (node.module or ""))  # reaching out of dragon_ops
    return out


def readme_rows() -> dict[str, set[str]]:
    rows = {}
    for line in open(os.path.join(OPS, "README.md"), encoding="utf-8"):
        m = re.match(r"\| `(\w+)\.py` \|.*\| ([\w, ]+) \|$", line.rstrip())
        if m:
            rows[m.group(1)] = set() if m.group(2).strip() == "none" else {s.strip() for s in m.group(2).split(",")}
    return rows


def test_the_dragon_ops_readme_lists_every_module_with_its_imports():
    modules = {f[:-3] for f in os.listdir(OPS) if f.endswith(".py") and f != "__init__.py"}
    rows = readme_rows()
    assert set(rows) == modules
    for name in sorted(modules):
        assert own_imports(os.path.join(OPS, name + ".py")) == rows[name], name


def test_no_attention_rule_is_a_string_outside_its_type():
    spelt = [f'"{r.value}"' for r in Rule] + [f"'{r.value}'" for r in Rule]
    found = [(path, s) for path, text in sources((".py", ".js")) for s in spelt
             if s in text and path != os.path.join("dragon_ops", "bank_rule.py")]
    assert not found


GRID_RATIO = [  # the ways the ratio 2 between matching grid and latent grid was written before it had a name
    r"to_latent_grid\([^)]*,\s*2\b", r"\b2 \* (h|w|gh|gw|cell)\b", r"\((h|w) \* 2\b", r"// 2 for s in",
    r"\[::2, ::2\]", r"/ \(2 \* cell\)",
]


@pytest.mark.parametrize("pattern", GRID_RATIO)
def test_the_grid_ratio_is_written_only_by_its_name(pattern):
    found = [path for path, text in sources() if path.startswith(("dragon_ops", "nodes")) and re.search(pattern, text)]
    assert not found


def test_the_sampler_run_is_settings_only_and_no_hook_fills_it():
    assert sampler.GuidedRun.__dataclass_params__.frozen
    assert {f.name for f in dataclasses.fields(sampler.GuidedRun)} == {
        "plan", "schedule", "steps", "tap_blocks", "grid", "cap", "seed", "bank_attention"}
    hooks = [path for path, text in sources() if "post_cfg_function" in text and path.startswith(("dragon_ops",
                                                                                                   "nodes"))]
    assert not hooks


def test_no_file_over_400_lines():
    long = [(path, text.count("\n")) for path, text in sources((".py", ".js")) if text.count("\n") > 400]
    assert not long


def test_an_unknown_rule_is_an_error_and_each_rule_builds_its_keys_and_values():
    import torch

    with pytest.raises(ValueError):
        Rule("replace ")
    ctx, val, tokens = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    k, v = Rule.CONCAT.keys_values(ctx, val, tokens)
    assert torch.equal(k, torch.cat([ctx, tokens], 1)) and torch.equal(v, torch.cat([val, tokens], 1))
    for rule in (Rule.REPLACE, Rule.COMPOSITE):
        k, v = rule.keys_values(ctx, val, tokens)
        assert k is tokens and v is tokens
    assert Rule.COMPOSITE.priority > Rule.CONCAT.priority > Rule.REPLACE.priority
    assert [r.starts_at_bank_start for r in Rule] == [True, True, False]
