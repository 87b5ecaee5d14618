"""The pack side's energy terms for each case, built by the energy nodes from the case's inputs, and the masks they
make compared cell by cell with the official ones.

Where the pack deliberately computes another geometry than the official code (docs/conformance.md, deviations),
the masks stage reports the difference and the teacher-forced stages run the pack's term on the official geometry,
so that everything downstream of the geometry is still compared.
"""
from __future__ import annotations

import dataclasses
import json

import cases as C
import torch
import torch.nn.functional as F

from dragon_drag_edit.dragon_ops import geometry
from dragon_drag_edit.dragon_ops.edit import Edit
from dragon_drag_edit.nodes.energy_move import DragonEnergyMove
from dragon_drag_edit.nodes.energy_points import DragonEnergyDrag, DragonEnergyLandmarks
from dragon_drag_edit.nodes.energy_two_image import DragonEnergyAppearance, DragonEnergyPaste

# the order in which each official guidance hands its energies to torch.autograd.grad
ENERGY_ORDER = {"move": ("E_edit", "E_content"), "drag": ("E_edit", "E_content"), "landmark": ("E_edit",),
                "appearance": ("E_content", "E_edit"), "paste": ("E_content", "E_edit")}


def _mask(case: C.Case, rect=None) -> torch.Tensor:
    return torch.from_numpy(C.rect_mask(case, rect)).float()[None] / 255.0


def build(case: C.Case, banks: list, d: dict) -> tuple[Edit, Edit]:
    """The case's edit as the energy node builds it, and the edit the teacher-forced steps run: the same, or, where
    a resize's pairing differs (deviation "resize"), the pack's term on the official cells."""
    edit = _node_edit(case, banks)
    if "resize" in case.deviations and _pairs(edit.terms[0].grid) != _pairs(official_move(d)):
        return edit, Edit((dataclasses.replace(edit.terms[0], grid=official_move(d)),))
    return edit, edit


def _node_edit(case: C.Case, banks: list) -> Edit:
    w = C.MODE_ARGS[case.mode]["w"]
    if case.mode == "move":
        return DragonEnergyMove.execute(bank=banks[0], mask=_mask(case), dx=case.dx, dy=case.dy, scale=case.scale,
                                        arrow="", **w).args[0]
    if case.mode == "drag":
        return DragonEnergyDrag.execute(bank=banks[0], mask=_mask(case), points=json.dumps(case.points),
                                        **w).args[0]
    if case.mode == "landmark":
        src = json.dumps([[hx, hy] for hx, hy, _, _ in case.points])
        tgt = json.dumps([[tx, ty] for _, _, tx, ty in case.points])
        return DragonEnergyLandmarks.execute(bank=banks[0], source_points=src, target_points=tgt, w_edit=w["w_edit"],
                                             image=torch.zeros(1, case.image, case.image, 3)).args[0]
    if case.mode == "appearance":
        return DragonEnergyAppearance.execute(bank=banks[0], mask=_mask(case), reference_bank=banks[1],
                                              reference_mask=_mask(case, C.REFERENCE_RECT), **w).args[0]
    if case.mode == "paste":
        return DragonEnergyPaste.execute(bank=banks[0], reference_bank=banks[1], reference_mask=_mask(case),
                                         dx=case.dx, dy=case.dy, scale=case.scale, **w).args[0]
    raise ValueError(case.mode)


def _flat(m: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(m.flatten() > 0.5, as_tuple=True)[0]


def _pairs(mv: geometry.Move) -> tuple[list[int], list[int]]:
    return mv.target_idx.tolist(), mv.source_idx.tolist()


def official_move(d: dict) -> geometry.Move:
    """The official move's cells as a ``geometry.Move``: the target is ``mask_cur``; the k-th target cell (raster
    order) is compared with the k-th cell of ``mask_tar`` on the resized feature grid, which nearest resizing
    (``F.interpolate``, as the official code resizes the features) maps back to a cell of the matching grid."""
    cur, tar = d["mask/mask_cur"][0, 0] > 0.5, d["mask/mask_tar"][0, 0] > 0.5
    gh, gw = cur.shape
    index = torch.arange(gh * gw, dtype=torch.float64).view(1, 1, gh, gw)
    resized = F.interpolate(index, size=tar.shape, mode="nearest")[0, 0].flatten().long()
    source = (d["mask/mask_non_overlap"][0, 0] + d["mask/mask_overlap"][0, 0]) > 0.5
    return geometry.Move(source, cur, _flat(cur), resized[_flat(tar)])


def mask_differences(case: C.Case, edit: Edit, d: dict) -> int:
    """Cells (and pairings) where the pack's term differs from the official masks; 0 = the same geometry."""
    t = edit.terms[0]
    n = 0
    if case.mode == "move":
        off = official_move(d)
        n += int((t.grid.target != off.target).sum() + (t.grid.source != off.source).sum())
        n += int((t.grid.untouched != (d["mask/mask_other"][0, 0] > 0.5)).sum())
        n += 0 if _pairs(t.grid) == _pairs(off) else 1
    elif case.mode in ("drag", "landmark"):
        for k, (tgt, hdl) in enumerate(zip(d["mask/mask_cur"], d["mask/mask_tar"])):
            n += len(set(t.patches.target[k].tolist()) ^ set(_flat(tgt).tolist()))
            n += len(set(t.patches.handle[k].tolist()) ^ set(_flat(hdl).tolist()))
            if case.mode == "drag":
                n += len(set(t.patches.contrast[k].tolist()) ^ set(_flat((hdl > 0.5) & ~(tgt > 0.5)).tolist()))
        if case.mode == "drag":
            n += int(t.editable.eq(d["mask/mask_other"][0, 0] > 0.5).sum())
    elif case.mode == "appearance":
        n += int((t.target != (d["mask/mask_base_cur"][0, 0] > 0.5)).sum())
        n += int((t.source != (d["mask/mask_replace_cur"][0, 0] > 0.5)).sum())
    elif case.mode == "paste":
        n += int((t.target != (d["mask/mask_base_cur"][0, 0] > 0.5)).sum())
        n += 0 if _pairs(t.pairs) == (_flat(d["mask/mask_base_cur"]).tolist(),
                                      _flat(d["mask/mask_replace_cur"]).tolist()) else 1
    region = F.interpolate(_region(case, d)[None, None], size=t.bank.latent_shape[-2:])[0, 0] > 0
    if case.mode != "landmark":
        n += int((geometry.to_latent_grid(t.regions() if case.mode != "move" else t.grid.target) != region).sum())
    return n


def _region(case: C.Case, d: dict) -> torch.Tensor:
    """The official guidance's edit region before its resize to the latent grid."""
    if case.mode == "move":
        return d["mask/mask_cur"][0, 0]
    if case.mode == "drag":
        return d["mask/mask_x0"]
    return d["mask/mask_base_cur"][0, 0] if case.two_images else torch.ones(1, 1)


def energy_errors(case: C.Case, rec: dict, official: torch.Tensor, plan) -> dict[str, float]:
    """Relative error of each energy the official guidance handed to autograd (divided by lambda) against the
    pack's (divided by its strength, lambda x c_mode)."""
    strength = plan.edit.terms[0].strength
    pack = {"E_edit": float(rec["energies"][0]) / strength, "E_content": float(rec["energies"][1]) / strength}
    names = ENERGY_ORDER[case.mode]
    if len(official) != len(names):  # an energy on one side only
        return {name: float("inf") for name in names}
    return {name: abs(pack[name] - value) / max(abs(value), 1e-30) for name, value in zip(names, official.tolist())}
