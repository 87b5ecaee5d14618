"""Issue 17: the sampler's update pinned to the official VP formulas (shared/design/algorithm.md 1.1, 1.2, 6.0-6.2).

Each official formula is written out here in VP space (z, alpha_bar) as the spec states it, with a fake denoiser
and a fake energy whose gradient is known in closed form, and compared with the pack's own functions: the
gradient (``guidance.energy_gradient``), the DDIM step (``ddim``) and the inversion loop
(``inversion.sample_ddim_inversion``), which the guided sampler and the inversion node run.
"""
import math

import torch

from dragon_drag_edit.dragon_ops import ddim, guidance, inversion


def sd15_alpha_bar(t: int) -> float:
    """alpha_bar of SD1.5's scaled_linear schedule (beta 0.00085 .. 0.012, 1000 steps), spec section 0."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return float(torch.cumprod(1 - betas, 0)[t]) if t >= 0 else float(1 - betas[0])


def sigma_of(a: float) -> float:
    return math.sqrt((1 - a) / a)


def fake_eps(z: torch.Tensor, t: float) -> torch.Tensor:
    """A fake noise prediction: any smooth function of the VP latent and the timestep."""
    return 0.6 * torch.tanh(z) + 0.001 * t * torch.sin(z)


G = torch.Generator().manual_seed(0)
Z = torch.randn(1, 4, 6, 6, generator=G, dtype=torch.float64)
C = torch.randn(1, 4, 6, 6, generator=G, dtype=torch.float64)
REGION = (torch.rand(6, 6, generator=G) > 0.5)
T, T_PREV = 761, 741  # sampling step i = 11 of 50


def test_the_schedule_constants_of_the_spec():
    assert round(sd15_alpha_bar(981), 5) == 0.00578 and round(sd15_alpha_bar(1), 4) == 0.9983  # section 0
    assert round(ddim.posterior_std(sigma_of(sd15_alpha_bar(761)), sigma_of(sd15_alpha_bar(741))), 3) == 0.384
    assert round(ddim.posterior_std(sigma_of(sd15_alpha_bar(601)), sigma_of(sd15_alpha_bar(581))), 3) == 0.330


def energy_gradient_of_known_energies(z: torch.Tensor, sigma: float):
    """E_edit = 3 <C, f> and E_content = |f|^2 / 2 of the feature f = x = z sqrt(1 + sigma^2): in VP space
    dE_edit/dz = 3 C s and dE_content/dz = z s^2 with s = sqrt(1 + sigma^2)."""
    g, backwards = guidance.energy_gradient(
        lambda x: [x], lambda cur: (3 * (C[0] * cur[0]).sum(), 0.5 * (cur[0] ** 2).sum()), z, sigma, REGION)
    s = math.sqrt(1 + sigma * sigma)
    return g, backwards, 3 * C * s, z * s * s


def test_guided_ddim_step_is_the_official_update():
    a_t, a_prev = sd15_alpha_bar(T), sd15_alpha_bar(T_PREV)
    sigma, sigma_prev = sigma_of(a_t), sigma_of(a_prev)
    eps = fake_eps(Z, T)
    g, backwards, grad_edit, grad_content = energy_gradient_of_known_energies(Z, sigma)
    # spec 6.0: g = dE_edit/dz (x) R + dE_content/dz (x) (1 - R), w.r.t. the VP latent z_t
    r = REGION.double()
    assert backwards == 2 and torch.allclose(g, grad_edit * r + grad_content * (1 - r), rtol=1e-12)
    # spec 1.2: x0_hat = (z_t - sqrt(1 - a_t)(eps + g)) / sqrt(a_t); z_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps
    x0_official = (Z - math.sqrt(1 - a_t) * (eps + g)) / math.sqrt(a_t)
    z_prev_official = math.sqrt(a_prev) * x0_official + math.sqrt(1 - a_prev) * eps
    x0, x_prev = ddim.step(Z / math.sqrt(a_t), sigma, sigma_prev, eps, g)
    assert torch.allclose(x0, x0_official, rtol=1e-10, atol=1e-12)
    assert torch.allclose(x_prev * math.sqrt(a_prev), z_prev_official, rtol=1e-10, atol=1e-12)
    # the guidance moves z_prev by -sqrt(a_prev / a_t) sqrt(1 - a_t) g (spec 6.0), nothing else
    _, x_plain = ddim.step(Z / math.sqrt(a_t), sigma, sigma_prev, eps)
    shift = (x_prev - x_plain) * math.sqrt(a_prev)
    assert torch.allclose(shift, -math.sqrt(a_prev / a_t) * math.sqrt(1 - a_t) * g, rtol=1e-10, atol=1e-12)


def test_regional_sde_step_is_the_official_update():
    a_t, a_prev = sd15_alpha_bar(T), sd15_alpha_bar(T_PREV)
    sigma, sigma_prev = sigma_of(a_t), sigma_of(a_prev)
    eps, n = fake_eps(Z, T), torch.randn(Z.shape, generator=G, dtype=torch.float64)
    x0_official = (Z - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
    std = math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
    eta_in, eta_out, m = 0.4, 0.1, REGION.double()

    def candidate(eta):  # spec 6.1: z^eta = sqrt(a_prev) x0 + sqrt(1 - a_prev - (eta sigma)^2) eps + eta sigma n
        return math.sqrt(a_prev) * x0_official + math.sqrt(1 - a_prev - (eta * std) ** 2) * eps + eta * std * n

    z_official = m * candidate(eta_in) + (1 - m) * candidate(eta_out)
    x0, _ = ddim.step(Z / math.sqrt(a_t), sigma, sigma_prev, eps)
    s = (eta_in * m + eta_out * (1 - m)) * ddim.posterior_std(sigma, sigma_prev)
    assert torch.allclose(ddim.sde_step(x0, eps, sigma_prev, s, n) * math.sqrt(a_prev), z_official, rtol=1e-10)


def test_time_travel_renoise_is_the_official_inversion_step():
    a_t, a_prev = sd15_alpha_bar(T), sd15_alpha_bar(T_PREV)
    z_prev = Z
    eps_back = fake_eps(z_prev, T_PREV)  # spec 6.2: eps' = eps_theta(z_{t-1}, t - 20), cond only
    x0 = (z_prev - math.sqrt(1 - a_prev) * eps_back) / math.sqrt(a_prev)
    z_t_official = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps_back
    x_t = ddim.step(z_prev / math.sqrt(a_prev), sigma_of(a_prev), sigma_of(a_t), eps_back)[1]
    assert torch.allclose(x_t * math.sqrt(a_t), z_t_official, rtol=1e-10)


def test_refine_0_inversion_is_the_official_next_step():
    """spec 1.1: eps = eps_theta(L[j], t); x0 = (L[j] - sqrt(1 - a_{t-20}) eps) / sqrt(a_{t-20});
    L[j+1] = sqrt(a_t) x0 + sqrt(1 - a_t) eps, through the pack's inversion loop with a fake denoiser."""
    ts = [1, 21, 41, 61]  # inversion runs up the ladder: L[k] sits at t_k, L[0] at alpha_bar_final
    alphas = [sd15_alpha_bar(-1)] + [sd15_alpha_bar(t) for t in ts]
    sigmas = torch.tensor([sigma_of(a) for a in alphas], dtype=torch.float64)
    t_of_sigma = {round(float(s), 9): t for s, t in zip(sigmas[1:], ts)}

    def denoiser(x, sigma, **_):  # sigma space: denoised = x - sigma eps(z, t)
        s = float(sigma[0])
        return x - s * fake_eps(x / math.sqrt(1 + s * s), t_of_sigma[round(s, 9)])

    latents = []
    inversion.sample_ddim_inversion(denoiser, Z * 1.0, sigmas, latents_out=latents, refine=0)
    z = Z  # L[0] in VP space: the clean latent itself, as the official code takes it (see the next test)
    for j, t in enumerate(ts):
        eps = fake_eps(z, t)
        x0 = (z - math.sqrt(1 - alphas[j]) * eps) / math.sqrt(alphas[j])
        z = math.sqrt(alphas[j + 1]) * x0 + math.sqrt(1 - alphas[j + 1]) * eps
        assert torch.allclose(latents[j + 1] * math.sqrt(alphas[j + 1]), z, rtol=1e-9, atol=1e-12), j


