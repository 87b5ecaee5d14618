"""Loaders for the project's small models. Not user nodes: they are registered only when the environment sets
DRAGON_DRAG_EDIT_TOY=1 (the test server and ``make demo`` do)."""
from __future__ import annotations

from comfy_api.latest import io

from . import proxy_model, toy_model


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


class DragonProxyModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonProxyModelLoader",
            display_name="Dragon Proxy Model Loader (tests and benchmark)",
            category="Dragon Drag Edit/dev",
            description="Loads the project's prompt-conditioned 48x48 pixel-space proxy model (ShapesText48) and "
                        "encodes a prompt and a negative prompt with its own text encoder. Pair it with VAELoader "
                        "'pixel_space'.",
            inputs=[io.String.Input("prompt", default="", multiline=True, tooltip="What the picture shows, in the "
                                    "scene generator's words, e.g. 'a red star on a gray background'."),
                    io.String.Input("negative", default="", tooltip="Negative prompt ('' = unconditional).")],
            outputs=[io.Model.Output("model_out", display_name="MODEL", tooltip="ShapesText48 as a ComfyUI MODEL."),
                     io.Conditioning.Output("positive_out", display_name="positive", tooltip="The prompt."),
                     io.Conditioning.Output("negative_out", display_name="negative", tooltip="The negative prompt.")],
        )

    @classmethod
    def execute(cls, *, prompt, negative) -> io.NodeOutput:
        model, text = proxy_model.load()
        return io.NodeOutput(model, proxy_model.encode(text, prompt), proxy_model.encode(text, negative))
