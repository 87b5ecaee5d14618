"""The memory bank: layer map, shapes, byte formula, and safetensors I/O."""
import os

import pytest
import torch

from dragon_drag_edit.dragon_ops import bank_checks, memory_bank, unet_map
from dragon_drag_edit.nodes.inversion import DDIMInvertToMemoryBank

from dd_models import conds_for, sd15_structure, tiny_unet_model


def invert(model, latent, steps=4, precision="fp16"):
    pos, _ = conds_for(model)
    out = DDIMInvertToMemoryBank.execute(model=model, latent={"samples": latent}, conditioning=pos, steps=steps,
                                         bank_precision=precision, bank_device="cpu")
    return out.args[0]["samples"], out.args[1]


@pytest.fixture(scope="module")
def bank(tiny_sd15):
    return invert(tiny_sd15, torch.randn(1, 4, 16, 24, generator=torch.Generator().manual_seed(3)))[1]


def test_sd15_map_matches_the_official_layers():
    umap = unet_map.map_unet(sd15_structure())
    assert [layer.block for layer in umap.bank_layers] == list(range(3, 12))  # output_blocks 3..11
    assert [layer.channels for layer in umap.bank_layers] == [1280] * 3 + [640] * 3 + [320] * 3
    assert umap.tap_blocks == (6, 9)  # h after output_blocks[5] and [8]
    assert umap.tap_channels == (1280, 640) and umap.tap_factors == (2, 1)
    # SD1.5 at 512x512, 50 steps, fp16: half of the official K/V bank's 1.28 GiB
    nbytes = memory_bank.hidden_nbytes(umap.bank_layers, 50, 1, 64, 64, 2)
    assert nbytes == 50 * 2 * (256 * 1280 * 3 + 1024 * 640 * 3 + 4096 * 320 * 3) == 688_128_000
    # an fp8 bank meets the 0.35 GiB target (issue 8)
    assert memory_bank.hidden_nbytes(umap.bank_layers, 50, 1, 64, 64, 1) == 344_064_000 <= 0.35 * 2**30


def test_bank_layout_and_byte_count(bank):
    # tiny model: decoder blocks 0-3 hold SpatialTransformers at 1/4 and 1/2 latent resolution
    assert [layer.key for layer in bank.layers] == ["output.0.0", "output.1.0", "output.2.0", "output.3.0"]
    assert bank.steps == (0, 1, 2, 3)
    assert bank.latents.shape == (5, 1, 4, 16, 24) and bank.latents.dtype == torch.float32
    tokens = {"output.0.0": 4 * 6, "output.1.0": 4 * 6, "output.2.0": 8 * 12, "output.3.0": 8 * 12}
    for layer in bank.layers:
        assert bank.hidden[layer.key].shape == (4, 1, tokens[layer.key], layer.channels)
        assert bank.hidden[layer.key].dtype == torch.float16
    formula = memory_bank.hidden_nbytes(bank.layers, 4, 1, 16, 24, 2)
    assert bank.nbytes() == formula + 5 * 4 * 16 * 24 * 4


def test_bank_step_keys_follow_the_official_off_by_one(tiny_sd15, bank):
    # bank[i] is read while sampling step i, and latent_at(i) has step i's noise level
    assert bank.schedule.timesteps == (751, 501, 251, 1)
    assert torch.equal(bank.latent_at(0), bank.latents[4]) and torch.equal(bank.latent_at(3), bank.latents[1])


def test_save_load_round_trip_is_bit_exact(tmp_path, bank):
    path = str(tmp_path / "b.safetensors")
    memory_bank.save(bank, path)
    back = memory_bank.load(path)
    assert back.header() == bank.header()
    assert torch.equal(back.latents, bank.latents)
    for k, v in bank.hidden.items():
        assert back.hidden[k].dtype == v.dtype and torch.equal(back.hidden[k], v)
    assert [f for f in os.listdir(tmp_path)] == ["b.safetensors"]  # no temp file left behind


