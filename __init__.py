"""Dragon Drag Edit: DragonDiffusion drag-style image editing as native ComfyUI nodes.

ComfyUI imports this folder as a package; everything inside uses relative imports.
Only ``comfy_entrypoint`` (V3 node registration) and ``WEB_DIRECTORY`` are exported.
"""
from .nodes.registry import DragonDragEditExtension

WEB_DIRECTORY = "./web/js"


async def comfy_entrypoint() -> DragonDragEditExtension:
    return DragonDragEditExtension()
