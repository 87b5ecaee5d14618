"""The conformance cases: one edit per mode of the official demo, each run by the official code and by the pack.

Plain Python and numpy only: both sides import this file (the official side in its own venv, the pack side in the
pack's). Images are 8 x latent pixels a side, so every input is in image pixels as the official demo takes it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

STEPS = 50
SCALE = 0.18215  # SD1.5's latent scale factor (the official code multiplies the VAE mean by it)
WEIGHTS_SEED = 0


@dataclasses.dataclass(frozen=True)
class Case:
    """One edit. ``mode`` is the official demo's (move, drag, landmark, appearance, paste); the rest its inputs."""

    name: str
    mode: str
    alg: str  # 'D' (the pack's DragonDiffusion preset) or 'D+' (DiffEditor)
    latent: int = 16  # latent side; the image is 8x that
    width: str = "tiny"  # tiny (channels 32) or full (SD1.5's 320/640/1280/1280)
    steps: tuple[int, ...] = tuple(range(STEPS))  # the teacher-forced steps (the official edit stops after the last)
    rect: tuple[int, int, int, int] = (16, 16, 48, 48)  # the object's mask (x0, y0, x1, y1), image pixels
    dx: int = 32
    dy: int = 16
    scale: float = 1.0
    points: tuple[tuple[int, int, int, int], ...] = ()  # drag / landmark pairs (hx, hy, tx, ty), image pixels
    seed: int = 1  # latents, prompt embeddings and the regional SDE noise
    deviations: tuple[str, ...] = ()  # the pack's deliberate deviations this case meets (DEVIATIONS)

    @property
    def image(self) -> int:
        return 8 * self.latent

    @property
    def two_images(self) -> bool:
        return self.mode in ("appearance", "paste")


# The paper's per-mode values, as the official demo takes them: energy (x 1000 = lambda), CFG, the regional SDE
# strength and the energies' weights. The pack's defaults are the same numbers (dragon_ops/paper.py).
MODE_ARGS = {
    "move": dict(energy=0.5, cfg=4.0, sde=0.4, w=dict(w_edit=4.0, w_content=6.0, w_contrast=0.2, w_inpaint=0.8)),
    "drag": dict(energy=2.0, cfg=4.0, sde=0.4, w=dict(w_edit=4.0, w_content=6.0, w_inpaint=0.2)),
    "landmark": dict(energy=3.0, cfg=4.0, sde=0.2, w=dict(w_edit=12.0, w_inpaint=0.2)),
    "appearance": dict(energy=2.0, cfg=5.0, sde=0.4, w=dict(w_edit=3.5, w_content=5.0)),
    "paste": dict(energy=1.5, cfg=4.0, sde=0.4, w=dict(w_edit=4.0, w_content=6.0)),
}

DRAG_POINTS = ((40, 40, 64, 48), (88, 80, 80, 100))
LANDMARKS = ((36, 40, 40, 36), (88, 40, 84, 44), (64, 64, 64, 70), (48, 92, 44, 96), (80, 92, 84, 88))


@dataclasses.dataclass(frozen=True)
class Deviation:
    """A difference the pack keeps on purpose. ``excuses``: stages it may make differ (the table still shows
    them). The harness converts the others (pack_side.py) and reports their unconverted error."""

    what: str
    excuses: tuple[str, ...] = ()


DEVIATIONS = {
    "resize": Deviation("a resize scales about the object's own centre, and offsets that are not whole cells round "
                        "to the nearest cell on both grids (official: about the image centre, offsets floored on "
                        "the matching grid and truncated on the latent grid, so mask and latent can disagree)",
                        excuses=("masks", "start")),
    "drag start": Deviation("drag's start latent copies each handle patch from the unedited latent (official: an "
                            "in-place copy, so a handle patch that overlaps an earlier target patch copies "
                            "already-copied cells)", excuses=("start",)),
    "drag reference": Deviation("drag's step-0 reference features read the inverted x_T (official: the in-place "
                                "patch copy also writes into the inversion list's last latent, which step 0 reads "
                                "as its reference)"),
    "landmark D direction": Deviation("landmarks under the DragonDiffusion preset (alg D) take plain DDIM steps "
                                      "(official: at steps 11-19 its landmark eta of 0.2 shrinks the DDIM direction "
                                      "by the SDE variance although alg D adds no noise)"),
}


def _both(name: str, d_only: tuple[str, ...] = (), **kw) -> list[Case]:
    dev = kw.pop("deviations", ())
    return [Case(f"{name} {alg}", alg=alg, deviations=dev + (d_only if alg == "D" else ()), **kw)
            for alg in ("D", "D+")]


CASES: list[Case] = [
    *_both("move", mode="move"),
    *_both("resize 1.25x", mode="move", rect=(40, 40, 72, 72), dx=8, dy=8, scale=1.25, deviations=("resize",)),
    *_both("resize 0.75x", mode="move", rect=(32, 24, 80, 72), dx=-8, dy=16, scale=0.75, deviations=("resize",)),
    *_both("appearance", mode="appearance", rect=(32, 32, 88, 80)),
    *_both("paste", mode="paste", rect=(16, 24, 56, 64), dx=48, dy=40),
    *_both("drag", mode="drag", rect=(24, 24, 112, 112), points=DRAG_POINTS,
           deviations=("drag start", "drag reference")),
    *_both("landmarks", mode="landmark", points=LANDMARKS, d_only=("landmark D direction",)),
]
# SD1.5's full width at a 16x16 latent, for a few steps covering each stage of a step: guidance without (0) and
# with (5) bank attention, the regional SDE (12) and time travel (22). Width enters through head sizes and
# GroupNorm groups, alike in every mode, so one mode runs.
FULL: list[Case] = [
    Case("full-width move D+", mode="move", alg="D+", width="full", steps=(0, 5, 12, 22)),
]


def by_name(name: str) -> Case:
    for case in CASES + FULL:
        if case.name == name:
            return case
    raise KeyError(name)


def rect_mask(case: Case, rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """uint8 (H, W) mask, 255 inside the rectangle."""
    x0, y0, x1, y1 = rect or case.rect
    m = np.zeros((case.image, case.image), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


REFERENCE_RECT = (48, 16, 112, 64)  # appearance: the object on the reference image (another place and shape)


def key(*parts) -> str:
    """A flat tensor name for the exchange files."""
    return "/".join(str(p) for p in parts)
