"""The node list handed to ComfyUI through ``comfy_entrypoint``."""
from __future__ import annotations

import os

from comfy_api.latest import ComfyExtension, io

from . import example_inputs
from .bank_io import DragonMemoryBankLoad, DragonMemoryBankSave
from .energy_move import DragonEnergyMove
from .energy_points import DragonEnergyDrag, DragonEnergyLandmarks
from .energy_two_image import DragonEnergyAppearance, DragonEnergyPaste
from .generation import DragonSampleToMemoryBank
from .inversion import DDIMInvertToMemoryBank
from .points_editor import DragonPointsEditor
from .sampler import DragonGuidedSampler

NODES: list[type[io.ComfyNode]] = [DDIMInvertToMemoryBank, DragonSampleToMemoryBank, DragonMemoryBankSave,
                                   DragonMemoryBankLoad, DragonEnergyMove, DragonEnergyDrag, DragonEnergyLandmarks,
                                   DragonEnergyAppearance, DragonEnergyPaste, DragonGuidedSampler, DragonPointsEditor]


def node_list() -> list[type[io.ComfyNode]]:
    nodes = list(NODES)
    if os.environ.get("DRAGON_DRAG_EDIT_TOY") == "1":  # tests and `make demo` only
        from ..bench.toy_nodes import DragonProxyModelLoader, DragonToyModelLoader

        nodes += [DragonToyModelLoader, DragonProxyModelLoader]
    return nodes


class DragonDragEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        example_inputs.install()  # here, not in on_load: ComfyUI 0.3.75 never calls on_load (upstream does)
        return node_list()
