"""Streaming sparse spatio-temporal Gaussian-process mapper (`GPMapper`).

Model. The field (normalised: y = mu + scale * f) is f(x, t) ~ GP(0, k_s(x, x') k_t(t, t'))
with a spatial kernel k_s from `kernels` (attentive by default) and the Ornstein-Uhlenbeck
temporal factor k_t = exp(-|dt| / tau) (tau = 0: static). A sample is
y_i = f(x_i, t_i) + eps_i. The sparse approximation is FITC over M inducing points Z:
f(x, t) = a(x)^T u(t) + r(x, t) with a(x) = K_ZZ^-1 k_Z(x), u(t) = f(Z, t) and an
independent residual of variance k(x, x) - q(x), q = k_xZ K_ZZ^-1 k_Zx. When Z contains
every sample location the model is the exact GP (tested).

State = the Gaussian belief N(m, P) over u(t_now), the fixed-size summary of all past data:
* Samples taken at one time are one Kalman update of (m, P), observation rows a(x), noise
  sigma^2 + k - q: O(M^2 B + B^3) for B samples, independent of how many came before. The
  covariance downdate P -= H^T H, H = chol(S)^-1 A P, is symmetric PSD-preserving with
  S >= sigma^2 I (noise floor) > 0; P stays PSD over 100k+ updates (tested).
* Between samples the OU factor is propagated exactly in state-space form:
  m <- phi m, P <- phi^2 P + (1 - phi^2) K_ZZ, phi = exp(-dt / tau), O(M^2): old evidence
  fades towards the prior, so a drifting plume is tracked. A sample older than the belief
  is fused through the reverse OU transition (extra noise (1 - phi^2) q; a filter).
* Inducing points are samples. A sample farther than the spacing (initially
  ``inducing_spacing``) from every inducing point becomes one; its value's belief is its
  exact conditional prior given u, appended to (m, P) (exact: data see f only through u
  and independent residuals). With the budget M full it replaces the point j of least
  leave-one-out prior variance 1 / [K_ZZ^-1]_jj if that multiplies det K_ZZ by more
  than 2 (j is marginalised out: row and column dropped), a greedy volume-maximising
  exchange that spreads the set in the kernel's own metric (denser where the attentive
  kernel selects short lengthscales). If it does not, the set is already spread and the
  sample lies in an uncovered part of the survey: coverage wins, the spacing grows by
  sqrt 2 and the most redundant points closer than that are marginalised out, so the
  resolution coarsens evenly as the surveyed area outgrows the budget (the attentive
  kernel's fixed lengthscale ladder is lifted to keep its shortest level >= half the
  spacing: shorter lengthscales cannot be carried by the inducing points). K_ZZ^-1 is kept
  explicitly (block / Schur updates, refreshed by a Cholesky every M changes): a
  placement costs O(M^2), a coarsening O(M^3) (rare: each halves the density).
* Hyperparameters (kernel, amplitude, noise) adapt online after ``adapt_warmup``,
  2 ``adapt_warmup``, 4 ``adapt_warmup``, ... samples, then every ``adapt_every``: the output
  normalisation (running mean / std) and the attentive kernel's input normalisation (the
  area spanned by Z) are refreshed and ``adapt_steps`` Adam steps maximise the sparse
  (Titsias collapsed variational) marginal-likelihood bound, with the current inducing
  points, of a bounded sample set: the last ``adapt_window`` samples plus a uniform
  reservoir of ``adapt_reservoir`` older ones. The bound scores the sparse model actually
  used (an exact-GP likelihood would pick lengthscales the inducing points cannot carry).
  The belief is then re-expressed under the new prior: rebuilt exactly from the stored
  samples while they are all stored, otherwise by keeping the data's Gaussian "site"
  (posterior / old prior) and multiplying it by the new prior (Bui et al. 2017, streaming
  sparse GPs). The Adam steps dominate (0.05-0.7 s at M = 256); with
  ``adapt_in_background`` they run on copies of the hyperparameters in a worker thread
  while updates go on under the old ones, and the first `update()` after the worker is
  done applies the result (re-prior: O(M^3), milliseconds); adaptation points passed
  meanwhile are merged into the next adaptation. Otherwise (the default: reproducible)
  the whole adaptation runs inside the `update()` that reaches the adaptation point.
* Prediction caches K_ZZ^-1 m and a triangular factor R of K_ZZ^-1 (K_ZZ - P) K_ZZ^-1
  between updates (`_variance_factor`); the latent variance k - |R k_Z(x)|^2 = k - q + a^T P a
  is exact FITC; ``include_noise`` adds sigma^2 (the predictive of an observation, for
  NLPD / coverage). Cost O(Q M^2 / 2) for Q cells (a BLAS triangular product), plus the
  cross-covariance (compiled for the attentive kernel: `fused`).

numpy float64 in and out; torch (float64, ``num_threads`` intra-op threads) inside.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from scipy.linalg import blas
from torch import Tensor

from ..measurements import InvalidInput
from .adaptation import Adaptation, BoundFit
from .fused import column_square_norms
from .kernels import KERNELS, AttentiveKernel, Kernel, make_kernel, ou_correlation
from .streaming import (InducingSet, SampleBuffer, blas_threads, reprior, torch_threads,
                        zeros)

SNAPSHOT_VERSION = 1
_BLOCK = 128            # samples per Kalman block (S is at most _BLOCK x _BLOCK)
_PREDICT_CHUNK = 1024   # query rows per kernel evaluation in predict() (cache-sized)
_FACTOR_JITTER = 1e-9   # on the whitened explained covariance D (see _variance_factor)
_MAX_ADAPT_ROUNDS = 10  # a batch crossing many adaptation points runs at most this many rounds
_NETWORK_LR_RATIO = 0.1  # attentive network learning rate / adapt_lr (it overfits early)
_EXCHANGE_GAIN = 2.0     # a full inducing set swaps a point only if det K_ZZ grows this much
_SYMMETRIZE_EVERY = 64   # Kalman updates between re-symmetrisations of P
_COPY_JITTERS = 10.0     # a sample with less new prior variance (in jitters) is a copy
_SPACING_GROWTH = math.sqrt(2.0)  # coarsening step of the inducing spacing (halves density)


@dataclass(frozen=True)
class GPMapperConfig:
    """Mapper tuning. Lengths in ``map`` metres, values in the field's unit.

    Args:
        kernel: spatial kernel, 'attentive' (non-stationary) | 'rbf' | 'matern32' |
            'matern52'.
        max_inducing: M, the inducing-point budget (state size M + M^2).
        inducing_spacing: [m] initial spacing: a sample farther than this from every
            inducing point becomes a new inducing point (with M placed, by exchange or
            after coarsening, see the module docstring). The finest resolution of the
            map: with survey tracks use about the expected lengthscale or less, not
            area / sqrt(M) (a track fills the budget only at a fine spacing).
        noise_std: [field unit] initial observation noise std (learned when adapting).
        signal_std: [field unit] prior std of the field; 0 = estimated from the data
            (running std, from the first adaptation on; 10 * noise_std before).
        temporal_timescale: [s] OU time constant of the temporal factor; 0 = static field.
        static_background: with ``temporal_timescale`` > 0, keep a static map of all
            readings under the fading one (`drifting.DriftingFieldMapper`: background +
            anomaly); False: the whole field fades (a plain `GPMapper`). Read by
            `drifting.make_mapper`, it selects the model; a `GPMapper` ignores it.
        lengthscale: [m] initial lengthscale of the stationary kernels (learned); for the
            attentive kernel the geometric centre of its fixed ladder (the network learns
            which level applies where); 0 = 2 * ``inducing_spacing``.
        num_lengthscales: attentive kernel: levels of the lengthscale ladder (ratio 2,
            spanning a factor 2**(L-1)).
        hidden_units: attentive kernel: width of the network's two hidden layers.
        adapt_every: samples between hyperparameter adaptations (0 = never adapt).
        adapt_warmup: first adaptation after this many samples, then at doubling counts
            until ``adapt_every``.
        adapt_steps: Adam steps per adaptation.
        adapt_lr: Adam learning rate of the log-scale hyperparameters (amplitude, noise,
            stationary lengthscale); the attentive network's weights use a tenth of it.
        adapt_window: most recent samples in the adaptation set.
        adapt_reservoir: uniformly sampled older samples in the adaptation set.
        adapt_in_background: fit the hyperparameters in a worker thread, off the update
            path (a node: no update waits for an adaptation); the step at which a result
            lands then depends on timing. False: inside `update` (reproducible).
        noise_floor: lower bound of the learned noise std relative to the output scale.
        jitter: diagonal added to K_ZZ, relative to the signal variance.
        seed: network initialisation and reservoir sampling.
        num_threads: torch intra-op threads inside mapper calls (0 = leave torch's
            setting). The mapper's matrices are small: on a busy 2-core computer one
            thread is several times faster than two competing, spinning thread pools.
    """

    kernel: str = 'attentive'
    max_inducing: int = 256
    inducing_spacing: float = 50.0
    noise_std: float = 0.1
    signal_std: float = 0.0
    temporal_timescale: float = 0.0
    static_background: bool = True
    lengthscale: float = 0.0
    num_lengthscales: int = 6
    hidden_units: int = 16
    adapt_every: int = 1024
    adapt_warmup: int = 16
    adapt_steps: int = 20
    adapt_lr: float = 0.05
    adapt_window: int = 128
    adapt_reservoir: int = 128
    adapt_in_background: bool = False
    noise_floor: float = 1e-3
    jitter: float = 1e-6
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ValueError(f'kernel must be one of {KERNELS}, got {self.kernel!r}')
        for name in ('max_inducing', 'num_lengthscales', 'hidden_units', 'adapt_warmup',
                     'adapt_window'):
            if not getattr(self, name) >= 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        for name in ('adapt_every', 'adapt_steps', 'adapt_reservoir', 'num_threads'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        for name in ('inducing_spacing', 'noise_std', 'adapt_lr', 'noise_floor', 'jitter'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite positive number, got {value}')
        for name in ('signal_std', 'temporal_timescale', 'lengthscale'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be finite and >= 0, got {value}')
        if self.jitter >= 0.1 or self.noise_floor >= 1.0:
            raise ValueError('jitter must be < 0.1 and noise_floor < 1 (relative values)')


class GPMapper:
    """Streaming sparse spatio-temporal GP map of one scalar field (see the module docstring).

    Args:
        config: `GPMapperConfig`.
    """

    def __init__(self, config: GPMapperConfig):
        self.config = config
        self._tau = config.temporal_timescale
        self.kernel: Kernel = make_kernel(
            config.kernel, config.lengthscale or 2.0 * config.inducing_spacing,
            config.num_lengthscales, config.hidden_units, config.seed)
        self._log_noise = torch.nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
        self._exp_cache: dict[str, tuple[Tensor, int, float]] = {}
        self._optimizer = self._make_optimizer(self.kernel, self._log_noise)
        self._job: Adaptation | None = None   # the adaptation in flight
        self._executor: ThreadPoolExecutor | None = None
        self._buffer = SampleBuffer(config.adapt_window, config.adapt_reservoir, config.seed)
        self._num_samples = 0
        self._stats = np.zeros(3)       # Welford count, mean, M2 of the raw values
        self._mu = 0.0
        self._scale = config.signal_std or 10.0 * config.noise_std
        self._set_noise_std(config.noise_std / self._scale)
        self._next_adapt = (min(config.adapt_warmup, config.adapt_every)
                            if config.adapt_every else math.inf)
        self._t: float | None = None
        self._ind = InducingSet(config.max_inducing + 1,
                                 self._embed(zeros(0, 2)).shape[1])
        self._spacing = config.inducing_spacing
        self._changes = 0
        self._fused = 0
        self._cache: dict | None = None   # _mean_weights / _variance_factor

    # Live views of the inducing state (see InducingSet).
    _Z = property(lambda self: self._ind.Z)
    _EZ = property(lambda self: self._ind.E)
    _K = property(lambda self: self._ind.K)
    _Kinv = property(lambda self: self._ind.Kinv)
    _m = property(lambda self: self._ind.m)
    _P = property(lambda self: self._ind.P)

    # ------------------------------------------------------------------ public API
    @property
    def num_samples(self) -> int:
        """Samples assimilated so far."""
        return self._num_samples

    @property
    def inducing_points(self) -> np.ndarray:
        """[m] current inducing points. Shapes: -> (M_used, 2)"""
        return self._Z.numpy().copy()

    @property
    def spacing(self) -> float:
        """[m] current inducing spacing (grows when the survey outgrows the budget)."""
        return self._spacing

    @property
    def time(self) -> float | None:
        """[s] time of the belief (latest sample time), None before the first sample."""
        return self._t

    @property
    def noise_std(self) -> float:
        """[field unit] current observation noise std."""
        return self._scale * math.sqrt(self._noise_var())

    @property
    def output_mean(self) -> float:
        """[field unit] prior mean of the field (output normalisation offset)."""
        return self._mu

    @property
    def output_scale(self) -> float:
        """[field unit] output normalisation scale: the kernel works in units of it."""
        return self._scale

    def update(self, xy, t, y) -> None:
        """Assimilate samples (and adapt hyperparameters when due).

        The batch is all-or-nothing: any non-finite value refuses the whole batch with
        ``InvalidInput('nan')`` and leaves the map unchanged. Samples of one batch may have
        different times; they are fused in time order.

        Args:
            xy: [m] sample positions in ``map``. t: [s] sample times (scalar or per sample).
            y: field values [field unit] (scalar or per sample).

        Shapes:
            xy: (N, 2), t: (N,) or (), y: (N,) or () with N >= 1
        """
        xy, t, y = check_samples(xy, t, y)
        n = len(xy)
        with torch_threads(self.config.num_threads):
            if self._num_samples == 0:
                self._init_normalization(xy, y)
            self._num_samples += n
            self._welford(y)
            self._buffer.add(np.column_stack([xy, t, y]))
            self._assimilate(torch.from_numpy(np.ascontiguousarray(xy)), t.copy(),
                             torch.from_numpy((y - self._mu) / self._scale), place=True)
            self._apply_finished_adaptation()
            if self._job is None:  # points passed while one was in flight count now
                rounds, point = 0, self._next_adapt
                while self._num_samples >= self._next_adapt:
                    rounds += 1
                    self._next_adapt = self._following_adapt(self._next_adapt)
                if rounds and self.config.adapt_steps:
                    self._start_adaptation(min(rounds, _MAX_ADAPT_ROUNDS), point)

    def predict(self, xy, t: float | None = None,
                include_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the field.

        Args:
            xy: [m] query positions. t: [s] query time (default: the belief's time). A time
                after the belief's is an exact OU forecast; an earlier one uses the same
                decay (a filter, not a smoother). include_noise: std of an observation
                (adds the noise variance) instead of the latent field.

        Returns:
            mean [field unit], std [field unit].

        Shapes:
            xy: (Q, 2) -> (Q,), (Q,)
        """
        xy = self._check_points(xy, 'xy')
        self._apply_finished_adaptation()
        phi = self._decay(t)
        mean = zeros(len(xy))
        var = torch.full((len(xy),), self._amp(), dtype=torch.float64)
        threads = self.config.num_threads
        with torch_threads(threads), blas_threads(threads), torch.no_grad():
            if len(self._Z):
                alpha, R = self._mean_weights().numpy(), self._variance_factor()
                E = self.kernel.embed(xy)
                buffer = torch.empty(min(len(xy), _PREDICT_CHUNK), len(self._Z),
                                     dtype=torch.float64)
                for s in range(0, len(xy), _PREDICT_CHUNK):
                    rows = slice(s, s + _PREDICT_CHUNK)
                    Kq = self.kernel.between(E[rows], self._EZ,
                                             out=buffer[:len(E[rows])]).numpy()
                    # scipy's BLAS only (numpy's is a second OpenBLAS whose spinning
                    # threads would compete for the cores). Kq^T is Fortran-ordered.
                    mean[rows] = torch.from_numpy(blas.dgemv(phi, Kq.T, alpha, trans=1))
                    # |R k|^2 = k^T (K^-1 - K^-1 P K^-1) k, the variance the data explain;
                    # R is triangular: half a GEMM's work (Kq^T is overwritten in place).
                    RK = blas.dtrmm(1.0, R, Kq.T, lower=1, overwrite_b=1)
                    var[rows] -= torch.from_numpy(column_square_norms(RK)).mul_(phi * phi)
        var = var.clamp_min(0.0)
        if include_noise:
            var += self._noise_var()
        return (self._mu + self._scale * mean).numpy(), (self._scale * var.sqrt()).numpy()

    def predict_mean(self, xy, t: float | None = None) -> np.ndarray:
        """`predict`'s mean alone: O(Q M) per call, no O(M^3) variance factor to refresh
        after an update (`drifting.DriftingFieldMapper` needs it once per batch).

        Shapes:
            xy: (Q, 2) -> (Q,)
        """
        xy = self._check_points(xy, 'xy')
        self._apply_finished_adaptation()
        phi = self._decay(t)
        mean = zeros(len(xy))
        with torch_threads(self.config.num_threads), torch.no_grad():
            if len(self._Z):
                Kq = self.kernel.between(self.kernel.embed(xy), self._EZ)
                mean = phi * (Kq @ self._mean_weights())
        return (self._mu + self._scale * mean).numpy()

    def variance_reduction(self, candidates, targets=None) -> np.ndarray:
        """Expected reduction of the field's mean latent variance over ``targets`` if a
        measurement were taken at each candidate (or each candidate set, jointly), now.

        Args:
            candidates: [m] one point per candidate (C, 2), or a set of S points per
                candidate (C, S, 2) (e.g. the samples along a candidate path).
            targets: [m] where the variance counts (T, 2); default: the inducing points.

        Returns:
            [field unit^2] mean variance reduction over the targets, per candidate.

        Shapes:
            candidates: (C, 2) or (C, S, 2), targets: (T, 2) -> (C,)
        """
        cand = np.asarray(candidates, dtype=np.float64)
        if cand.ndim == 2:
            cand = cand[:, None, :]
        if cand.ndim != 3 or cand.shape[2] != 2 or not np.isfinite(cand).all():
            raise ValueError(f'candidates must be finite (C, 2) or (C, S, 2), got {cand.shape}')
        C, S = cand.shape[:2]
        self._apply_finished_adaptation()
        if not len(self._Z) or C == 0:
            return np.zeros(C)
        with torch_threads(self.config.num_threads), torch.no_grad():
            A, r = self._observation_model(torch.from_numpy(cand.reshape(-1, 2)))
            A = A.reshape(C, S, -1)
            G = A @ self._P                                          # (C, S, M)
            Sm = G @ A.transpose(1, 2) + torch.diag_embed(r.reshape(C, S))
            H = torch.linalg.solve_triangular(torch.linalg.cholesky(Sm), G, upper=False)
            if targets is None:
                gain = (H * H).sum((1, 2)) / len(self._Z)
            else:
                At, _ = self._observation_model(self._check_points(targets, 'targets'))
                gain = ((H @ At.T) ** 2).sum((1, 2)) / len(At)
        return (self._scale ** 2 * gain).numpy()

    # ------------------------------------------------------------------ snapshot
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this mapper is (tensors, ints, floats):
        the map as it stands; an adaptation in flight is not waited for, the restored
        mapper runs it again at its next update."""
        return {
            'version': SNAPSHOT_VERSION,
            'config': asdict(self.config),
            'kernel': {k: v.clone() for k, v in self.kernel.state_dict().items()},
            'log_noise': self._log_noise.detach().clone(),
            'optimizer': self._optimizer.state_dict(),
            'buffer': self._buffer.state(),
            'num_samples': self._num_samples,
            'stats': torch.from_numpy(self._stats.copy()),
            'mu': self._mu, 'scale': self._scale,
            'next_adapt': float(self._resume_point()),
            'time': math.nan if self._t is None else self._t,
            'Z': self._Z.clone(), 'EZ': self._EZ.clone(), 'K': self._K.clone(),
            'Kinv': self._Kinv.clone(), 'm': self._m.clone(), 'P': self._P.clone(),
            'changes': self._changes, 'fused': self._fused, 'spacing': self._spacing,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output; ValueError (mapper unchanged) when it does not fit."""
        backup = self.state_dict()
        try:
            self._load_state(state)
        except ValueError:
            self._load_state(backup)
            raise

    def _load_state(self, state: dict) -> None:
        check_header(state, None, SNAPSHOT_VERSION, self.config)
        try:
            arrays = {k: state[k] for k in ('Z', 'EZ', 'K', 'Kinv', 'm', 'P')}
            M = len(arrays['Z'])
            shapes = {'Z': (M, 2), 'EZ': (M, self._EZ.shape[1]), 'K': (M, M),
                      'Kinv': (M, M), 'm': (M,), 'P': (M, M)}
            for k, shape in shapes.items():
                if tuple(arrays[k].shape) != shape or arrays[k].dtype != torch.float64:
                    raise ValueError(f'{k} has shape {tuple(arrays[k].shape)}, expected {shape}')
                if not torch.isfinite(arrays[k]).all():
                    raise ValueError(f'{k} is not finite')
            if M > self.config.max_inducing:
                raise ValueError(f'{M} inducing points exceed max_inducing')
            self.kernel.load_state_dict(state['kernel'])
            with torch.no_grad():
                self._log_noise.copy_(state['log_noise'])
            self._optimizer.load_state_dict(state['optimizer'])
            self._buffer.load(state['buffer'])
            self._num_samples = int(state['num_samples'])
            self._stats = state['stats'].numpy().copy()
            self._mu, self._scale = float(state['mu']), float(state['scale'])
            self._next_adapt = float(state['next_adapt'])
            self._t = None if math.isnan(state['time']) else float(state['time'])
            self._ind.assign(Z=arrays['Z'], E=arrays['EZ'], K=arrays['K'],
                             Kinv=arrays['Kinv'], m=arrays['m'], P=arrays['P'])
            self._changes, self._fused = int(state['changes']), int(state['fused'])
            self._spacing = float(state['spacing'])
        except (KeyError, AttributeError, TypeError, RuntimeError) as error:
            raise ValueError(f'malformed snapshot: {error!r}') from error
        self._cache = None
        self._job = None   # an adaptation of the replaced state is dropped

    def settle(self) -> None:
        """Wait for an adaptation in flight (``adapt_in_background``) and apply it."""
        if self._job is not None:
            with torch_threads(self.config.num_threads):
                self._finish_adaptation()

    def close(self) -> None:
        """Stop an adaptation in flight (at its next Adam step; it is not applied and runs
        again at the next update) and let the worker thread end. The mapper stays usable."""
        if self._job is not None:
            self._job.fit.stopped = True
            self._next_adapt, self._job = self._resume_point(), None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def __getstate__(self) -> dict:
        # A copy (deepcopy, pickle) is the map as it stands, like a snapshot: no thread
        # pool, and an adaptation in flight runs again at the copy's next update.
        return {**self.__dict__, '_executor': None, '_job': None,
                '_next_adapt': self._resume_point()}

    def _resume_point(self) -> float:
        """The next adaptation point of the map as it stands: an adaptation in flight is
        not part of it and starts again from its own point."""
        return self._next_adapt if self._job is None else self._job.point

    def save(self, path) -> None:
        """Write a snapshot atomically (a crash mid-write keeps the previous file)."""
        write_snapshot(self.state_dict(), path)

    @classmethod
    def load(cls, path, config: GPMapperConfig | None = None) -> 'GPMapper':
        """Mapper from a snapshot file (``torch.load(weights_only=True)``).

        Args:
            path: snapshot written by `save`.
            config: the configuration the caller expects; None = the stored one.

        Raises:
            FileNotFoundError: no such file.
            ValueError: naming the file, when it is corrupt, of another version, or its
                configuration differs from ``config``.
        """
        path = os.fspath(path)
        state = read_snapshot(path, 'GPMapper')
        try:
            if not isinstance(state, dict) or not isinstance(state.get('config'), dict):
                raise ValueError('no configuration in the snapshot')
            if state.get('version') != SNAPSHOT_VERSION:
                raise ValueError(f'snapshot version {state.get("version")!r}, '
                                 f'expected {SNAPSHOT_VERSION}')
            if config is None:
                config = GPMapperConfig(**state['config'])
            mapper = cls(config)
            mapper.load_state_dict(state)
        except (ValueError, TypeError) as error:
            raise ValueError(f'{path}: {error}') from error
        return mapper

    # ------------------------------------------------------------------ internals
    def _check_points(self, xy, name: str) -> Tensor:
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f'{name} must have shape (Q, 2), got {xy.shape}')
        if not np.isfinite(xy).all():
            raise InvalidInput('nan', f'non-finite {name}')
        return torch.from_numpy(np.ascontiguousarray(xy))

    def _amp(self) -> float:
        return self._exp_of('amp', self.kernel.log_amplitude)

    def _noise_var(self) -> float:
        return self.config.noise_floor ** 2 + self._exp_of('noise', self._log_noise)

    def _exp_of(self, name: str, log_value: Tensor) -> float:
        """exp of a 0-d parameter, cached until it is modified (its version counter moves):
        the update path reads the hyperparameters dozens of times, ~5 us each uncached."""
        hit = self._exp_cache.get(name)
        if hit is None or hit[0] is not log_value or hit[1] != log_value._version:
            hit = self._exp_cache[name] = (log_value, log_value._version,
                                           math.exp(float(log_value.detach())))
        return hit[2]

    def _set_noise_std(self, std: float) -> None:
        with torch.no_grad():
            self._log_noise.fill_(self._log_excess_noise(std))

    def _log_excess_noise(self, std: float) -> float:
        """The noise parameter of noise std ``std``: log of its variance above the floor."""
        return math.log(max(std * std - self.config.noise_floor ** 2, 1e-12))

    def _make_optimizer(self, kernel: Kernel, log_noise: Tensor) -> torch.optim.Adam:
        scalars = [p for p in kernel.parameters() if p.dim() == 0]
        network = [p for p in kernel.parameters() if p.dim() > 0]
        groups = [{'params': [*scalars, log_noise]}]
        if network:  # network weights take smaller steps than the log-scale hyperparameters
            groups.append({'params': network,
                           'lr': self.config.adapt_lr * _NETWORK_LR_RATIO})
        return torch.optim.Adam(groups, lr=self.config.adapt_lr)

    def _jitter(self) -> float:
        return self.config.jitter * self._amp()

    def _init_normalization(self, xy: np.ndarray, y: np.ndarray) -> None:
        # From the first sample only, so that batching never changes the result; the
        # first adaptation replaces it with the running mean / std.
        self._mu = float(y[0])
        # Expected half-width of the area M inducing points cover.
        half = self.config.inducing_spacing * math.sqrt(self.config.max_inducing) / 2
        self.kernel.set_input_normalization(torch.from_numpy(xy[0].copy()), half)

    def _welford(self, y: np.ndarray) -> None:
        count, mean, m2 = self._stats
        n = len(y)
        batch_mean = float(y.mean())
        delta = batch_mean - mean
        total = count + n
        m2 += float(((y - batch_mean) ** 2).sum()) + delta * delta * count * n / total
        self._stats = np.array([total, mean + delta * n / total, m2])

    def _following_adapt(self, current: float) -> float:
        every = self.config.adapt_every
        if 2 * current < every:
            return 2 * current
        return (current // every + 1) * every

    def _embed(self, xy: Tensor) -> Tensor:
        with torch.no_grad():
            return self.kernel.embed(xy)

    def _decay(self, t: float | None) -> float:
        if t is None or self._t is None or self._tau == 0.0:
            return 1.0
        if not math.isfinite(t):
            raise InvalidInput('nan', 'non-finite time')
        return math.exp(-abs(t - self._t) / self._tau)

    def _observation_model(self, xy: Tensor) -> tuple[Tensor, Tensor]:
        """Rows a(x) = K_ZZ^-1 k_Z(x) and the FITC noise sigma^2 + k - q.

        Shapes: xy: (n, 2) -> (n, M), (n,)
        """
        A, q, _ = self._projection(self._embed(xy))
        return A, (self._amp() - q).clamp_min(0.0) + self._noise_var()

    def _projection(self, E: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """a(x) = K_ZZ^-1 k_Z(x), q(x) = k_xZ K_ZZ^-1 k_Zx and k_xZ of embedded points.

        Shapes: E: (n, e) -> (n, M), (n,), (n, M)
        """
        with torch.no_grad():
            Kx = self.kernel.between(E, self._EZ)
        A = Kx @ self._Kinv
        return A, (A * Kx).sum(1), Kx

    def _propagate(self, t: float) -> None:
        """Advance the belief to time t (no-op for a static field or an older t)."""
        if self._t is None:
            self._t = t
        elif t > self._t:
            if self._tau > 0.0 and len(self._m):
                phi = math.exp(-(t - self._t) / self._tau)
                self._m.mul_(phi)
                self._P.mul_(phi * phi).add_(self._K, alpha=1.0 - phi * phi)
                self._cache = None
            self._t = t

    def _assimilate(self, xy: Tensor, t: np.ndarray, yn: Tensor, place: bool) -> None:
        """Fuse samples in time order, placing inducing points on the way.

        Exactly equivalent to fusing one sample at a time: a block is fused in one Kalman
        update up to the first sample that changes the inducing set (placement decisions
        depend on the kernel only, so they are taken before the samples ahead are fused).
        """
        if self._tau > 0.0:
            order = np.argsort(t, kind='stable')
            xy, t, yn = xy[torch.from_numpy(order)], t[order], yn[torch.from_numpy(order)]
        pos, n = 0, len(xy)
        while pos < n:
            stop = min(n, pos + _BLOCK)
            if self._tau > 0.0:  # a block shares one time
                stop = pos + int(np.argmax(np.append(t[pos:stop] != t[pos], True)))
            self._propagate(float(t[pos]))
            E = self._embed(xy[pos:stop])
            start = pos
            while start < stop:
                if not self._ind.n:
                    self._place(xy[start], E[start - pos], zeros(0), zeros(0),
                                self._amp() + self._jitter())
                A, q, Kx = self._projection(E[start - pos:])
                i = self._first_candidate(xy[start:stop], q) if place else None
                end = stop if i is None else start + i
                if end > start:
                    self._fuse(A[:end - start], q[:end - start], float(t[pos]), yn[start:end])
                if i is None:
                    break
                self._place(xy[end], E[end - pos], Kx[i], A[i],
                            self._amp() + self._jitter() - float(q[i]))
                start = end
            pos = stop

    def _first_candidate(self, xy: Tensor, q: Tensor) -> int | None:
        """Index of the first candidate inducing point (None: none): a sample farther than
        the current spacing from every inducing point whose prior variance given the
        inducing values, k - q, is not negligible (a numerical copy would add nothing).

        Shapes: xy: (n, 2), q: (n,)
        """
        novel = self._amp() - q > _COPY_JITTERS * self._jitter()
        hits = (self._far_from_inducing(xy) & novel).nonzero()
        return int(hits[0, 0]) if len(hits) else None

    def _far_from_inducing(self, xy: Tensor) -> Tensor:
        if not len(self._Z):
            return torch.ones(len(xy), dtype=torch.bool)
        # numpy: a few samples against M points, too small for torch's dispatch.
        Z, x = self._Z.numpy(), xy.numpy()
        dx, dy = x[:, 0:1] - Z[:, 0], x[:, 1:2] - Z[:, 1]
        return torch.from_numpy((dx * dx + dy * dy).min(1) > self._spacing ** 2)

    def _fuse(self, A: Tensor, q: Tensor, t: float, yn: Tensor) -> None:
        """Kalman update of (m, P) with a block of samples taken at time t.

        Shapes: A: (B, M) rows a(x), q: (B,) Nystrom variances, yn: (B,) normalised values
        """
        r = (self._amp() - q).clamp_min(0.0) + self._noise_var()  # FITC noise
        if self._tau > 0.0 and t < self._t:  # older than the belief: reverse OU transition
            phi = math.exp(-(self._t - t) / self._tau)
            r = r + (1.0 - phi * phi) * q  # a^T K_ZZ a = q
            A = phi * A
        G = A @ self._P
        innovation = yn - A @ self._m
        if len(yn) == 1:
            root = math.sqrt(float(G[0] @ A[0] + r[0]))
            h = G[0] / root
            self._m.add_(h, alpha=float(innovation[0]) / root)
            self._P.addr_(h, h, alpha=-1.0)
        else:
            S = G @ A.T + torch.diag(r)
            Ls = torch.linalg.cholesky(S)
            H = torch.linalg.solve_triangular(Ls, G, upper=False)
            w = torch.linalg.solve_triangular(Ls, innovation[:, None], upper=False)[:, 0]
            self._m.add_(H.T @ w)
            self._P.addmm_(H.T, H, alpha=-1.0)
        self._fused += 1
        if self._fused % _SYMMETRIZE_EVERY == 0:  # GEMM rounding is not exactly symmetric
            P = self._P
            P.copy_(0.5 * (P + P.T))
        self._cache = None

    def _place(self, x: Tensor, e: Tensor, k: Tensor, a: Tensor, c: float) -> None:
        """Make candidate x an inducing point, its value's belief the exact conditional
        prior given the others; with a full budget by exchange, or after coarsening.

        Exchange: the point j of least leave-one-out prior variance LOO_j = 1 / Kinv_jj
        (with x added) goes if that multiplies det K_ZZ by c / LOO_j > _EXCHANGE_GAIN, a
        greedy volume-maximising swap that spreads the set in the kernel's own metric
        (denser where the attentive kernel selects short lengthscales). Otherwise the set
        is already spread, yet x lies in an uncovered part of the survey: coverage wins,
        the spacing grows and the set is thinned (`_coarsen`) before x is considered again.

        Shapes: x: (2,), e: (e,), k: (M,) k_Z(x), a: (M,) K_ZZ^-1 k_Z(x)
        """
        if self._ind.n >= self.config.max_inducing:
            loo = 1.0 / (torch.diagonal(self._Kinv) + a * a / c)
            j = int(torch.argmin(loo))
            if c > _EXCHANGE_GAIN * float(loo[j]):
                self._ind.append(x, e, k, self._amp() + self._jitter(), a, c)
                self._ind.remove(j)
            else:
                while self._ind.n >= self.config.max_inducing:  # the set may be sparser
                    self._coarsen()                              # than the spacing
                self._follow_resolution()
                if not self._far_from_inducing(x[None])[0]:
                    return
                a, q, k = (v[0] for v in self._projection(e[None]))
                self._ind.append(x, e, k, self._amp() + self._jitter(), a,
                                 self._amp() + self._jitter() - float(q))
        else:
            self._ind.append(x, e, k, self._amp() + self._jitter(), a, c)
        self._changes += 1
        if self._changes >= self.config.max_inducing:
            self._refresh_inverse()
        self._cache = None

    def _coarsen(self) -> None:
        """Grow the spacing by _SPACING_GROWTH (about halving the density) and marginalise
        out the points closer than that to another one, most redundant (least LOO) first."""
        Z = self._Z
        d2 = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
        d2.fill_diagonal_(math.inf)
        self._spacing *= _SPACING_GROWTH
        limit = self._spacing ** 2
        while True:
            crowded = (d2 < limit).any(1)
            if not crowded.any():
                break
            redundancy = torch.where(crowded, torch.diagonal(self._Kinv), -math.inf)
            j, last = int(torch.argmax(redundancy)), self._ind.n - 1
            self._ind.remove(j)  # the last point takes slot j: mirror that in d2
            d2[j], d2[:, j] = d2[last], d2[:, last]
            d2[j, j] = math.inf
            d2 = d2[:last, :last]
        self._refresh_inverse()  # after many Schur downdates

    def _follow_resolution(self) -> None:
        """Attentive kernel: keep its shortest lengthscale at least half the spacing (the
        inducing points cannot carry shorter ones), re-expressing the belief under the
        shifted ladder (`reprior`). Stationary kernels learn their lengthscale instead."""
        if not (isinstance(self.kernel, AttentiveKernel)
                and self.kernel.lift_ladder(self._spacing / 2)):
            return
        K_old = self._K.clone()
        EZ, K = self._kernel_matrix()
        self._ind.assign(E=EZ, K=K)
        self._refresh_inverse()
        m, P = reprior(self._m, self._P, torch.zeros_like(self._m), K_old, self._K)
        self._ind.assign(m=m, P=P)

    def _refresh_inverse(self) -> None:
        Kinv = torch.cholesky_inverse(torch.linalg.cholesky(self._K))
        self._ind.assign(Kinv=0.5 * (Kinv + Kinv.T))
        self._changes = 0

    def _kernel_matrix(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            EZ = self.kernel.embed(self._Z)
            K = self.kernel.between(EZ, EZ)
        K = 0.5 * (K + K.T)
        K.diagonal().add_(self._jitter())
        return EZ, K

    def _mean_weights(self) -> Tensor:
        """K^-1 m, cached until the belief changes. Shapes: -> (M,)"""
        if self._cache is None:
            self._cache = {}
        if 'alpha' not in self._cache:
            self._cache['alpha'] = self._Kinv @ self._m
        return self._cache['alpha']

    def _variance_factor(self) -> np.ndarray:
        """The lower-triangular R (Fortran order, for BLAS) with R^T R = K^-1 - K^-1 P K^-1
        (the variance explained by the data), cached until the belief changes.

        Whitened: with K = L L^T and D = I - L^-1 P L^-T (eigenvalues in [0, 1]: the
        posterior is tighter than the prior), D = V V^T with V upper triangular (the
        Cholesky factor of D's index-reversed copy, reversed) gives R = V^T L^-1, lower
        triangular. ``_FACTOR_JITTER`` on D's diagonal (a variance error of at most that
        fraction of the prior) keeps uninformed directions (D's zero eigenvalues)
        factorisable; rounding that leaves D indefinite is clipped in its eigenbasis.

        Shapes: -> (M, M)
        """
        if self._cache is None:
            self._cache = {}
        if 'factor' not in self._cache:
            L = torch.linalg.cholesky(self._K)
            LiP = torch.linalg.solve_triangular(L, self._P, upper=False)
            W = torch.linalg.solve_triangular(L, LiP.T, upper=False)   # L^-1 P L^-T
            D = torch.eye(len(W), dtype=W.dtype) - 0.5 * (W + W.T)
            reversed_factor, info = torch.linalg.cholesky_ex(_reversed_jittered(D))
            if info:
                s, Q = torch.linalg.eigh(D)
                reversed_factor = torch.linalg.cholesky(
                    _reversed_jittered((Q * s.clamp_min(0.0)) @ Q.T))
            V = reversed_factor.flip(0, 1)                                 # upper
            R = torch.linalg.solve_triangular(L, V.T, upper=False, left=False)
            self._cache['factor'] = np.asfortranarray(R.numpy())
        return self._cache['factor']

    # ------------------------------------------------------------------ adaptation
    def _apply_finished_adaptation(self) -> None:
        if self._job is not None and self._job.future.done():
            self.settle()

    def _stored_samples(self, mu: float, scale: float) -> tuple[Tensor, np.ndarray, Tensor]:
        """The adaptation set: positions, times and values normalised by (mu, scale).

        Shapes: -> (n, 2), (n,), (n,)
        """
        data = self._buffer.data()
        return (torch.from_numpy(data[:, :2].copy()), data[:, 2].copy(),
                torch.from_numpy((data[:, 3] - mu) / scale))

    def _start_adaptation(self, rounds: int, point: float) -> None:
        """Fit the hyperparameters to the adaptation set as it is now, on copies (the live
        model keeps its own until `_finish_adaptation`): in the worker thread with
        ``adapt_in_background``, else here and applied at once.

        The output normalisation (running mean / std) and the attentive kernel's input
        normalisation (the area spanned by Z) are refreshed first, the copies carrying
        the same physical model in the new units (amplitude and noise rescaled).
        """
        count, mean, m2 = self._stats
        scale = self._scale
        if not self.config.signal_std and count > 1 and m2 > 0:
            scale = math.sqrt(m2 / (count - 1))
        ratio = self._scale / scale
        kernel = copy.deepcopy(self.kernel)
        log_noise = torch.nn.Parameter(torch.tensor(
            self._log_excess_noise(math.sqrt(self._noise_var()) * ratio), dtype=torch.float64))
        with torch.no_grad():
            kernel.log_amplitude += 2.0 * math.log(ratio)
        if len(self._Z):
            lo, hi = self._Z.amin(0), self._Z.amax(0)
            half = max(float((hi - lo).max()) / 2, self.config.inducing_spacing)
            kernel.set_input_normalization((lo + hi) / 2, half)
        optimizer = self._make_optimizer(kernel, log_noise)
        optimizer.load_state_dict(copy.deepcopy(self._optimizer.state_dict()))
        xy, t, yn = self._stored_samples(float(mean), scale)
        phi = ou_correlation(torch.from_numpy(t - self._t), self._tau)
        fit = BoundFit(kernel, log_noise, optimizer, self.config.jitter,
                       self.config.noise_floor)
        job = Adaptation(fit, float(mean), scale, point, Future())
        args = (self._Z.clone(), xy, phi, yn, self.config.adapt_steps * rounds)
        self._job = job
        if self.config.adapt_in_background:
            if self._executor is None:  # torch's intra-op thread count is per thread
                self._executor = ThreadPoolExecutor(
                    1, thread_name_prefix='gp-adaptation', initializer=torch.set_num_threads,
                    initargs=(self.config.num_threads or torch.get_num_threads(),))
            job.future = self._executor.submit(fit.run, *args)
        else:
            fit.run(*args)
            job.future.set_result(None)
            self._finish_adaptation()

    def _finish_adaptation(self) -> None:
        """Adopt the fitted hyperparameters and units of the job in flight (waiting for it)
        and re-express the belief under the new prior: rebuilt exactly from the stored
        samples while they are all stored, else by `reprior` (the data's site kept)."""
        job, self._job = self._job, None
        job.future.result()   # a failure in the worker raises here
        ratio = self._scale / job.scale
        prior_mean = torch.full_like(self._m, (self._mu - job.mu) / job.scale)
        K_old = self._K * ratio ** 2   # the old prior in the new units
        m_old, P_old = ratio * self._m + prior_mean, self._P * ratio ** 2
        self._mu, self._scale = job.mu, job.scale
        self.kernel.load_state_dict(job.fit.kernel.state_dict())
        with torch.no_grad():
            self._log_noise.copy_(job.fit.log_noise)
        self._optimizer.load_state_dict(job.fit.optimizer.state_dict())
        if isinstance(self.kernel, AttentiveKernel):  # the spacing may have grown meanwhile
            self.kernel.lift_ladder(self._spacing / 2)

        EZ, K = self._kernel_matrix()
        self._ind.assign(E=EZ, K=K)
        self._refresh_inverse()
        self._cache = None
        if self._buffer.complete:
            # Every sample is at hand: the exact sparse posterior under the new kernel.
            t_end, self._t = self._t, None
            self._ind.assign(m=torch.zeros_like(m_old), P=self._K)
            self._assimilate(*self._stored_samples(self._mu, self._scale), place=False)
            self._t = max(self._t, t_end)
        else:
            m_new, P_new = reprior(m_old, P_old, prior_mean, K_old, self._K)
            self._ind.assign(m=m_new, P=P_new)


def _reversed_jittered(D: Tensor) -> Tensor:
    """D with both indices reversed and ``_FACTOR_JITTER`` added to its diagonal."""
    F = D.flip(0, 1)
    F.diagonal().add_(_FACTOR_JITTER)
    return F


def check_samples(xy, t, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of samples as float64 arrays, times and values broadcast per sample.

    Raises:
        ValueError: xy is not (N, 2) with N >= 1.
        InvalidInput: ('nan') a non-finite position, time or value.

    Shapes:
        xy: (N, 2), t: (N,) or (), y: (N,) or () -> (N, 2), (N,), (N,)
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise ValueError(f'xy must have shape (N, 2) with N >= 1, got {xy.shape}')
    n = len(xy)
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
    y = np.broadcast_to(np.asarray(y, dtype=np.float64), (n,))
    if not (np.isfinite(xy).all() and np.isfinite(t).all() and np.isfinite(y).all()):
        raise InvalidInput('nan', 'non-finite position, time or value')
    return xy, t, y


def write_snapshot(state: dict, path) -> None:
    """``torch.save`` a snapshot atomically (a crash mid-write keeps the previous file)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.gpmap-', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_snapshot(path: str, kind: str):
    """The object stored in a snapshot file (``torch.load(weights_only=True)``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, when it is not a readable ``kind`` snapshot.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such snapshot file')
    try:
        return torch.load(path, weights_only=True)
    except Exception as error:  # any unpickling / zip failure is a corrupt file
        raise ValueError(f'{path}: not a readable {kind} snapshot ({error})') from error


def check_header(state, kind: str | None, version: int, config: GPMapperConfig) -> None:
    """ValueError unless ``state`` is a snapshot dict of mapper class ``kind`` (a
    composite one such as `drifting.DriftingFieldMapper`; None: a `GPMapper`, whose
    snapshots have none), of ``version``, stored with ``config``."""
    if not isinstance(state, dict):
        raise ValueError(f'snapshot is a {type(state).__name__}, not a dict')
    stored = state.get('kind')
    if stored != kind:
        raise ValueError(f'a snapshot of a {stored or "GPMapper"}, not of a {kind or "GPMapper"}'
                         f' (GPMapperConfig.static_background selects the model)')
    if state.get('version') != version:
        raise ValueError(f'snapshot version {state.get("version")!r}, expected {version}')
    differs = config_differences(state.get('config'), config)
    if differs:
        raise ValueError(f'snapshot config differs in: {", ".join(differs)}')


# Configuration fields that do not change a GPMapper's state (the model selector read by
# drifting.make_mapper; where adaptations run): a snapshot saved before they existed, or
# with another value, restores the same model.
_SELECTOR_FIELDS = ('static_background', 'adapt_in_background')


def config_differences(stored, config: GPMapperConfig) -> list[str]:
    """Names of the fields in which a snapshot's stored configuration differs from
    ``config`` (missing or extra ones included), the model selectors excepted."""
    if not isinstance(stored, dict):
        return ['(no configuration stored)']
    current = asdict(config)
    names = [f.name for f in fields(config) if f.name not in _SELECTOR_FIELDS]
    differs = [n for n in names if n not in stored or stored[n] != current[n]]
    return differs + sorted(set(stored) - set(names) - set(_SELECTOR_FIELDS))
