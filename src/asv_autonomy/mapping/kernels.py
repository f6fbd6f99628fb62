"""Covariance functions of the mapper: stationary RBF / Matern, the attentive kernel, and
the Ornstein-Uhlenbeck temporal factor.

Every spatial kernel splits evaluation into ``embed(x)`` (per-point features, cached by the
mapper for its inducing points) and ``between(e1, e2)`` (the covariance matrix of two
embedded sets); ``forward(x1, x2)`` is the composition. Inputs are ``map`` coordinates [m].
All kernels include their amplitude (signal variance) and are PSD by construction.

The attentive kernel (AK; Chen, Khardon & Liu, "Adaptive Informative Path Planning Using
an Attentive Kernel", 2022) is

    k(x, x') = s2 * (z(x) . z(x')) * sum_i w_i(x) w_i(x') rho_i(|x - x'|)

with ``rho_i`` RBFs of fixed relative lengthscales, ``w(x)`` the L2-normalised softmax of a
small network of the (normalised) position ("lengthscale selection") and ``z(x)`` a second
normalised softmax head ("instance selection": points with different memberships do not
correlate, which lets the map break at a step). Each term ``w_i(x) rho_i w_i(x')`` is an
RBF scaled by a function, hence PSD; sums and Schur products of PSD kernels are PSD, and
``k(x, x) = s2`` because ``|w| = |z| = 1``.

One departure from PyPolo's implementation, for speed: the fixed lengthscales form a
ladder of ratio 2, ``l_i = l_max / 2**i``, so ``rho_{i+1} = rho_i ** 4`` (two multiplies per
level instead of an exp: kernel evaluation dominates prediction cost). The ladder is
centred on the configured lengthscale [m] (PyPolo: fixed values for its unit square) and
not learned (a learned ladder slides away from the short lengthscales and the network
overfits); the mapper lifts it when its inducing resolution coarsens (`lift_ladder`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .fused import attentive_cross, prepare

KERNELS = ('attentive', 'rbf', 'matern32', 'matern52')


def squared_distance(x1: Tensor, x2: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances.

    Args:
        x1: points. x2: points.

    Returns:
        squared distances, clamped at 0.

    Shapes:
        x1: (n1, d), x2: (n2, d) -> (n1, n2)
    """
    d2 = (x1 * x1).sum(-1)[:, None] + (x2 * x2).sum(-1)[None, :] - 2.0 * (x1 @ x2.T)
    return d2.clamp_min(0.0)


def ou_correlation(dt: Tensor, timescale: float) -> Tensor:
    """Temporal factor of the separable space-time kernel: exp(-|dt| / timescale).

    The Ornstein-Uhlenbeck (Matern-1/2) correlation is the one temporal kernel with an
    exact first-order state-space form, which is what lets the mapper propagate its
    inducing-point belief between samples in O(M^2). ``timescale == 0`` means a static
    field (correlation 1).

    Args:
        dt: [s] time differences. timescale: [s] OU time constant, 0 = static.

    Shapes:
        dt: (...) -> (...)
    """
    if timescale == 0.0:
        return torch.ones_like(dt)
    return torch.exp(-dt.abs() / timescale)


class Kernel(torch.nn.Module):
    """Base class: amplitude (signal variance) and the embed/between split."""

    def __init__(self, amplitude: float):
        super().__init__()
        self.log_amplitude = torch.nn.Parameter(
            torch.tensor(math.log(amplitude), dtype=torch.float64))

    @property
    def amplitude(self) -> Tensor:
        """Signal variance s2 = k(x, x) (normalised output units squared)."""
        return self.log_amplitude.exp()

    def embed(self, x: Tensor) -> Tensor:
        """Per-point features; cached by callers for fixed point sets.

        Shapes:
            x: (n, 2) [m] -> (n, e)
        """
        raise NotImplementedError

    def between(self, e1: Tensor, e2: Tensor, out: Tensor | None = None) -> Tensor:
        """Covariance matrix of two embedded point sets.

        Args:
            out: without autograd, C-contiguous float64 storage for the result (a
                prediction loop reuses one buffer instead of allocating per chunk).

        Shapes:
            e1: (n1, e), e2: (n2, e), out: (n1, n2) -> (n1, n2)
        """
        raise NotImplementedError

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Covariance matrix k(x1, x2).

        Shapes:
            x1: (n1, 2) [m], x2: (n2, 2) [m] -> (n1, n2)
        """
        return self.between(self.embed(x1), self.embed(x2))

    def diag(self, n: int) -> Tensor:
        """k(x, x) for n points (all kernels here have constant variance).

        Shapes:
            -> (n,)
        """
        return self.amplitude.expand(n)

    def _longest(self) -> float:
        """[m] the ladder's longest lengthscale (`lengthscales`[0] without the tensor)."""
        return math.exp(float(self.log_lengthscale)) * 2.0 ** (self.num_lengthscales - 1)

    def set_input_normalization(self, center: Tensor, scale: float) -> None:
        """Hook for kernels with a network of the normalised position (no-op here)."""


