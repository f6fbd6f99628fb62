"""Hyperparameter adaptation of the streaming mapper (used by `gp.GPMapper`).

* `BoundFit`: a kernel, the noise parameter and their optimiser, fitted by Adam on the
  collapsed variational bound of a sample set given inducing points. It touches nothing
  else, so the mapper can run it on copies in a worker thread
  (``GPMapperConfig.adapt_in_background``) while updates go on.
* `Adaptation`: one fit in flight and what applying it needs.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import torch
from torch import Tensor

from .kernels import Kernel


@dataclass
class BoundFit:
    """Hyperparameters (a kernel, the noise parameter and their Adam optimiser) fitted by
    maximising the collapsed variational bound (Titsias 2009) of a sample set, given
    inducing points; nothing else is touched, so it may run in another thread.

    The bound scores the sparse model actually used: hyperparameters whose structure the
    inducing points cannot carry (lengthscales below their spacing) pay the trace term
    instead of being fitted to the samples alone.
    """

    kernel: Kernel
    log_noise: torch.nn.Parameter
    optimizer: torch.optim.Optimizer
    jitter: float
    noise_floor: float
    stopped: bool = False   # set from another thread: stop at the next step

    def run(self, Z: Tensor, xy: Tensor, phi: Tensor, yn: Tensor, steps: int) -> None:
        """``steps`` Adam steps on the negative bound; stops early, keeping the last valid
        hyperparameters, where a factorisation fails or a value turns non-finite.

        Args:
            Z: [m] inducing points (the state at the belief's time). xy: [m] samples.
            phi: OU correlation of each sample with the belief's time (1: static).
            yn: normalised values.

        Shapes:
            Z: (M, 2), xy: (n, 2), phi: (n,), yn: (n,)
        """
        n = len(yn)
        eye = torch.eye(len(Z), dtype=torch.float64)
        floor2 = self.noise_floor ** 2
        params = [p for group in self.optimizer.param_groups for p in group['params']]
        for _ in range(steps):
            if self.stopped:
                break
            self.optimizer.zero_grad()
            EZ, EX = self.kernel.embed(Z), self.kernel.embed(xy)
            amp = self.kernel.amplitude
            Kzz = self.kernel.between(EZ, EZ) + self.jitter * amp * eye
            L, info = torch.linalg.cholesky_ex(Kzz)
            if info.item():
                break  # hyperparameters left the numerically valid region: keep these
            V = torch.linalg.solve_triangular(L, self.kernel.between(EZ, EX) * phi, upper=False)
            noise = floor2 + self.log_noise.exp()
            LB, info = torch.linalg.cholesky_ex(eye + V @ V.T / noise)
            if info.item():
                break
            c = torch.linalg.solve_triangular(LB, (V @ yn)[:, None], upper=False)[:, 0] / noise
            nll = 0.5 * (n * noise.log() + 2.0 * LB.diagonal().log().sum()
                         + (yn @ yn) / noise - c @ c
                         + (n * amp - (V * V).sum()) / noise) / n
            if not torch.isfinite(nll):
                break
            nll.backward()
            before = [p.detach().clone() for p in params]
            self.optimizer.step()
            if not all(torch.isfinite(p).all() for p in params):
                with torch.no_grad():
                    for p, b in zip(params, before):
                        p.copy_(b)
                break


@dataclass
class Adaptation:
    """An adaptation in flight: the fit on copies of the hyperparameters, the output
    normalisation (mean, scale) they are fitted in, the sample count that started it
    (where a snapshot or copy resumes) and the fit's completion."""

    fit: BoundFit
    mu: float
    scale: float
    point: float
    future: Future
