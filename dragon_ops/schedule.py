"""The DDIM time grid on ComfyUI's own ``model_sampling``.

DragonDiffusion samples with diffusers' DDIM (1000 training steps, "leading"
spacing, ``steps_offset=1``, ``set_alpha_to_one=False``): with N steps the
timesteps are t_i = (N-1-i)*(1000//N) + 1, i.e. 981, 961, ..., 1 for N=50,
and the step after the last lands on alpha_bar[0] (quirk Q22).

Everything here works in ComfyUI's sigma space, x = z / sqrt(alpha_bar) with
sigma^2 = (1 - alpha_bar) / alpha_bar, where a DDIM step (eta = 0) reads
x_next = x0_hat + sigma_next * eps_hat.
"""
from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class DdimSchedule:
    """N DDIM steps: ``timesteps[i]`` is t_i; ``sigmas[i]`` its sigma; ``sigma_final`` = sigma(t=0)."""

    timesteps: tuple[int, ...]
    sigmas: tuple[float, ...]
    sigma_final: float

    @property
    def steps(self) -> int:
        return len(self.timesteps)

    def sampling_sigmas(self, start_step: int = 0, stride: int = 1) -> torch.Tensor:
        """Decreasing sigma ladder for steps start_step, start_step + stride, .. < N, ending at sigma_final."""
        return torch.tensor(self.sigmas[start_step::stride] + (self.sigma_final,), dtype=torch.float32)

    def inversion_sigmas(self) -> torch.Tensor:
        """Increasing ladder of the inversion latents L[0..N]: L[k] sits at ``inversion_sigmas()[k]``."""
        return self.sampling_sigmas().flip(0)

    def as_dict(self) -> dict:
        return {"timesteps": list(self.timesteps), "sigmas": list(self.sigmas), "sigma_final": self.sigma_final}


def ddim_timesteps(steps: int, train_steps: int = 1000) -> tuple[int, ...]:
    """diffusers' DDIM "leading" timesteps with steps_offset=1 (981..1 for 50 of 1000)."""
    if not 2 <= steps <= train_steps:
        raise ValueError(f"steps must be in 2..{train_steps}, got {steps}")
    ratio = train_steps // steps
    return tuple((steps - 1 - i) * ratio + 1 for i in range(steps))


def ddim_schedule(model_sampling, steps: int) -> DdimSchedule:
    """Build the schedule from a discrete ComfyUI ``model_sampling`` (eps or v prediction)."""
    train_steps = int(model_sampling.sigmas.shape[0])
    ts = ddim_timesteps(steps, train_steps)
    sig = model_sampling.sigma(torch.tensor(ts, dtype=torch.float32)).float().cpu()
    final = float(model_sampling.sigma(torch.tensor(0.0)).float())
    return DdimSchedule(ts, tuple(float(s) for s in sig), final)