def test_the_clean_latent_is_z_at_alpha_bar_final_on_both_ends():
    """The official code takes the VAE latent as z at alpha_bar(t=0) = 0.99915 and decodes the last z as it is.
    The pack once took it as x at sigma_final, i.e. z = sqrt(0.99915) x: 4.25e-4 apart, 1.25e-2 after ten guided
    steps (conformance: docs/conformance.md). Pinned on both ends: the inversion's L[0] and a DDIM run's result."""
    from dragon_drag_edit.dragon_ops import generation

    s_final = sigma_of(sd15_alpha_bar(-1))
    sigmas = torch.tensor([s_final, sigma_of(sd15_alpha_bar(1))], dtype=torch.float64)
    latents = []
    inversion.sample_ddim_inversion(lambda x, sigma, **_: x, Z * 1.0, sigmas, latents_out=latents)
    assert torch.allclose(latents[0] / math.sqrt(1 + s_final ** 2), Z, rtol=1e-12)  # L[0] in VP space = input
    assert not torch.allclose(latents[0], Z, rtol=1e-5)  # the old convention (x = input) is 4.25e-4 away
    ladder = torch.tensor([sigma_of(sd15_alpha_bar(21)), s_final], dtype=torch.float64)
    out = generation.sample_ddim_recording(lambda x, sigma, **_: 0.5 * x, Z * 1.0, ladder,
                                           recorder=_NullRecorder(), latents_out=[])
    x_final = 0.5 * Z + s_final * (Z - 0.5 * Z) / float(ladder[0])  # x0 + sigma_final eps, eps = (x - den) / sigma
    assert torch.allclose(out, x_final / math.sqrt(1 + s_final ** 2), rtol=1e-12)  # returned as z, not x


class _NullRecorder:
    step = -1
