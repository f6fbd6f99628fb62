"""State containers and Gaussian algebra of the streaming mapper (used by `gp.GPMapper`).

* `SampleBuffer`: the bounded adaptation set (recent window + uniform reservoir).
* `InducingSet`: inducing points, K_ZZ, its inverse and the belief N(m, P) in fixed
  buffers with O(M) add / remove.
* `reprior`: re-express a Gaussian belief under a new prior keeping the data's evidence.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor


class SampleBuffer:
    """The adaptation set: the last ``window`` samples plus a uniform reservoir of older ones.

    Rows are (x [m], y [m], t [s], value). Reservoir sampling ("algorithm R") draws from a
    counter-based hash, so the buffer needs no RNG state to be saved.
    """

    def __init__(self, window: int, reservoir: int, seed: int):
        self.window = np.zeros((window, 4))
        self.reservoir = np.zeros((reservoir, 4))
        self.seed = seed
        self.count = 0      # samples ever added
        self.offered = 0    # samples that left the window

    @property
    def complete(self) -> bool:
        """True while every sample ever added is still stored."""
        return self.offered <= len(self.reservoir)

    def add(self, rows: np.ndarray) -> None:
        W = len(self.window)
        for row in rows:
            slot = self.count % W
            if self.count >= W:
                self._offer(self.window[slot])
            self.window[slot] = row
            self.count += 1

    def _offer(self, row: np.ndarray) -> None:
        R = len(self.reservoir)
        self.offered += 1
        if self.offered <= R:
            self.reservoir[self.offered - 1] = row
        elif R:
            j = _splitmix64(self.seed * 0x9E3779B97F4A7C15 + self.offered) % self.offered
            if j < R:
                self.reservoir[j] = row

    def data(self) -> np.ndarray:
        """Stored rows, reservoir first, then the window oldest first. Shapes: -> (n, 4)"""
        W = len(self.window)
        n_win = min(self.count, W)
        start = self.count % W if self.count >= W else 0
        window = np.roll(self.window, -start, axis=0)[:n_win]
        return np.concatenate([self.reservoir[:min(self.offered, len(self.reservoir))],
                               window])

    def state(self) -> dict:
        return {'window': torch.from_numpy(self.window.copy()),
                'reservoir': torch.from_numpy(self.reservoir.copy()),
                'count': self.count, 'offered': self.offered}

    def load(self, state: dict) -> None:
        window, reservoir = state['window'].numpy(), state['reservoir'].numpy()
        if window.shape != self.window.shape or reservoir.shape != self.reservoir.shape:
            raise ValueError('sample buffer shape does not match adapt_window/adapt_reservoir')
        self.window, self.reservoir = window.copy(), reservoir.copy()
        self.count, self.offered = int(state['count']), int(state['offered'])


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def reprior(m: Tensor, P: Tensor, prior_mean: Tensor, K_old: Tensor,
            K_new: Tensor) -> tuple[Tensor, Tensor]:
    """Re-express a Gaussian belief under a new prior, keeping the data's evidence.

    The evidence is the Gaussian site N(m, P) / N(prior_mean, K_old); the result is
    N(0, K_new) times that site (Bui et al. 2017). Computed in whitened coordinates with
    eigen-decompositions so the result is symmetric PSD by construction.

    Shapes:
        m: (M,), P: (M, M), prior_mean: (M,), K_old: (M, M), K_new: (M, M) -> (M,), (M, M)
    """
    L_old = torch.linalg.cholesky(K_old)
    L_new = torch.linalg.cholesky(K_new)

    def solve(B: Tensor) -> Tensor:  # L_old^-1 B
        return torch.linalg.solve_triangular(L_old, B, upper=False)

    Pw = solve(solve(P).T)                                # L^-1 P L^-T
    p, U = torch.linalg.eigh(0.5 * (Pw + Pw.T))
    p = p.clamp(1e-12, 1.0)
    lam = 1.0 / p - 1.0                                   # whitened site precision
    mw = solve((m - prior_mean)[:, None])[:, 0]
    eta_w = U @ ((U.T @ mw) / p)                          # site natural mean (whitened)
    shift = solve(prior_mean[:, None])[:, 0]              # old prior mean, whitened
    # Site in the new whitened coordinates v = L_new^-1 u: precision T^T Lambda_w T.
    T = solve(L_new)
    F = T.T @ (U * lam.sqrt())
    eta_v = T.T @ (eta_w + U @ (lam * (U.T @ shift)))
    s, V = torch.linalg.eigh(F @ F.T)
    Pv = (V / (1.0 + s.clamp_min(0.0))) @ V.T
    P_new = L_new @ Pv @ L_new.T
    return L_new @ (Pv @ eta_v), 0.5 * (P_new + P_new.T)


@contextmanager
def torch_threads(n: int):
    """Run with n torch intra-op threads (0: leave the setting alone)."""
    previous = torch.get_num_threads()
    if n == 0 or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    import scipy.linalg.blas  # noqa: F401 - load scipy's BLAS before taking stock
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


@contextmanager
def blas_threads(n: int):
    """Run with the BLAS pools scipy calls into limited to n threads (0: leave them
    alone); only `GPMapper.predict`'s triangular products need it (~15 us per call)."""
    if n == 0:
        yield
        return
    with _blas_controller().limit(limits=n, user_api='blas'):
        yield


