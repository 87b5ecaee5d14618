"""Issue 20: an edited bank file is refused by DragonMemoryBankLoad with a ``file:`` message that says what
differs, whether the editor left the digest as it was (the digest catches it) or wrote a fresh one (the checks of
what a digest cannot vouch for catch it); an untouched bank still round-trips bit for bit."""
import pytest
import torch
from dd_tamper import CASES, tamper

from dragon_drag_edit.nodes.bank_io import DragonMemoryBankLoad, bank_dir
from dragon_drag_edit.nodes.common import InputError

from dd_edit import invert


@pytest.fixture()
def saved(tiny_sd15, tmp_path, monkeypatch):
    """A bank made by the tiny SD1.5 model, saved through the node's folder, and the latent it was made for."""
    import folder_paths

    from dragon_drag_edit.dragon_ops import memory_bank

    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path))
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    bank = invert(tiny_sd15, lat, steps=4)[1]
    path = f"{bank_dir()}/b.safetensors"
    memory_bank.save(bank, path)
    return bank, path, {"samples": lat}


def load(saved, model):
    return DragonMemoryBankLoad.execute(file="b.safetensors", model=model, latent=saved[2]).args[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_edited_file_is_refused_by_its_digest(tiny_sd15, saved, case):
    tamper(saved[1], CASES[case][0], fresh_digest=False)
    with pytest.raises(InputError, match=r"^file: b\.safetensors: does not match the digest it was saved with"):
        load(saved, tiny_sd15)


@pytest.mark.parametrize("case", sorted(c for c, (_, m) in CASES.items() if m))
def test_a_file_with_a_fresh_digest_is_checked_for_what_the_pack_relies_on(tiny_sd15, saved, case):
    change, message = CASES[case]
    tamper(saved[1], change, fresh_digest=True)
    with pytest.raises(InputError, match=r"^file: ") as err:
        load(saved, tiny_sd15)
    assert message in str(err.value) and str(saved[1]) not in str(err.value)  # no server path in the message


def test_an_untouched_bank_round_trips_bit_for_bit(tiny_sd15, saved):
    bank = saved[0]
    back = load(saved, tiny_sd15)
    assert back.header() == bank.header() and torch.equal(back.latents, bank.latents)
    assert all(torch.equal(back.hidden[k], v) and back.hidden[k].dtype == v.dtype for k, v in bank.hidden.items())


def test_a_malformed_header_is_refused_by_name(tiny_sd15, saved):
    tamper(saved[1], lambda head, tensors: head.update(layers=[{"block": "x"}]), fresh_digest=True)
    with pytest.raises(InputError, match=r"^file: b\.safetensors: its header's layers are malformed"):
        load(saved, tiny_sd15)
    tamper(saved[1], lambda head, tensors: head.pop("schedule"), fresh_digest=True)
    with pytest.raises(InputError, match=r"^file: b\.safetensors: its header lacks schedule"):
        load(saved, tiny_sd15)
