"""Stand-in for basicsr 1.4.2, which does not import on torchvision 0.29: the official src/ uses only
``basicsr.utils.img2tensor`` and ``tensor2img``."""
