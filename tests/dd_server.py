"""A real ComfyUI ``main.py`` server on 127.0.0.1 with this pack linked into custom_nodes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_NAME = "dragon-drag-edit"
CKPT = "tiny_sd15.safetensors"
# The frontends the browser tests drive: the one ComfyUI 0.3.75 pins (its own, from the venv), and the newest on the
# package registry, which .ci/setup_env.sh installs into its own folder (served with --front-end-root).
FRONTENDS = {"1.32.9": None,
             "1.58.1": os.path.join(ROOT, ".dev", "frontend-1.58.1", "comfyui_frontend_package", "static")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, base, frontend: bool | str = False, extra_args: tuple[str, ...] = ()):
        """``frontend``: False (a stub page), True (ComfyUI's own frontend) or a frontend's static folder."""
        self.base = base
        self.frontend = frontend
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self) -> ComfyServer:
        from dragon_drag_edit.bench.bootstrap import comfy_root

        import dd_checkpoint

        for d in ("models/checkpoints", "custom_nodes", "input", "output", "user", "temp"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        ckpt = self.base / "models" / "checkpoints" / CKPT
        if not ckpt.exists():
            dd_checkpoint.write_checkpoint(str(ckpt))
        link = self.base / "custom_nodes" / PACK_NAME
        if not link.exists():
            link.symlink_to(ROOT, target_is_directory=True)
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--disable-auto-launch", "--disable-api-nodes",
               "--database-url", "sqlite:///:memory:", "--use-pytorch-cross-attention", *self.extra_args]
        if not self.frontend:
            stub = self.base / "web_stub"
            stub.mkdir(exist_ok=True)
            (stub / "index.html").write_text("<!doctype html><title>stub</title>\n")
            cmd += ["--front-end-root", str(stub)]
        elif isinstance(self.frontend, str):
            cmd += ["--front-end-root", self.frontend]
        self.log_path = self.base / "server.log"
        self.log = open(self.log_path, "w")
        env = {**os.environ, "DRAGON_DRAG_EDIT_TOY": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen(cmd, cwd=comfy_root(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.get("/system_stats", timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise TimeoutError("ComfyUI did not start in 120 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()

    def request(self, method: str, path: str, body=None, timeout: float = 30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()

    def get(self, path: str, timeout: float = 30):
        status, raw = self.request("GET", path, timeout=timeout)
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw

    def run(self, graph: dict, timeout: float = 300) -> dict:
        """POST a prompt and wait for it; returns the history entry (status and outputs)."""
        try:
            _, raw = self.request("POST", "/prompt", {"prompt": graph, "client_id": str(uuid.uuid4())})
        except urllib.error.HTTPError as e:  # validation errors come back as HTTP 400 with a JSON body
            return {"status": {"status_str": "invalid"}, "validation": json.loads(e.read())}
        pid = json.loads(raw)["prompt_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{pid}")
            if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
                entry = hist[pid]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(0.3)
        raise TimeoutError(f"prompt {pid} did not finish in {timeout} s")


def error_message(entry: dict) -> str:
    """The execution error text of a failed history entry."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return f"{data.get('node_type')}: {data.get('exception_message')}"
    return json.dumps(entry.get("validation", entry))


def write_picture_and_mask(input_dir, name: str, seed: int) -> None:
    """A 64 x 64 noise picture ``<name>.png`` and a square object mask ``<name>_mask.png`` in ``input_dir``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(input_dir / f"{name}.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 16:40] = 255
    Image.fromarray(mask).save(input_dir / f"{name}_mask.png")