class StationaryKernel(Kernel):
    """RBF or Matern (nu = 3/2, 5/2) kernel with one learned lengthscale [m]."""

    def __init__(self, kind: str, lengthscale: float, amplitude: float = 1.0):
        super().__init__(amplitude)
        if kind not in ('rbf', 'matern32', 'matern52'):
            raise ValueError(f'unknown stationary kernel {kind!r}')
        self.kind = kind
        self.log_lengthscale = torch.nn.Parameter(
            torch.tensor(math.log(lengthscale), dtype=torch.float64))

    @property
    def lengthscale(self) -> Tensor:
        """[m]"""
        return self.log_lengthscale.exp()

    def embed(self, x: Tensor) -> Tensor:
        """Positions in lengthscale units. Shapes: x: (n, 2) -> (n, 2)"""
        return x / self.lengthscale

    def between(self, e1: Tensor, e2: Tensor, out: Tensor | None = None) -> Tensor:
        """Shapes: e1: (n1, 2), e2: (n2, 2) -> (n1, n2)"""
        if out is not None and not torch.is_grad_enabled():
            return self._between_into(e1, e2, out)
        d2 = squared_distance(e1, e2)
        if self.kind == 'rbf':
            return self.amplitude * torch.exp(-0.5 * d2)
        # clamp keeps the gradient of sqrt finite at zero distance (it is multiplied by 0).
        r = d2.clamp_min(1e-30).sqrt()
        if self.kind == 'matern32':
            s = math.sqrt(3.0) * r
            return self.amplitude * (1.0 + s) * torch.exp(-s)
        s = math.sqrt(5.0) * r
        return self.amplitude * (1.0 + s + s * s / 3.0) * torch.exp(-s)

    def _between_into(self, e1: Tensor, e2: Tensor, out: Tensor) -> Tensor:
        """`between` without autograd, computed in place in ``out``."""
        d2 = torch.mm(e1, e2.T, out=out).mul_(-2.0)
        d2.add_((e1 * e1).sum(-1)[:, None]).add_((e2 * e2).sum(-1)).clamp_min_(0.0)
        if self.kind == 'rbf':
            return d2.mul_(-0.5).exp_().mul_(self.amplitude)
        s = d2.sqrt_().mul_(math.sqrt(3.0 if self.kind == 'matern32' else 5.0))
        decay = torch.exp(-s)
        if self.kind == 'matern32':
            return s.add_(1.0).mul_(decay).mul_(self.amplitude)
        square_third = torch.mul(s, s).div_(3.0)
        return s.add_(1.0).add_(square_third).mul_(decay).mul_(self.amplitude)


