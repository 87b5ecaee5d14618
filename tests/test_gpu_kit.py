"""bench/gpu_kit.sh builds what a lent GPU machine needs to run bench/gpu_check.sh (issue 22's GPU check) and
bench/gpu_train.sh (issue 18's training). No GPU is
here, so this simulates that machine's Python (device library, KINDS.md: PyTorch and most of ComfyUI's dependencies,
no PyAV, no network): ComfyUI from the kit, the kit's wheels installed offline, PyAV only as the kit's stand-in,
which shadows the real one on the path; and the kit small enough to travel with the repo (64 MiB)."""
import json
import os
import subprocess
import sys

import safetensors
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def test_the_gpu_kit_runs_the_perf_and_training_scripts_without_pyav(tmp_path):
    kit, site = tmp_path / "kit", tmp_path / "site"
    subprocess.run(["bash", "bench/gpu_kit.sh"], cwd=ROOT, env={**os.environ, "GPU_KIT": str(kit)}, check=True)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    repo = sum(os.path.getsize(os.path.join(ROOT, f)) for f in tracked.decode().split("\0") if f
               and os.path.isfile(os.path.join(ROOT, f)))
    assert repo + _bytes(str(kit)) < 60 * 2**20, (repo, _bytes(str(kit)))  # the device tool carries 64 MiB at most
    assert _bytes(str(kit)) < 8 * 10**6, _bytes(str(kit))  # README: 7.1 MB
    wheels = sorted(str(kit / "whl" / w) for w in os.listdir(kit / "whl"))
    assert [os.path.basename(w).split("-")[0] for w in wheels] == ["torchsde", "trampoline"]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site),
                    *wheels], check=True)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{kit / 'stubs'}", "COMFYUI_PATH": str(kit / "ComfyUI")}
    probe = subprocess.run([sys.executable, "-c", "import av\nprint(av.__file__)\ntry:\n av.open('x.mp4')\n"
                            "except ImportError as e:\n print('raised', e)"], env=env, capture_output=True, text=True)
    assert probe.stdout.splitlines()[0].startswith(str(kit / "stubs")), probe
    assert "raised av.open: PyAV is not on this machine" in probe.stdout, probe
    run = subprocess.run([sys.executable, "bench/run.py", "perf", "--model", "sd15", "--channels", "32", "--size",
                          "32", "--steps", "4"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| guided, Preview | 8 | 2 | 2 |" in run.stdout, run.stdout[-3000:]
    # bench/gpu_train.sh (issue 18's training on a lent GPU), from the same kit, with its device and sizes set for
    # this CPU: 2 steps, the scenes rendered by 2 worker processes
    out = tmp_path / "out"
    env = {**os.environ, "GPU_KIT": str(kit), "SITE": str(tmp_path / "site2"), "OUT": str(out),
           "TRAIN_DEVICE": "cpu", "TRAIN_UNTIL": "2", "TRAIN_BATCH": "2", "TRAIN_WORKERS": "2",
           "TRAIN_AUTOCAST": "off", "TRAIN_CHECKPOINT": str(tmp_path / "ck.st"),
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    train = subprocess.run(["bash", "bench/gpu_train.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert train.returncode == 0 and "train_proxy: stopped at step 2" in train.stdout, train.stdout[-3000:]
    ema = out / "shapestext48_gpu_ema.safetensors"
    with safetensors.safe_open(str(ema), "pt") as f:
        args = json.loads(f.metadata()["args"])
        assert f.metadata()["step"] == "2" and args["workers"] == 2 and args["arch"] == "large48"
        assert f.get_tensor("input_blocks.0.0.weight").dtype == torch.float16
    assert os.path.getsize(ema) < 16 * 2**20  # what a file back from the lent machine may weigh
