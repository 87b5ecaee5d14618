"""The one extra loader for the project's small model. Not a user node: it is registered only when
the environment sets DRAGON_DRAG_EDIT_TOY=1 (the test server and ``make demo`` do)."""
from __future__ import annotations

from comfy_api.latest import io

from . import toy_model


class DragonToyModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonToyModelLoader",
            display_name="Dragon Toy Model Loader (tests and demo)",
            category="Dragon Drag Edit/dev",
            description="Loads the project's 32x32 pixel-space Shapes32 model and its null conditioning. Pair it "
                        "with VAELoader 'pixel_space'.",
            inputs=[io.Boolean.Input("load", default=True, tooltip="Unused switch; the node has no real inputs.")],
            outputs=[io.Model.Output("model_out", display_name="MODEL", tooltip="Shapes32 as a ComfyUI MODEL."),
                     io.Conditioning.Output("cond_out", display_name="null conditioning",
                                            tooltip="The model's only conditioning: one zero token.")],
        )

    @classmethod
    def execute(cls, *, load) -> io.NodeOutput:
        return io.NodeOutput(toy_model.load_model(), toy_model.null_conditioning())