def test_truncated_file_is_refused(tmp_path, bank):
    path = str(tmp_path / "b.safetensors")
    memory_bank.save(bank, path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(memory_bank.BankError, match="truncated or corrupt"):
        memory_bank.load(path)


def test_bank_from_another_model_or_size_is_refused(tmp_path, bank, tiny_sd15):
    other = tiny_unet_model("sd15", seed=7)
    fp_other = unet_map.fingerprint(other.model.diffusion_model)
    fp_same = unet_map.fingerprint(tiny_sd15.model.diffusion_model)
    assert fp_same == bank.fingerprint != fp_other
    with pytest.raises(memory_bank.BankError, match="another model"):
        memory_bank.check_matches(bank, fingerprint=fp_other)
    with pytest.raises(memory_bank.BankError, match=r"made for latent \(4, 16, 24\) but this latent is \(4, 16, 16\)"):
        memory_bank.check_matches(bank, latent_shape=(1, 4, 16, 16))
    memory_bank.check_matches(bank, fingerprint=fp_same, latent_shape=(1, 4, 16, 24))


def test_file_with_edited_shapes_is_refused(tmp_path, bank):
    import safetensors.torch

    path = str(tmp_path / "b.safetensors")
    memory_bank.save(bank, path)
    tensors = safetensors.torch.load_file(path)
    with open(path, "rb") as f:
        import json
        import struct
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    tensors["latents"] = tensors["latents"][:2]
    head = json.loads(meta["dragon"])
    head["digest"] = bank_checks.digest(head, tensors)  # a consistent digest: the shape check must still refuse it
    safetensors.torch.save_file(tensors, path, metadata={"dragon": json.dumps(head)})
    with pytest.raises(memory_bank.BankError, match="do not match the bank header"):
        memory_bank.load(path)


def test_fp8_bank_is_half_of_fp16_and_round_trips(tmp_path, tiny_sd15):
    latent = torch.randn(1, 4, 16, 24, generator=torch.Generator().manual_seed(3))
    half, eighth = invert(tiny_sd15, latent)[1], invert(tiny_sd15, latent, precision="fp8")[1]
    assert eighth.dtype == torch.float8_e4m3fn
    assert eighth.nbytes() - eighth.latents.nbytes == (half.nbytes() - half.latents.nbytes) // 2
    for key, t in eighth.hidden.items():
        ref = half.hidden[key].float()
        assert torch.isfinite(t.float()).all()
        assert (t.float() - ref).abs().max() <= 0.07 * ref.abs().max()  # 3 mantissa bits
    path = str(tmp_path / "b8.safetensors")
    memory_bank.save(eighth, path)
    back = memory_bank.load(path)
    assert all(torch.equal(back.hidden[k].view(torch.uint8), v.view(torch.uint8)) for k, v in eighth.hidden.items())


def test_fp8_recording_clamps_instead_of_making_nan():
    from dragon_drag_edit.dragon_ops.attention import BankRecorder

    rec = BankRecorder(frozenset({"k"}), torch.float8_e4m3fn, torch.device("cpu"), step=0)
    rec("k", torch.tensor([[1000.0, -1000.0, 1.0]]), [0])
    assert rec.records[(0, "k", 0)].float().tolist() == [[448.0, -448.0, 1.0]]


def test_bank_of_the_previous_format_asks_to_re_invert(tmp_path, bank):
    import json

    import safetensors.torch

    path = str(tmp_path / "b.safetensors")
    memory_bank.save(bank, path)
    tensors = safetensors.torch.load_file(path)
    head = {**bank.header(), "version": 1}
    safetensors.torch.save_file(tensors, path, metadata={"dragon": json.dumps(head)})
    with pytest.raises(memory_bank.BankError, match="format v1, this pack reads v3; re-run DDIMInvertToMemoryBank"):
        memory_bank.load(path)


def test_fingerprint_is_one_for_fp32_and_fp16_weights_of_a_checkpoint_and_another_for_another(tiny_sd15):
    """Issue 33 (3): ComfyUI 0.3.75 casts an fp32 checkpoint to fp16; upstream's dynamic VRAM keeps the stored fp32
    (SIMULATED here by holding one checkpoint's UNet both ways). A bank must match either; another model's not."""
    import copy

    unet = tiny_sd15.model.diffusion_model
    fp32 = copy.deepcopy(unet).float()
    fp16 = copy.deepcopy(unet).half()
    assert next(fp32.parameters()).dtype == torch.float32 and next(fp16.parameters()).dtype == torch.float16
    assert unet_map.fingerprint(fp32) == unet_map.fingerprint(fp16)
    other = tiny_unet_model("sd15", seed=7).model.diffusion_model
    assert unet_map.fingerprint(copy.deepcopy(other).float()) != unet_map.fingerprint(fp32)
    assert unet_map.fingerprint(copy.deepcopy(other).half()) != unet_map.fingerprint(fp16)
