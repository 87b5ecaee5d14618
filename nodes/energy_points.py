"""DragonEnergyDrag (content dragging) and DragonEnergyLandmarks (face landmarks): point-pair energies."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..dragon_ops import energies, geometry, points
from ..dragon_ops.paper import MODES
from ..dragon_ops.term_drag import drag_term
from ..dragon_ops.term_landmarks import landmarks_term
from .common import (
    EDITS,
    InputError,
    MemoryBank,
    chain,
    check_banks,
    check_finite,
    check_points,
    energy_input,
    energy_output,
    mask_2d,
    search_words,
)

PoseKeypoint = io.Custom("POSE_KEYPOINT")


def _pairs(text: str, name: str):
    try:
        return points.parse_pairs(text)
    except ValueError as e:
        raise InputError(f"{name}: {e}") from e


class DragonEnergyDrag(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonEnergyDrag",
            display_name="Dragon Energy: Point Drag",
            category=EDITS,
            **search_words("drag points", "drag edit", "DragGAN"),
            description=(
                "Adds a content-dragging term: the content at each handle point moves to its target point, only "
                "inside the editable region. 3x3-patch feature correspondence on the decoder features "
                "(DragonDiffusion's drag mode); the rest of the image is held by E_content."),
            inputs=[
                MemoryBank.Input("bank", tooltip="The image's memory bank."),
                io.Mask.Input("mask", tooltip="Editable region, at the image's resolution (points are in this "
                              "mask's pixels). Everything outside it is kept."),
                io.String.Input("points", default="[]", multiline=True, tooltip="Handle->target pairs in image "
                                "pixels: [[hx, hy, tx, ty], ...], or alternating points as KJNodes' PointsEditor "
                                "writes them ([{\"x\":..,\"y\":..}, ...]: handle, target, handle, ...)."),
                io.Float.Input("w_edit", default=MODES["drag"].weights["w_edit"], min=0.0, max=100.0, step=0.1,
                               tooltip="Weight of E_edit."),
                io.Float.Input("w_content", default=MODES["drag"].weights["w_content"], min=0.0, max=100.0, step=0.1,
                               tooltip="Weight of E_content outside the editable region."),
                io.Float.Input("w_inpaint", default=MODES["drag"].weights["w_inpaint"], min=0.0, max=100.0, step=0.05,
                               tooltip="Contrast weight pushing each handle's old place away from its old look."),
                energy_input(),
            ],
            outputs=[energy_output()],
        )

    @classmethod
    def execute(cls, *, bank, mask, points, w_edit, w_content, w_inpaint, energy=None) -> io.NodeOutput:
        check_banks(bank=bank)
        edit = chain(energy)
        check_finite(w_edit=w_edit, w_content=w_content, w_inpaint=w_inpaint)
        h, w = bank.latent_shape[-2:]
        m = mask_2d(mask, "mask", (h, w))
        pairs = _pairs(points, "points")
        check_points(pairs, (m.shape[1], m.shape[0]), "points")
        editable = geometry.resize_mask(m, geometry.matching_shape((h, w)))
        if not bool(editable.any()):
            raise InputError("mask: the editable region is empty; paint the area the drag may change.")
        term = drag_term(bank, editable, pairs, m.shape[1] / editable.shape[1],
                         energies.DragWeights(w_edit, w_content, w_inpaint))
        return io.NodeOutput(edit.then(term), ui=ui.PreviewText(f"drag: {len(pairs)} point pairs"))


class DragonEnergyLandmarks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DragonEnergyLandmarks",
            display_name="Dragon Energy: Face Landmarks",
            category=EDITS,
            **search_words("face landmarks", "face edit", "expression"),
            description=(
                "Adds a face-landmark term: landmark k of the source face moves to landmark k of the target "
                "(e.g. 68 points). Edit energy only, guidance over the whole image, global SDE noise in the "
                "DiffEditor preset. Points come as JSON or as POSE_KEYPOINT from a face detector node."),
            inputs=[
                MemoryBank.Input("bank", tooltip="The face image's memory bank."),
                io.String.Input("source_points", default="", multiline=True, tooltip="Landmarks of this face: "
                                "JSON [[x, y], ...] in image pixels. Ignored when source_pose is connected."),
                io.String.Input("target_points", default="", multiline=True, tooltip="Where each landmark should "
                                "go, same count and order. Ignored when target_pose is connected."),
                io.Float.Input("w_edit", default=MODES["landmarks"].weights["w_edit"], min=0.0, max=100.0, step=0.5,
                               tooltip="Weight of E_edit."),
                PoseKeypoint.Input("source_pose", optional=True, tooltip="POSE_KEYPOINT with face keypoints "
                                   "of this face (ControlNet-aux OpenPose/DWPose)."),
                PoseKeypoint.Input("target_pose", optional=True, tooltip="POSE_KEYPOINT of the target face."),
                io.Image.Input("image", optional=True, tooltip="The edited image, to place pixel coordinates "
                               "(not needed with POSE_KEYPOINT, which carries its canvas size)."),
                energy_input(),
            ],
            outputs=[energy_output()],
        )

    @classmethod
    def execute(cls, *, bank, source_points, target_points, w_edit, source_pose=None, target_pose=None,
                image=None, energy=None) -> io.NodeOutput:
        check_banks(bank=bank)
        edit = chain(energy)
        check_finite(w_edit=w_edit)
        size = None if image is None else (int(image.shape[2]), int(image.shape[1]))
        lists, names = [], []
        for end, text, pose in (("source", source_points, source_pose), ("target", target_points, target_pose)):
            names.append(f"{end}_{'pose' if pose is not None else 'points'}")
            try:
                if pose is not None:
                    pts, canvas = points.pose_face_points(pose)
                    size = size or canvas
                else:
                    pts = points.parse_points(text)
            except ValueError as e:
                raise InputError(f"{names[-1]}: {e}") from e
            lists.append(pts)
        if len(lists[0]) != len(lists[1]) or not lists[0]:
            raise InputError(f"{names[1]}: has {len(lists[1])} points but {names[0]} has {len(lists[0])}; "
                             "landmark k moves to landmark k, so the counts must match.")
        if not size or not all(size):
            raise InputError("image: connect the edited image so landmark pixels can be placed.")
        h, w = bank.latent_shape[-2:]
        pairs = [(*a, *b) for a, b in zip(lists[0], lists[1])]
        check_points(pairs, size, *names)
        term = landmarks_term(bank, pairs, size[0] / geometry.matching_shape((h, w))[1], w_edit)
        return io.NodeOutput(edit.then(term), ui=ui.PreviewText(f"landmarks: {len(pairs)} pairs"))
