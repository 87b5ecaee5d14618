"""One DDIM step in ComfyUI's sigma space, with the paper's guidance and regional SDE noise (spec 1.2, 6.0-6.2).

In sigma space x = z / sqrt(a), a = alpha_bar = 1 / (1 + sigma^2), the official VP formulas

    x0_hat  = (z_t - sqrt(1 - a_t) (eps + g)) / sqrt(a_t)                      # g enters only here (Q7)
    z_prev  = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - s^2) eps + s n          # s = eta * DDPM posterior std

read x0 = x - sigma (eps + g) and x_prev = x0 + sqrt((1 - a_prev - s^2) / a_prev) eps + s / sqrt(a_prev) n.
With s = 0 that is x_prev = x0 + sigma_prev eps, which also serves the inversion step (sigma_to > sigma) and
time travel's deterministic re-noise (spec 6.2), each with g = 0.
"""
from __future__ import annotations

import torch


def alpha_bar(sigma: float) -> float:
    """a = 1 / (1 + sigma^2), the VP signal level of sigma."""
    return 1.0 / (1.0 + sigma * sigma)


def step(x: torch.Tensor, sigma: float, sigma_to: float, eps: torch.Tensor, g: torch.Tensor | float = 0.0):
    """Deterministic DDIM from sigma to sigma_to; the guidance g shifts only x0_hat. Returns (x0_hat, x_to)."""
    x0 = x - sigma * (eps + g)
    return x0, x0 + sigma_to * eps


def posterior_std(sigma: float, sigma_to: float) -> float:
    """The DDPM posterior std sqrt((1 - a_prev) / (1 - a_t) (1 - a_t / a_prev)) (spec 6.1, diffusers' variance)."""
    a_t, a_prev = alpha_bar(sigma), alpha_bar(sigma_to)
    return ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5


def sde_step(x0: torch.Tensor, eps: torch.Tensor, sigma_to: float, s: torch.Tensor, noise: torch.Tensor):
    """The regional SDE's x_prev for per-pixel noise std ``s`` (VP units) and a standard normal ``noise``."""
    a_prev = alpha_bar(sigma_to)
    return x0 + ((1 - a_prev - s * s).clamp_min(0) / a_prev).sqrt() * eps + s / a_prev ** 0.5 * noise
