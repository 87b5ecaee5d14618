"""Run a bench command with ComfyUI and this pack importable: ``python bench/run.py NAME [ARGS]``.

NAME is a module of ``bench/`` with a ``main(argv)`` function (shapesdrag, perf, scripts.train_toy, ...).
"""
import importlib
import importlib.util
import os
import sys

_spec = importlib.util.spec_from_file_location(
    "_dragon_bootstrap", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py"))
bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bootstrap)

if __name__ == "__main__":
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))  # bench/ must not shadow anything
    bootstrap.setup_comfy()
    bootstrap.load_pack()
    module = importlib.import_module(f"{bootstrap.PACKAGE}.bench.{sys.argv[1]}")
    module.main(sys.argv[2:])
