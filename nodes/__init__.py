"""ComfyUI nodes of Dragon Drag Edit: thin V3 wrappers over ``dragon_ops``."""
