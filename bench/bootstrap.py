"""Make ComfyUI and this pack importable from scripts and tests, without touching sys.path badly.

ComfyUI owns top-level module names such as ``nodes``, ``utils`` and ``server``,
and so does this pack (``nodes/``). The pack root must therefore never be on
``sys.path``. Instead it is registered as the package ``dragon_drag_edit``
(its ``__init__`` is not run), so ``dragon_drag_edit.dragon_ops`` and
``dragon_drag_edit.bench`` import with their relative imports intact.

This file has no package-relative imports: load it by path.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "dragon_drag_edit"
DEFAULT_COMFY = os.path.join(ROOT, ".dev", "ComfyUI")


def comfy_root() -> str:
    path = os.path.abspath(os.environ.get("COMFYUI_PATH") or DEFAULT_COMFY)
    for need in ("main.py", "nodes.py", "execution.py", "comfy"):
        if not os.path.exists(os.path.join(path, need)):
            raise RuntimeError(f"ComfyUI not found at {path} (no {need}): run `make setup` or set COMFYUI_PATH")
    return path


def setup_comfy(pytorch_attention: bool = True) -> str:
    """Put ComfyUI first on sys.path and configure it for the CPU without parsing argv. Idempotent."""
    root = comfy_root()
    if root not in sys.path:
        sys.path.insert(0, root)
    if "comfy.model_management" not in sys.modules:
        import comfy.options  # noqa: F401  (argv stays unparsed)
        from comfy.cli_args import args

        args.cpu = True
        args.disable_all_custom_nodes = True
        args.use_pytorch_cross_attention = pytorch_attention
        # main.py imports ComfyUI's utils package first, before nodes.py puts
        # comfy/ on sys.path (where comfy/utils.py would shadow it).
        import utils.extra_config  # noqa: F401
        import utils.install_util  # noqa: F401

        logging.getLogger().setLevel(logging.WARNING)
    return root


def load_pack() -> types.ModuleType:
    """Register the pack as ``dragon_drag_edit`` without executing its ``__init__``."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    return module