class InducingSet:
    """Inducing points Z, their embeddings, K_ZZ (+ jitter), its inverse and the belief
    N(m, P), stored in buffers of capacity M + 1 so that adding a point or removing one
    (the last point takes its slot) moves O(M) data; the views below are the live state.
    """

    def __init__(self, capacity: int, embed_dim: int):
        self.n = 0
        self._Z = zeros(capacity, 2)
        self._E = zeros(capacity, embed_dim)
        self._K = zeros(capacity, capacity)
        self._Kinv = zeros(capacity, capacity)
        self._P = zeros(capacity, capacity)
        self._m = zeros(capacity)

    Z = property(lambda self: self._Z[:self.n], doc='[m] (n, 2)')
    E = property(lambda self: self._E[:self.n], doc='kernel embeddings (n, e)')
    K = property(lambda self: self._K[:self.n, :self.n], doc='K_ZZ + jitter (n, n)')
    Kinv = property(lambda self: self._Kinv[:self.n, :self.n], doc='(K_ZZ + jitter)^-1')
    P = property(lambda self: self._P[:self.n, :self.n], doc='belief covariance (n, n)')
    m = property(lambda self: self._m[:self.n], doc='belief mean (n,)')

    def assign(self, **values: Tensor) -> None:
        """Overwrite some of Z, E, K, Kinv, P, m (all with the same n)."""
        for name, value in values.items():
            self.n = len(value)
            buffer = getattr(self, '_' + name)
            if name in ('Z', 'E', 'm'):
                buffer[:self.n] = value
            else:
                buffer[:self.n, :self.n] = value

    def append(self, z: Tensor, e: Tensor, k: Tensor, prior_var: float, a: Tensor,
               c: float) -> None:
        """Add point z with cross-covariances k, prior variance, a = K^-1 k and its
        conditional variance c; its value's belief is the exact conditional prior.

        Shapes: z: (2,), e: (e,), k: (n,), a: (n,)
        """
        n = self.n
        Pa = self.P @ a
        for M, column, corner in ((self._K, k, prior_var), (self._P, Pa, float(a @ Pa) + c)):
            M[n, :n] = column
            M[:n, n] = column
            M[n, n] = corner
        self.Kinv.addr_(a, a, alpha=1.0 / c)
        self._Kinv[n, :n] = -a / c
        self._Kinv[:n, n] = -a / c
        self._Kinv[n, n] = 1.0 / c
        self._m[n] = a @ self.m
        self._Z[n], self._E[n] = z, e
        self.n = n + 1

    def remove(self, j: int) -> None:
        """Marginalise point j out (drop its row and column)."""
        Kinv = self.Kinv
        column = Kinv[:, j].clone()
        Kinv.addr_(column, column, alpha=-1.0 / float(column[j]))  # Schur complement
        last = self.n - 1
        if j != last:
            for M in (self._K, self._Kinv, self._P):
                M[j, :last + 1] = M[last, :last + 1]
                M[:last + 1, j] = M[:last + 1, last]
            for v in (self._m, self._Z, self._E):
                v[j] = v[last]
        self.n = last


def zeros(*shape: int) -> Tensor:
    return torch.zeros(shape, dtype=torch.float64)
