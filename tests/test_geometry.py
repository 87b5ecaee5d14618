"""Mask geometry of a move: exact placement at any size, scaling about the object's centre, no wrap-around."""
import pytest
import torch

from dragon_drag_edit.dragon_ops import geometry


def box(h, w, y0, y1, x0, x1):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize("h, w", [(8, 8), (16, 24), (40, 16), (64, 64)])
@pytest.mark.parametrize("dy, dx", [(2, 3), (-3, 1), (0, -4)])
def test_move_puts_the_target_exactly_there(h, w, dy, dx):
    src = box(h, w, 3, 6, 4, 7)
    mv = geometry.move(src, dy, dx)
    assert torch.equal(mv.target, box(h, w, 3 + dy, 6 + dy, 4 + dx, 7 + dx))
    # every target cell is paired with the source cell it came from
    tw = mv.target_idx % w - mv.source_idx % w
    th = mv.target_idx // w - mv.source_idx // w
    assert torch.all(tw == dx) and torch.all(th == dy)


def test_move_across_the_border_clips_and_never_wraps():
    src = box(16, 16, 4, 10, 10, 14)
    mv = geometry.move(src, 0, 5)
    assert torch.equal(mv.target, box(16, 16, 4, 10, 15, 16))  # only the column still inside
    assert not mv.target[:, :10].any()  # nothing wrapped to the left edge


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_scale_is_about_the_objects_centre(scale):
    src = box(32, 32, 8, 16, 12, 20)  # 8x8 object centred at (12, 16)
    mv = geometry.move(src, 0, 0, scale)
    side = round(8 * scale)
    assert int(mv.target.sum()) == side * side
    assert geometry.centroid(mv.target) == pytest.approx(geometry.centroid(src), abs=0.51)


def test_scaled_and_moved():
    src = box(32, 48, 8, 16, 12, 20)
    mv = geometry.move(src, 4, 10, 1.5)
    cy, cx = geometry.centroid(src)
    ty, tx = geometry.centroid(mv.target)
    assert (ty - cy, tx - cx) == pytest.approx((4, 10), abs=0.51)
    assert int(mv.target.sum()) == 144


def test_paste_copies_source_cells_to_the_target_and_leaves_the_input_alone():
    src = box(8, 8, 1, 3, 1, 3)
    mv = geometry.move(src, 4, 4)
    base = torch.arange(64.0).view(1, 1, 8, 8)
    before = base.clone()
    out = geometry.paste(base, base, mv)
    assert torch.equal(base, before)
    assert torch.equal(out[0, 0, 5:7, 5:7], base[0, 0, 1:3, 1:3])
    assert torch.equal(out[0, 0, 1:3, 1:3], base[0, 0, 1:3, 1:3])  # the source keeps its own noise


def test_resize_mask_and_latent_grid():
    mask = torch.zeros(64, 96)
    mask[16:48, 24:48] = 1.0
    grid = geometry.resize_mask(mask, (16, 24))
    assert torch.equal(grid, box(16, 24, 4, 12, 6, 12))
    assert torch.equal(geometry.to_latent_grid(grid), box(8, 12, 2, 6, 3, 6))


def test_fit_pairs_every_target_cell_with_a_source_cell_of_any_shape():
    disc = torch.zeros(12, 12, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    disc[(yy - 7.5) ** 2 + (xx - 6.5) ** 2 <= 12] = True
    tri = torch.zeros(12, 12, dtype=torch.bool)
    for r in range(4):
        tri[1 + r, 5 - r:6 + r] = True
    fit = geometry.fit(tri, disc)
    assert torch.equal(fit.target_idx, torch.nonzero(disc.flatten(), as_tuple=True)[0])
    assert tri.flatten()[fit.source_idx].all()  # every pair lands on the source object, none on its background
    same = geometry.fit(disc, disc)
    assert torch.equal(same.source_idx, same.target_idx)  # same shape and box: the identity
    with pytest.raises(ValueError):
        geometry.fit(torch.zeros(4, 4, dtype=torch.bool), disc[:4, :4])


def test_fit_stretches_the_box():
    src = box(8, 8, 0, 2, 0, 2)
    fit = geometry.fit(src, box(8, 8, 4, 8, 4, 8))  # 4x4 onto 2x2: each source cell serves a 2x2 block
    assert fit.source_idx.view(4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [8, 8, 9, 9], [8, 8, 9, 9]]


@pytest.mark.parametrize("amount", [0.0, 0.5, 1.0])
def test_shift_mean_moves_only_the_masked_mean(amount):
    g = torch.Generator().manual_seed(0)
    base, donor = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g) + 3
    target, source = box(8, 8, 1, 4, 1, 5), box(8, 8, 5, 8, 2, 6)
    before = base.clone()
    out = geometry.shift_mean(base, donor, target, source, amount)
    assert torch.equal(base, before)
    assert torch.equal(out[..., ~target], base[..., ~target])
    want = (1 - amount) * base[..., target].mean(-1) + amount * donor[..., source].mean(-1)
    assert torch.allclose(out[..., target].mean(-1), want, atol=1e-5)
    dev = out[..., target] - out[..., target].mean(-1, keepdim=True)  # the base's own pattern inside the mask
    assert torch.allclose(dev, base[..., target] - base[..., target].mean(-1, keepdim=True), atol=1e-5)
