"""DragonDiffusion as small tensor functions (ICLR 2024, Mou et al.; DiffEditor, CVPR 2024).

One idea per module: the DDIM schedule, DDIM inversion into a memory bank, the
bank itself, the UNet structure map, and the visual cross-attention patch.
Only ``schedule``, ``unet_map``, ``inversion`` and ``attention`` see ComfyUI
objects, and only through the hooks ComfyUI documents.
"""
