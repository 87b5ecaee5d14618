"""The memory guard: a request that cannot fit fails before any compute, with the estimate and the options."""
import comfy.model_patcher
import pytest
import torch

from dragon_drag_edit.bench import sd_random
from dragon_drag_edit.dragon_ops import memory_bank, unet_map
from dragon_drag_edit.nodes.common import InputError
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank


def test_4096_square_sd15_bank_is_refused_before_any_compute():
    # the full SD1.5 architecture on the meta device: any real compute on it would raise, so passing the guard
    # and then failing in compute cannot masquerade as the guard's error
    base = sd_random.base_model(torch.device("meta"), torch.float16)
    model = comfy.model_patcher.ModelPatcher(base, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    latent = {"samples": torch.zeros(1, 4, 512, 512)}  # a 4096x4096 image
    need = memory_bank.hidden_nbytes(unet_map.map_unet(base.diffusion_model).bank_layers, 50, 1, 512, 512, 2)
    assert need == 64 * 688_128_000  # 41 GiB: more than this machine (or most GPUs) has
    with pytest.raises(InputError, match=r"^latent: a 50-step fp16 memory bank for this image needs about 41\.02 GiB "
                       r"but only [\d.]+ GiB is free on cpu; use a smaller image, fewer steps, bank_precision fp8, "
                       r"or bank_device cpu\.$"):
        DDIMInvertToMemoryBank.execute(model=model, latent=latent, conditioning=[[torch.zeros(1, 77, 768), {}]],
                                       steps=50, bank_precision="fp16", bank_device="cpu")
