"""DragonDiffusion as small tensor functions (ICLR 2024, Mou et al.; DiffEditor, CVPR 2024).

One idea per module; ``README.md`` beside this file lists them, which way their imports point, and where a new
edit mode goes.
"""