class AttentiveKernel(Kernel):
    """Attentive kernel with a ratio-2 lengthscale ladder (see the module docstring).

    Args:
        lengthscale: [m] shortest lengthscale of the ladder (fixed).
        num_lengthscales: L, number of ladder levels (longest = shortest * 2**(L-1)).
        hidden: width of the two hidden tanh layers.
        amplitude: initial signal variance.
        seed: initialisation of the network.
    """

    def __init__(self, lengthscale: float, num_lengthscales: int = 6, hidden: int = 16,
                 amplitude: float = 1.0, seed: int = 0):
        super().__init__(amplitude)
        self.num_lengthscales = num_lengthscales
        # Not learned, as in the paper (see the module docstring).
        self.register_buffer('log_lengthscale',
                             torch.tensor(math.log(lengthscale), dtype=torch.float64))
        generator = torch.Generator().manual_seed(seed)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(2, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh()).double()
        self.lengthscale_head = torch.nn.Linear(hidden, num_lengthscales).double()
        self.membership_head = torch.nn.Linear(hidden, num_lengthscales).double()
        with torch.no_grad():  # reproducible, independent of the global torch RNG
            for p in self.parameters():
                if p.dim() == 2:
                    bound = 1.0 / math.sqrt(p.shape[1])
                    p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype)
                            * 2 * bound - bound)
                elif p is not self.log_amplitude:
                    p.zero_()
        self.register_buffer('input_center', torch.zeros(2, dtype=torch.float64))
        self.register_buffer('input_scale', torch.ones((), dtype=torch.float64))
        prepare(num_lengthscales)   # compile the prediction kernels before any data arrive

    @property
    def lengthscales(self) -> Tensor:
        """[m] the ladder, longest first. Shapes: -> (L,)"""
        i = torch.arange(self.num_lengthscales, dtype=torch.float64)
        return self.log_lengthscale.exp() * 2.0 ** (self.num_lengthscales - 1 - i)

    def set_input_normalization(self, center: Tensor, scale: float) -> None:
        """Re-centre/re-scale the network input without changing the kernel function.

        The first layer sees (x - center) / scale; its weights are transformed so that
        the network computes the same function of x [m], only the optimiser's coordinates
        change (the surveyed area grows, the normalisation follows it).
        """
        with torch.no_grad():
            layer = self.trunk[0]
            old_center, old_scale = self.input_center.clone(), self.input_scale.clone()
            # W (x - c_old)/s_old = W' (x - c_new)/s_new + (b' - b)
            layer.bias += layer.weight @ ((center - old_center) / old_scale)
            layer.weight *= scale / old_scale
            self.input_center.copy_(center)
            self.input_scale.fill_(scale)

    def attention(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Lengthscale weights w(x) and memberships z(x), each L2-normalised.

        Shapes:
            x: (n, 2) [m] -> (n, L), (n, L)
        """
        if not torch.is_grad_enabled():
            return self._attention_numpy(x)
        h = self.trunk((x - self.input_center) / self.input_scale)
        w = torch.softmax(self.lengthscale_head(h), dim=-1)
        z = torch.softmax(self.membership_head(h), dim=-1)
        return w / w.norm(dim=-1, keepdim=True), z / z.norm(dim=-1, keepdim=True)

    def _attention_numpy(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`attention` without autograd, in numpy: its SIMD tanh / exp are ~3x torch's
        float64 ones on this CPU and the layers are too small for torch's dispatch (10,000
        points: ~2.5 ms instead of ~7). A softmax L2-normalised is exp(a - max a) / |.|."""
        h = (x - self.input_center) / self.input_scale
        for layer in self.trunk:  # the layers' products in torch: numpy's BLAS stays idle
            if isinstance(layer, torch.nn.Linear):
                h = torch.addmm(layer.bias, h, layer.weight.T)
            else:
                np.tanh(h.numpy(), out=h.numpy())
        heads = (self.lengthscale_head, self.membership_head)
        logits = torch.addmm(torch.cat([head.bias for head in heads]), h,
                             torch.cat([head.weight for head in heads]).T)
        logits = logits.view(len(h), 2, self.num_lengthscales)
        logits -= logits.amax(dim=2, keepdim=True)
        np.exp(logits.numpy(), out=logits.numpy())
        logits /= torch.linalg.vector_norm(logits, dim=2, keepdim=True)
        return logits[:, 0], logits[:, 1]

    def lift_ladder(self, shortest: float) -> bool:
        """Shift the ladder up so that its shortest level is at least ``shortest`` [m].

        Returns:
            whether the kernel changed.
        """
        if math.log(shortest) <= float(self.log_lengthscale):
            return False
        self.log_lengthscale.fill_(math.log(shortest))
        return True

    def embed(self, x: Tensor) -> Tensor:
        """[x - c, w(x), z(x)] (centred: exact distances far from the origin).

        Shapes: x: (n, 2) -> (n, 2 + 2L)
        """
        w, z = self.attention(x)
        return torch.cat([x - self.input_center, w, z], dim=-1)

    def between(self, e1: Tensor, e2: Tensor, out: Tensor | None = None) -> Tensor:
        """Shapes: e1: (n1, 2 + 2L), e2: (n2, 2 + 2L) -> (n1, n2)"""
        L = self.num_lengthscales
        if not torch.is_grad_enabled():  # prediction: one compiled pass (`fused`)
            a1, a2 = e1.detach().numpy(), e2.detach().numpy()
            return torch.from_numpy(attentive_cross(
                a1[:, :2], a1[:, 2:2 + L], a1[:, 2 + L:], a2[:, :2], a2[:, 2:2 + L],
                a2[:, 2 + L:], self._longest(), math.exp(float(self.log_amplitude)),
                None if out is None else out.numpy()))
        w1, w2 = e1[:, 2:2 + L].T, e2[:, 2:2 + L].T  # (L, n)
        members = e1[:, 2 + L:] @ e2[:, 2 + L:].T
        # Gradients reach the attention weights, memberships and amplitude only: the
        # positions are data and the ladder a buffer. The distance levels are built
        # without autograd (backpropagating their squaring chain was ~40 % of a fit step).
        with torch.no_grad():
            longest = self._longest()
            rho = torch.exp(-0.5 * squared_distance(e1[:, :2] / longest, e2[:, :2] / longest))
            levels = torch.empty((L, *rho.shape), dtype=rho.dtype)
            levels[0] = rho
            for level in range(1, L):  # next level: half the lengthscale, rho ** 4
                torch.mul(levels[level - 1], levels[level - 1], out=levels[level])
                levels[level].mul_(levels[level])
        return self.amplitude * ladder_mix(w1, w2, levels) * members


class _LadderMix(torch.autograd.Function):
    """See `ladder_mix`. autograd's own graph of the same expression keeps the (L, n1, n2)
    outer product and reduces through it: ~8 passes over L n1 n2 numbers for value and
    gradient; this takes 5 (half of a fit step's multiplications at M = 256)."""

    @staticmethod
    def forward(ctx, w1: Tensor, w2: Tensor, levels: Tensor) -> Tensor:
        ctx.save_for_backward(w1, w2, levels)
        mix = torch.zeros(levels.shape[1:], dtype=levels.dtype)
        for w1_l, w2_l, level in zip(w1, w2, levels):
            mix.addcmul_(level * w1_l[:, None], w2_l[None, :])
        return mix

    @staticmethod
    def backward(ctx, grad: Tensor):
        w1, w2, levels = ctx.saved_tensors
        weighted = levels * grad.contiguous()   # (L, n1, n2); grad may come transposed
        grad_w1 = torch.bmm(weighted, w2[:, :, None])[:, :, 0]
        grad_w2 = torch.bmm(weighted.transpose(1, 2), w1[:, :, None])[:, :, 0]
        return grad_w1, grad_w2, None


def ladder_mix(w1: Tensor, w2: Tensor, levels: Tensor) -> Tensor:
    """sum_l w1[l, i] levels[l, i, j] w2[l, j]: the attentive kernel's mix of its levels,
    differentiable in the weights; ``levels`` takes no gradient (the ladder is fixed).

    Shapes:
        w1: (L, n1), w2: (L, n2), levels: (L, n1, n2) -> (n1, n2)
    """
    return _LadderMix.apply(w1, w2, levels)


def make_kernel(name: str, lengthscale: float, num_lengthscales: int = 6, hidden: int = 16,
                seed: int = 0) -> Kernel:
    """Kernel by name: 'attentive' | 'rbf' | 'matern32' | 'matern52'.

    Args:
        lengthscale: [m] initial lengthscale (for 'attentive' the geometric centre of the
            ladder, which then spans a factor 2**(L-1) around it).
    """
    if name == 'attentive':
        shortest = lengthscale / 2.0 ** ((num_lengthscales - 1) / 2)
        return AttentiveKernel(shortest, num_lengthscales, hidden, seed=seed)
    if name in KERNELS:
        return StationaryKernel(name, lengthscale)
    raise ValueError(f'unknown kernel {name!r}; expected one of {KERNELS}')
