"""The ComfyUI ecosystem's own checkers on this pack, as the registry and CI of other packs run them: `comfy-test
lint` (PyPI comfy-test: forbidden non-native patterns in Python, the JS extension namespace) and `comfy node
validate` (PyPI comfy-cli: pyproject.toml and security checks). Both are installed, pinned, by `make setup` into
.dev/tools."""
import os
import subprocess

import pytest

from dd_server import ROOT

TOOLS = os.path.join(ROOT, ".dev", "tools", "bin")


def run(*cmd: str) -> subprocess.CompletedProcess:
    exe = os.path.join(TOOLS, cmd[0])
    if not os.path.exists(exe):
        pytest.fail(f"{exe} is missing: run `make setup`")
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([exe, *cmd[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_comfy_test_lint_passes():
    out = run("comfy-test", "lint", ".")
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "[SYNTAX] PASSED" in text and "[JAVASCRIPT] PASSED" in text, text


def test_comfy_node_validate_passes():
    out = run("comfy", "--skip-prompt", "--no-enable-telemetry", "node", "validate")
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "validation checks passed" in text, text
