"""Energy terms equal the spec's formulas (section 4.1) and their gradients match finite differences."""
import pytest
import torch

from dragon_drag_edit.dragon_ops import energies, geometry

W = energies.MoveWeights()


def feats(seed, c=(6, 5), size=(8, 8), base=None):
    """Random feature maps; with ``base``, correlated with it (positive cosines, as real features are)."""
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(ch, *size, generator=g, dtype=torch.float64) + 1.0 for ch in c]
    return out if base is None else [0.6 * o + b for o, b in zip(out, base)]


def cosine(a, b):
    return (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0))


@pytest.fixture
def mv():
    src = torch.zeros(8, 8, dtype=torch.bool)
    src[2:5, 1:4] = True
    return geometry.move(src, 1.0, 3.0)


def test_move_edit_is_the_spec_formula(mv):
    cur = feats(0)
    ref = feats(1, base=cur)
    expected = 0.0
    for c, r in zip(cur, ref):
        cf, rf = c.flatten(1), r.flatten(1)
        sim = torch.stack([cosine(cf[:, p], rf[:, q]) for p, q in zip(mv.target_idx, mv.source_idx)]).mean()
        expected += 0.5 * 4.0 / (1 + 4 * sim)  # raw cosine (Q9), gamma 0.5
    got = energies.move_edit(cur, ref, mv.target_idx, mv.source_idx, W)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_move_content_is_the_spec_formula(mv):
    cur = feats(2)
    ref = feats(3, base=cur)
    ref_region = mv.untouched.clone()
    ref_region[:, 6:] = False
    expected = 0.0
    for c, r in zip(cur, ref):
        cf, rf = c.flatten(1), r.flatten(1)
        u, v, rr = (m.flatten().nonzero()[:, 0] for m in (mv.untouched, mv.vacated, ref_region))
        expected += 0.5 * 6.0 / (1 + 4 * cosine(rf[:, u], cf[:, u]).mean())
        expected += 0.5 * 0.2 * ((1 + cosine(cf[:, v], rf[:, v])) / 2).mean()  # contrast, s01
        s = (1 + cosine(cf[:, v].mean(1, keepdim=True), rf[:, rr].mean(1, keepdim=True))) / 2
        expected += 1.0 * 0.8 / (1 + 4 * s[0])  # inpaint: mean features, no gamma (Q10)
    got = energies.move_content(cur, ref, mv.untouched, mv.vacated, ref_region, W)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("which", ["edit", "content"])
def test_gradients_match_finite_differences(mv, which):
    ref = feats(5)
    cur = [f.clone().requires_grad_(True) for f in feats(4)]

    def energy(fs):
        if which == "edit":
            return energies.move_edit(fs, ref, mv.target_idx, mv.source_idx, W).double()
        return energies.move_content(fs, ref, mv.untouched, mv.vacated, mv.untouched, W).double()

    (grad,) = torch.autograd.grad(energy(cur), cur[0])
    g = torch.Generator().manual_seed(9)
    direction = torch.randn(cur[0].shape, generator=g, dtype=torch.float64)
    h = 1e-4
    plus = energy([cur[0].detach() + h * direction, cur[1].detach()])
    minus = energy([cur[0].detach() - h * direction, cur[1].detach()])
    numeric = (plus - minus) / (2 * h)
    analytic = (grad * direction).sum()
    assert abs(float(numeric - analytic)) <= 0.01 * abs(float(analytic)), (float(numeric), float(analytic))


def test_empty_regions_are_a_no_op_not_nan():
    src = torch.zeros(8, 8, dtype=torch.bool)
    src[2:5, 2:5] = True
    same = geometry.move(src, 0.0, 0.0)  # nothing vacated
    cur, ref = feats(6), feats(7)
    e = energies.move_content(cur, ref, same.untouched, same.vacated, same.untouched, W)
    assert torch.isfinite(e)
    nothing = torch.zeros(0, dtype=torch.long)
    assert float(energies.move_edit(cur, ref, nothing, nothing, W)) == 0.0


def test_anti_correlated_features_stay_finite():
    src = torch.ones(4, 4, dtype=torch.bool)
    mv = geometry.move(src, 0.0, 0.0)
    cur = [f - 1.0 for f in feats(8, size=(4, 4))]
    ref = [-f for f in cur]  # cos = -1: 1 / (1 + 4 cos) would be negative/singular
    e = energies.move_edit(cur, ref, mv.target_idx, mv.source_idx, W)
    assert torch.isfinite(e) and float(e) == pytest.approx(2 * 0.5 * 4.0 / energies.DENOM_MIN)
