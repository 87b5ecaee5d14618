"""Test set-up: real ComfyUI (``.dev/ComfyUI`` or $COMFYUI_PATH) on the CPU, and this pack as ``dragon_drag_edit``.

The pack root is never put on sys.path (ComfyUI owns the top-level names
``nodes``, ``utils``, ``server``); ``bench/bootstrap.py`` registers it as a package.
"""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("_dragon_bootstrap", os.path.join(ROOT, "bench", "bootstrap.py"))
bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bootstrap)
bootstrap.setup_comfy()
bootstrap.load_pack()

import comfy.utils  # noqa: E402

comfy.utils.PROGRESS_BAR_ENABLED = False


@pytest.fixture(scope="session")
def toy():
    from dragon_drag_edit.bench import toy_model

    return toy_model.load_model()


@pytest.fixture(scope="session")
def tiny_sd15():
    import dd_models

    return dd_models.tiny_unet_model("sd15", seed=0)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    import dd_server

    with dd_server.ComfyServer(tmp_path_factory.mktemp("comfy_base")) as srv:
        yield srv
