"""Drag (4.2), landmark (4.3), appearance (4.4) and paste (4.5) energies against hand-written spec formulas.

Independent of the implementation: the spec formulas are spelt out with explicit loops over layers, pairs and
cells on float64 features of a non-square grid, and gradients are checked against central finite differences.
"""
import math

import pytest
import torch

from dragon_drag_edit.dragon_ops import energies, geometry

H, W = 6, 10  # non-square matching grid, so any row/column mix-up in flat indices shows
CHANNELS = (4, 7)  # two layers of different width


def feats(seed, base=None):
    """Random float64 (C, H, W) maps; with ``base``, correlated with it (positive cosines, as real features are)."""
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(ch, H, W, generator=g, dtype=torch.float64) + 1.0 for ch in CHANNELS]
    return out if base is None else [0.6 * o + b for o, b in zip(out, base)]


def vec(f, p):
    """Feature vector of flat cell p of a (C, H, W) map."""
    return f[:, p // W, p % W]


def cosine(a, b):
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    na = math.sqrt(sum(float(x) ** 2 for x in a))
    nb = math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / (na * nb)


def s01(a, b):
    return (1 + cosine(a, b)) / 2


def inverse(weight, sim):
    denom = 1 + 4 * sim
    assert denom > energies.DENOM_MIN  # the test regime never reaches the clamp
    return weight / denom


def cells(mask):
    return [y * W + x for y in range(H) for x in range(W) if bool(mask[y, x])]


def point_patches(points):
    """PointPatches from (hy, hx, ty, tx) points in cell units, centred with geometry.patch_center."""
    t, h = [], []
    for hy, hx, ty, tx in points:
        t.append(geometry.patch_indices(*geometry.patch_center(ty, tx, (H, W)), W))
        h.append(geometry.patch_indices(*geometry.patch_center(hy, hx, (H, W)), W))
    contrast = tuple(torch.tensor([int(p) for p in hk if int(p) not in set(tk.tolist())], dtype=torch.long)
                     for hk, tk in zip(h, t))
    return energies.PointPatches(torch.stack(t), torch.stack(h), contrast)


# Pair 0 overlaps its target in 6 cells (3 contrast cells), pair 1 does not overlap (9), pair 2 in 4 cells (5).
POINTS = [(2.3, 2.8, 2.6, 3.1), (1.5, 7.9, 4.2, 7.4), (3.0, 5.0, 4.0, 6.0)]
PP = point_patches(POINTS)
DRAG_W = energies.DragWeights()  # 4, 6, 0.2
FACE_W = energies.DragWeights(edit=12.0, inpaint=0.4)  # landmark mode: w_inpaint passed but unused (Q16)

KEEP = torch.zeros(H, W, dtype=torch.bool)
KEEP[:, 7:] = True
KEEP[0, :3] = True
BASE_REGION = torch.zeros(H, W, dtype=torch.bool)
BASE_REGION[1:4, 1:5] = True
REF_REGION = torch.zeros(H, W, dtype=torch.bool)
REF_REGION[2:6, 5:8] = True
OBJECT = torch.zeros(H, W, dtype=torch.bool)
OBJECT[3:5, 6:9] = True
MOVE = geometry.move(OBJECT, -2.0, -4.0)  # paste: target cells rows 1-2, cols 2-4 paired with OBJECT's cells


def drag_by_hand(cur, ref, pp, w, contrast=True):
    k_pairs = pp.target.shape[0]
    total = 0.0
    for c, r in zip(cur, ref):
        for k in range(k_pairs):
            sims = [s01(vec(c, int(pp.target[k, j])), vec(r, int(pp.handle[k, j]))) for j in range(9)]
            total += inverse(w.edit, sum(sims) / 9)
            idx = pp.contrast[k].tolist()
            if contrast and idx:
                total += w.inpaint * sum(s01(vec(c, p), vec(r, p)) for p in idx) / len(idx)
    return total / (len(cur) * k_pairs)


def content_by_hand(cur, ref, weight, reduce):
    keep = cells(KEEP)
    per_layer = [inverse(weight, sum(s01(vec(r, p), vec(c, p)) for p in keep) / len(keep)) for c, r in zip(cur, ref)]
    return sum(per_layer) / len(per_layer) if reduce == "mean" else sum(per_layer)


def appearance_by_hand(cur, ref, weight):
    b, q = cells(BASE_REGION), cells(REF_REGION)
    total = 0.0
    for c, r in zip(cur, ref):
        mean_cur = [sum(float(c[ch, p // W, p % W]) for p in b) / len(b) for ch in range(c.shape[0])]
        mean_ref = [sum(float(r[ch, p // W, p % W]) for p in q) / len(q) for ch in range(r.shape[0])]
        total += inverse(weight, s01(mean_cur, mean_ref))
    return total


def paste_by_hand(cur, ref, weight):
    pairs = list(zip(MOVE.target_idx.tolist(), MOVE.source_idx.tolist()))
    total = 0.0
    for c, r in zip(cur, ref):
        total += inverse(weight, sum(s01(vec(c, p), vec(r, q)) for p, q in pairs) / len(pairs))
    return total


CASES = {
    "drag": (lambda c, r: energies.drag_edit(c, r, PP, DRAG_W),
             lambda c, r: drag_by_hand(c, r, PP, DRAG_W)),
    "landmarks": (lambda c, r: energies.drag_edit(c, r, PP, FACE_W, contrast=False),
                  lambda c, r: drag_by_hand(c, r, PP, FACE_W, contrast=False)),
    "content_mean": (lambda c, r: energies.region_content(c, r, KEEP, 6.0, reduce="mean"),
                     lambda c, r: content_by_hand(c, r, 6.0, "mean")),
    "content_sum": (lambda c, r: energies.region_content(c, r, KEEP, 5.0, reduce="sum"),
                    lambda c, r: content_by_hand(c, r, 5.0, "sum")),
    "appearance": (lambda c, r: energies.appearance_edit(c, r, BASE_REGION, REF_REGION, 3.5),
                   lambda c, r: appearance_by_hand(c, r, 3.5)),
    "paste": (lambda c, r: energies.paste_edit(c, r, MOVE.target_idx, MOVE.source_idx, 4.0),
              lambda c, r: paste_by_hand(c, r, 4.0)),
}


def test_fixture_geometry_is_as_intended():
    assert [len(ix) for ix in PP.contrast] == [3, 9, 5]
    assert MOVE.target_idx.numel() == OBJECT.sum() == 6
    assert sorted(MOVE.target_idx.tolist()) == [12, 13, 14, 22, 23, 24]


@pytest.mark.parametrize("name", list(CASES))
def test_energy_equals_hand_computed_spec_formula(name):
    fn, by_hand = CASES[name]
    cur = feats(10)
    ref = feats(11, base=cur)
    got = fn(cur, ref)
    assert got.dim() == 0 and torch.isfinite(got)
    assert float(got) == pytest.approx(by_hand(cur, ref), rel=1e-9)


def test_landmarks_drop_exactly_the_contrast_term():
    cur = feats(12)
    ref = feats(13, base=cur)
    with_contrast = float(energies.drag_edit(cur, ref, PP, DRAG_W))
    without = float(energies.drag_edit(cur, ref, PP, DRAG_W, contrast=False))
    contrast_part = sum(DRAG_W.inpaint * sum(s01(vec(c, p), vec(r, p)) for p in ix.tolist()) / len(ix)
                        for c, r in zip(cur, ref) for ix in PP.contrast) / (len(cur) * len(PP.contrast))
    assert contrast_part > 0
    assert with_contrast - without == pytest.approx(contrast_part, rel=1e-9)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_central_finite_differences(name):
    fn, _ = CASES[name]
    base = feats(20)
    ref = feats(21, base=base)
    cur = [f.clone().requires_grad_(True) for f in base]
    grads = torch.autograd.grad(fn(cur, ref).double(), cur)
    g = torch.Generator().manual_seed(22)
    directions = [torch.randn(f.shape, generator=g, dtype=torch.float64) for f in base]
    h = 1e-5
    plus = fn([f + h * d for f, d in zip(base, directions)], ref).double()
    minus = fn([f - h * d for f, d in zip(base, directions)], ref).double()
    numeric = float((plus - minus) / (2 * h))
    analytic = float(sum((gr * d).sum() for gr, d in zip(grads, directions)))
    assert abs(analytic) > 1e-8  # the energy really depends on the current features
    assert abs(numeric - analytic) <= 0.01 * abs(analytic), (numeric, analytic)
    # per layer too: each layer's gradient is right on its own
    for i in range(len(base)):
        shifted = [[f + (s * h * directions[i] if j == i else 0) for j, f in enumerate(base)] for s in (1, -1)]
        num_i = float((fn(shifted[0], ref).double() - fn(shifted[1], ref).double()) / (2 * h))
        ana_i = float((grads[i] * directions[i]).sum())
        assert abs(num_i - ana_i) <= 0.01 * abs(ana_i), (i, num_i, ana_i)


def test_handle_less_than_one_cell_from_target_is_finite():
    """Q15: P_h minus P_t is empty; the official mean over it is NaN. Here the term is skipped."""
    pp = point_patches([(3.2, 4.7, 3.9, 4.1), (2.3, 2.8, 2.6, 3.1)])  # pair 0: same cell (3, 4) after flooring
    assert pp.contrast[0].numel() == 0 and torch.equal(pp.handle[0], pp.target[0])
    assert pp.contrast[1].numel() == 3
    base = feats(30)
    ref = feats(31, base=base)
    cur = [f.clone().requires_grad_(True) for f in base]
    e = energies.drag_edit(cur, ref, pp, DRAG_W)
    grads = torch.autograd.grad(e, cur)
    assert torch.isfinite(e)
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)
    # the empty pair contributes its edit term only, exactly as the spec formula with that term skipped
    assert float(e.detach()) == pytest.approx(drag_by_hand(base, ref, pp, DRAG_W), rel=1e-9)
    single = point_patches([(3.2, 4.7, 3.9, 4.1)])
    e1 = energies.drag_edit(base, ref, single, DRAG_W)
    assert float(e1) == pytest.approx(float(energies.drag_edit(base, ref, single, DRAG_W, contrast=False)), rel=1e-12)
