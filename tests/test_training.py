"""The training command is seeded: two runs with the same arguments give bit-identical weights."""
import safetensors.torch
import torch

from dragon_drag_edit.bench.scripts import train_toy


def test_training_is_reproducible(tmp_path):
    args = ["--steps", "3", "--batch", "4", "--log-every", "1", "--save-every", "3"]
    train_toy.main(args + ["--out", str(tmp_path / "a.safetensors")])
    train_toy.main(args + ["--out", str(tmp_path / "b.safetensors")])
    a = safetensors.torch.load_file(str(tmp_path / "a.safetensors"))
    b = safetensors.torch.load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    train_toy.main(args + ["--seed", "1", "--out", str(tmp_path / "c.safetensors")])
    c = safetensors.torch.load_file(str(tmp_path / "c.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)
