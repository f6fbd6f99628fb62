"""Fused, compiled (numba) cross-covariance of the attentive kernel, for prediction.

`kernels.AttentiveKernel.between` written as torch operations makes ~5 L passes over
the (n1, n2) matrix; without autograd this module does it in one compiled pass after a
vectorised exp (numpy's SIMD exp is ~3x torch's float64 one on this CPU): 10,000 x 256
in ~7 ms on one thread instead of ~27 ms. Same arithmetic (the ladder's levels by
repeated squaring of the longest level's RBF), so it agrees with the torch form to
rounding (tested).

The level loop is compiled with the number of levels L as a constant (one function per
L, ~0.35 s once per process): fully unrolled, the column loop vectorises. It is not
cached on disk: a cached closure loaded in a later process lost its environment when
returning an array (numba: "NRT_adapt_ndarray_to_python, descr is NULL"); the other
kernels are plain functions, cached next to this module. The in-place kernels return
nothing (no array to box). Importing numba adds ~0.25 s to a process.
"""
from __future__ import annotations

import functools

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def _log_rbf(x1, x2t, inverse_lengthscale, out):
    """out[i, j] = -|x1_i - x2_j|^2 / (2 l^2) (the exp is numpy's, vectorised); x2t is
    (2, n2): contiguous rows for the vectorised column loop."""
    for i in range(x1.shape[0]):
        x = x1[i, 0]
        y = x1[i, 1]
        for j in range(x2t.shape[1]):
            dx = (x - x2t[0, j]) * inverse_lengthscale
            dy = (y - x2t[1, j]) * inverse_lengthscale
            out[i, j] = -0.5 * (dx * dx + dy * dy)


@numba.njit(cache=True, fastmath=True)
def column_square_norms(a):
    """|a[:, j]|^2 per column (4x numpy's einsum on a Fortran-ordered (256, 1024)).

    Shapes: a: (m, n) -> (n,)
    """
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        total = 0.0
        for i in range(a.shape[0]):
            total += a[i, j] * a[i, j]
        out[j] = total
    return out


@functools.lru_cache(maxsize=None)
def _ladder(levels: int):
    """Compiled in-place ladder mix for a ladder of ``levels`` levels (a constant here)."""

    @numba.njit(fastmath=True)
    def ladder(rho, w1, z1, w2, z2, amplitude):
        for i in range(rho.shape[0]):
            for j in range(rho.shape[1]):
                level = rho[i, j]            # RBF at the longest lengthscale
                mix = 0.0
                members = 0.0
                for k in range(levels):
                    mix += w1[i, k] * w2[k, j] * level
                    members += z1[i, k] * z2[k, j]
                    level = level * level
                    level = level * level    # next level: half the lengthscale
                rho[i, j] = amplitude * mix * members

    return ladder


def attentive_cross(x1: np.ndarray, w1: np.ndarray, z1: np.ndarray, x2: np.ndarray,
                    w2: np.ndarray, z2: np.ndarray, longest: float, amplitude: float,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Attentive-kernel covariance between two embedded point sets.

    k(x, x') = amplitude * sum_k w_k(x) w_k(x') exp(-|x - x'|^2 / (2 l_k^2)) * z(x).z(x')
    with l_k = longest / 2**k.

    Args:
        x1, x2: [m] centred positions. w1, w2: lengthscale weights. z1, z2: memberships.
        longest: [m] longest lengthscale of the ladder. amplitude: signal variance.
        out: C-contiguous float64 storage for the result (a reused buffer saves a
            large allocation's page faults per call, ~1 ms per 2 MB).

    Returns:
        the covariance matrix (float64), ``out`` when given.

    Shapes:
        x1: (n1, 2), w1: (n1, L), z1: (n1, L), x2: (n2, 2), w2: (n2, L), z2: (n2, L)
        -> (n1, n2)
    """
    shape = (len(x1), len(x2))
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f'out must be C-contiguous float64 {shape}, got {out.dtype} '
                         f'{out.shape}')
    x1, w1, z1 = (np.ascontiguousarray(a, dtype=np.float64) for a in (x1, w1, z1))
    # Second operand coordinate- / level-major: the compiled column loops read it
    # contiguously.
    x2t, w2t, z2t = (np.ascontiguousarray(np.asarray(a, dtype=np.float64).T)
                     for a in (x2, w2, z2))
    _log_rbf(x1, x2t, 1.0 / longest, out)
    np.exp(out, out=out)
    _ladder(w1.shape[1])(out, w1, z1, w2t, z2t, amplitude)
    return out


def prepare(levels: int) -> None:
    """Compile (or load from the disk cache) this module's kernels for a ladder of
    ``levels`` levels now, not on a node's data path at the first reading: ~0.35 s once
    per process and ladder length, microseconds after."""
    weights = np.full((1, levels), 1.0 / np.sqrt(levels))
    point = np.zeros((1, 2))
    attentive_cross(point, weights, weights, point, weights, weights, 1.0, 1.0)
    column_square_norms(np.zeros((1, 1), order='F'))   # predict's layout (dtrmm output)
