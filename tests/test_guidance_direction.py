"""Issue 17: guidance descends. In every mode, on the tiny random SD1.5 architecture, the gradient the sampler
applies at its first guided step lowers E_edit, by the amount its first-order prediction gives; and the backward
passes the sampler reports are the ones the terms need (one per guided step for a landmarks-only edit)."""
import pytest
import torch
from test_modes import appearance, drag, landmarks, paste

from dragon_drag_edit.dragon_ops import guidance, passes, presets
from dragon_drag_edit.dragon_ops.ddim import alpha_bar
from dragon_drag_edit.dragon_ops.edit import compose

from dd_edit import box_mask, invert, move_energy, sample

STEPS = 6
# The sampler's whole step is checked at 1 % of the paper's strength: at full strength the tiny random UNet is
# overshot in three modes (E_edit measured 77 -> 95 for move, 94.6 -> 95.3 for drag, 313 -> 430 for landmarks;
# appearance 172 -> 153 and paste 144.3 -> 144.2 still descend). The first-order check runs at full strength.
SCALE = 0.01
RUN = {"guidance_until": 2, "bank_start_step": 1}


@pytest.fixture(scope="module")
def banks(tiny_sd15):
    def bank(seed):
        return invert(tiny_sd15, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)), STEPS)[1]
    return bank(0), bank(1)


def energy_of(mode, bank, ref):
    obj, ref_obj = box_mask(64, 64, 16, 36, 12, 32), box_mask(64, 64, 8, 32, 8, 32)
    return {"move": lambda: move_energy(bank, obj, dx=16, dy=8),
            "drag": lambda: drag(bank, "[[20, 24, 36, 30], [28, 20, 40, 20]]", mask=box_mask(64, 64, 8, 48, 8, 56)),
            "landmarks": lambda: landmarks(bank, "[[20, 20], [40, 24], [30, 44]]", "[[24, 22], [44, 28], [30, 48]]"),
            "appearance": lambda: appearance(bank, ref, obj, ref_obj),
            "paste": lambda: paste(bank, ref, ref_obj)}[mode]()


def e_edit(features, energy, z, sigma) -> float:
    with torch.no_grad():
        cur = features(z * (1 + sigma * sigma) ** 0.5)
        return float(energy([f[0] for f in cur])[0])


def measure_first_guidance(monkeypatch, sigma_prev: float) -> dict:
    """At the sampler's first guided step, with its real features and energies (the UNet is loaded only while
    it samples): E_edit at z, a step of 0.1 % of |z| along -g with its first-order prediction, and the step the
    sampler takes at SCALE times the paper's strength."""
    seen, real = {}, guidance.energy_gradient

    def recorder(features, energy, z, sigma, region):
        g, backwards = real(features, energy, z, sigma, region)
        if not seen:
            edit_grad, _ = real(features, energy, z, sigma, torch.ones_like(region))  # E_edit's own gradient
            h = 1e-3 * float(z.norm() / g.norm())
            # spec 6.0: the guidance moves the latent by -sqrt(a_prev / a_t) sqrt(1 - a_t) g
            k = (alpha_bar(sigma_prev) / alpha_bar(sigma)) ** 0.5 * (1 - alpha_bar(sigma)) ** 0.5
            seen.update(e0=e_edit(features, energy, z, sigma), predicted=h * float((edit_grad * g).sum()),
                        small=e_edit(features, energy, z - h * g, sigma),
                        step=e_edit(features, energy, z - SCALE * k * g, sigma))
        return g, backwards

    monkeypatch.setattr(guidance, "energy_gradient", recorder)
    return seen


@pytest.mark.parametrize("mode", ["move", "drag", "landmarks", "appearance", "paste"])
def test_the_applied_gradient_lowers_e_edit(tiny_sd15, banks, monkeypatch, mode):
    bank, ref = banks
    seen = measure_first_guidance(monkeypatch, bank.schedule.sigmas[1])
    sample(tiny_sd15, bank, energy_of(mode, bank, ref), **RUN)
    measured = seen["e0"] - seen["small"]
    assert seen["predicted"] > 0 and 0.8 < measured / seen["predicted"] < 1.2, seen
    assert seen["step"] < seen["e0"], seen


@pytest.mark.parametrize("mode, per_step", [("landmarks", 1), ("move", 2), ("drag", 2), ("paste", 2)])
def test_backward_passes_follow_the_terms(tiny_sd15, banks, mode, per_step):
    bank, ref = banks
    energy = energy_of(mode, bank, ref)
    _, counts = sample(tiny_sd15, bank, energy, **RUN)
    plan = compose(energy, bank)
    assert plan.backwards_per_guidance == per_step
    steps = presets.StepPlan(presets.PRESETS["DragonDiffusion"], STEPS, 0, RUN["guidance_until"],
                             RUN["bank_start_step"], True)
    assert counts == passes.expected(steps, cfg_batch=2, banks=len(plan.banks),
                                     backwards_per_guidance=per_step).as_dict()
    assert counts["backwards"] == per_step * RUN["guidance_until"]
