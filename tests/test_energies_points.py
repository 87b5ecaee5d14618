"""Drag, landmark, appearance and paste energies equal the spec's formulas (4.2-4.5); gradients match finite
differences to 1 %."""
import pytest
import torch

from dragon_drag_edit.dragon_ops import energies, geometry

W = 8  # matching-grid width of the hand-made 8x8 feature maps


def feats(seed, base=None, c=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(ch, 8, W, generator=g, dtype=torch.float64) + 1.0 for ch in c]
    return out if base is None else [0.6 * o + b for o, b in zip(out, base)]


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def s01(a, b):
    return (1 + cosine(a, b)) / 2


def cell(f, idx):
    return f.flatten(1)[:, idx]


def patches(pairs):
    """PointPatches from (hy, hx, ty, tx) patch centres."""
    t = torch.stack([geometry.patch_indices(ty, tx, W) for _, _, ty, tx in pairs])
    h = torch.stack([geometry.patch_indices(hy, hx, W) for hy, hx, _, _ in pairs])
    contrast = tuple(hk[~torch.isin(hk, tk)] for hk, tk in zip(h, t))
    return energies.PointPatches(t, h, contrast)


PP = patches([(2, 2, 3, 4), (5, 5, 5, 6)])
DW = energies.DragWeights()
KEEP = torch.zeros(8, W, dtype=torch.bool)
KEEP[:, 6:] = True
TARGET = torch.zeros(8, W, dtype=torch.bool)
TARGET[1:4, 1:4] = True
SOURCE = torch.zeros(8, W, dtype=torch.bool)
SOURCE[4:7, 3:6] = True
MOVE = geometry.move(SOURCE, -3.0, -2.0)  # pairs target cells (rows 1-3, cols 1-3) with SOURCE cells


def drag_by_hand(cur, ref, contrast=True):
    total = 0.0
    for c, r in zip(cur, ref):
        for k in range(PP.target.shape[0]):
            sims = [s01(cell(c, int(p)), cell(r, int(q))) for p, q in zip(PP.target[k], PP.handle[k])]
            total += DW.edit / (1 + 4 * sum(sims) / 9)
            if contrast and PP.contrast[k].numel():
                total += DW.inpaint * sum(s01(cell(c, int(p)), cell(r, int(p))) for p in PP.contrast[k]) / \
                    PP.contrast[k].numel()
    return total / (len(cur) * PP.target.shape[0])


def content_by_hand(cur, ref, reduce):
    idx = KEEP.flatten().nonzero()[:, 0]
    vals = [6.0 / (1 + 4 * sum(s01(cell(r, int(p)), cell(c, int(p))) for p in idx) / len(idx))
            for c, r in zip(cur, ref)]
    return sum(vals) / len(vals) if reduce == "mean" else sum(vals)


def appearance_by_hand(cur, ref):
    b, r_idx = TARGET.flatten().nonzero()[:, 0], SOURCE.flatten().nonzero()[:, 0]
    return sum(3.5 / (1 + 4 * s01(c.flatten(1)[:, b].mean(1), r.flatten(1)[:, r_idx].mean(1)))
               for c, r in zip(cur, ref))


def paste_by_hand(cur, ref):
    total = 0.0
    for c, r in zip(cur, ref):
        sims = [s01(cell(c, int(p)), cell(r, int(q))) for p, q in zip(MOVE.target_idx, MOVE.source_idx)]
        total += 4.0 / (1 + 4 * sum(sims) / len(sims))
    return total


CASES = {
    "drag": (lambda c, r: energies.drag_edit(c, r, PP, DW), drag_by_hand),
    "landmarks": (lambda c, r: energies.drag_edit(c, r, PP, DW, contrast=False),
                  lambda c, r: drag_by_hand(c, r, contrast=False)),
    "content_mean": (lambda c, r: energies.region_content(c, r, KEEP, 6.0),
                     lambda c, r: content_by_hand(c, r, "mean")),
    "content_sum": (lambda c, r: energies.region_content(c, r, KEEP, 6.0, reduce="sum"),
                    lambda c, r: content_by_hand(c, r, "sum")),
    "appearance": (lambda c, r: energies.appearance_edit(c, r, TARGET, SOURCE, 3.5), appearance_by_hand),
    "paste": (lambda c, r: energies.paste_edit(c, r, MOVE.target_idx, MOVE.source_idx, 4.0), paste_by_hand),
}


@pytest.mark.parametrize("name", list(CASES))
def test_energy_is_the_spec_formula(name):
    fn, by_hand = CASES[name]
    cur = feats(0)
    ref = feats(1, base=cur)
    assert float(fn(cur, ref)) == pytest.approx(by_hand(cur, ref), rel=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_finite_differences(name):
    fn, _ = CASES[name]
    cur = [f.clone().requires_grad_(True) for f in feats(2)]
    ref = feats(3, base=feats(2))
    (grad,) = torch.autograd.grad(fn(cur, ref).double(), cur[0])
    direction = torch.randn(cur[0].shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    h = 1e-4
    plus = fn([cur[0].detach() + h * direction, cur[1].detach()], ref).double()
    minus = fn([cur[0].detach() - h * direction, cur[1].detach()], ref).double()
    numeric, analytic = float((plus - minus) / (2 * h)), float((grad * direction).sum())
    assert abs(numeric - analytic) <= 0.01 * abs(analytic), (numeric, analytic)


def test_handle_within_one_cell_of_its_target_is_finite():
    pp = patches([(3, 3, 3, 3)])  # same patch: nothing left for the contrast part (Q15)
    assert pp.contrast[0].numel() == 0
    cur = [f.clone().requires_grad_(True) for f in feats(5)]
    e = energies.drag_edit(cur, feats(6, base=feats(5)), pp, DW)
    (grad,) = torch.autograd.grad(e, cur[0])
    assert torch.isfinite(e) and torch.isfinite(grad).all()
