"""Mapping benchmark (`asv bench mapping`): data, sampling orders, models, metrics, report.

Pure module (numpy / torch / gpytorch / pypolo); the command line lives in cli/bench.py.

Protocol, identical for every model:

* **Data.** A grid (cells with a finite value are samples; coordinates from longitude /
  latitude arrays projected to metres, else ``index * cell_size``) or scattered samples
  (CSV, geographic coordinates projected to metres about the data's centre).
* **Split.** For each (n, seed) the training set is the first n samples of an order
  (``random``: a seeded shuffle; ``track``: file order for scattered samples, a lawnmower
  path for grids); every model of that (n, seed) gets the same split. The held-out set is
  every sample not trained on, randomly subsampled (seeded) to at most ``max_eval``.
  (In ``track`` order the training set does not depend on the seed; the seed still
  changes model initialisation and the held-out subsample.)
* **Standardisation.** Fitted on the training set only: inputs are centred on the
  training bounding box and divided by half its longest side (isotropic, so distances keep
  their meaning for isotropic kernels; training inputs lie in [-1, 1]); values are
  standardised to zero mean, unit variance. Every model sees the same standardised data
  and predictions are mapped back to field units before scoring.
* **Static fields.** The benchmark files hold one survey of a static field, so every
  sample is stamped t = 0 s for the spatio-temporal mapper.
* **Budgets.** The streaming mappers see each training sample once, in order, ``batch``
  per ``update`` call, adapting their hyperparameters online as configured; the batch
  models optimise the marginal likelihood of all n samples: ``exact-rbf`` / ``sgpr``
  ``iters`` Adam steps at lr 0.1, ``pypolo-ak`` 10 x ``iters`` steps at PyPolo's lr 0.01
  (same step-size budget). Every RBF model starts from lengthscale 0.2 (standardised).
  Each model is warmed up once on a tiny field before the first measured run.
* **Figures** per (model, n, seed): rmse, mae, nlpd (Gaussian, observation predictive
  std = latent + noise), coverage95 on the held-out set; fit_s, the wall time of fitting
  or streaming all n (prediction caches included); update_ms_p50 / _p95 over the
  ``update`` calls (NaN for batch models); predict_ms_10k, the median of 3 predictions of
  mean and std on a 100 x 100 grid over the data's extent; peak_rss_mb, see PeakMemory.
  A model skipped at this n (O(n^3) models above their limit) or failing has NaN figures
  and a ``note``.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import lzma
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asv_autonomy.geodesy import Datum, LocalENU

MODELS = ('asv', 'asv-stationary', 'exact-rbf', 'sgpr', 'pypolo-ak')
ORDERS = ('random', 'track')
RESULT_KEYS = ('model', 'n', 'seed', 'rmse', 'mae', 'nlpd', 'coverage95', 'fit_s',
               'update_ms_p50', 'update_ms_p95', 'predict_ms_10k', 'peak_rss_mb')
Z95 = 1.959963984540054          # two-sided 95 % quantile of the standard normal
PREDICT_POINTS = 10_000          # predict_ms_10k: a 100 x 100 grid over the data's extent
PREDICT_CHUNK = 2048             # batch models predict in chunks to bound memory
LON_NAMES = ('longitude', 'lon')
LAT_NAMES = ('latitude', 'lat')


class FieldFileError(ValueError):
    """A field file that cannot be used; the message names the file and the problem."""


# ----------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class GridInfo:
    """Where the samples of a gridded dataset sit in the grid.

    cells: (N,) row-major flat index of each sample's cell (sorted; NaN cells left out).
    xy: (rows, cols, 2) [m] coordinates of every cell, NaN cells included (for maps).
    """

    cells: np.ndarray
    xy: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.xy.shape[:2]


@dataclass(frozen=True)
class Dataset:
    """Samples of a field: ``xy`` (N, 2) [m] east/north, ``values`` (N,) [field unit].
    ``grid`` is set for gridded files."""

    name: str
    xy: np.ndarray
    values: np.ndarray
    grid: GridInfo | None = None

    def __len__(self) -> int:
        return len(self.values)


def load_field(path: Path, cell_size: float = 1.0, key: str | None = None) -> Dataset:
    """Read a benchmark field.

    Args:
        path: ``.npy`` (2-D array), ``.npz`` (a 2-D array, optional ``longitude`` /
            ``latitude`` arrays), ``.csv`` or ``.csv.xz`` (columns ``x``, ``y`` [m] or
            ``longitude``, ``latitude`` [deg], and a value column; ``,`` or ``;``
            separated, with ``;`` a decimal comma is accepted).
        cell_size: [m] grid spacing when the grid has no longitude / latitude arrays.
        key: the array of an ``.npz`` or the value column of a CSV, when there are several.

    Raises:
        FieldFileError: unreadable or unusable file (message names file and problem).
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise FieldFileError(f'{path}: no such file')
    try:
        if name.endswith('.npy'):
            return _grid_dataset(path, _load_npy(path), None, cell_size)
        if name.endswith('.npz'):
            grid, lonlat = _load_npz(path, key)
            return _grid_dataset(path, grid, lonlat, cell_size)
        if name.endswith('.csv') or name.endswith('.csv.xz'):
            return _load_csv(path, key)
    except FieldFileError:
        raise
    except (OSError, ValueError, EOFError, lzma.LZMAError, UnicodeDecodeError) as error:
        raise FieldFileError(f'{path}: {error}') from error
    raise FieldFileError(f'{path}: unsupported file type (expected .npy, .npz, .csv or '
                         f'.csv.xz)')


def _load_npy(path: Path) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2:
        raise FieldFileError(f'{path}: expected a 2-D array, got shape {array.shape}')
    return array


def _load_npz(path: Path, key: str | None):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    listing = ', '.join(f'{k} {v.shape}' for k, v in arrays.items()) or 'none'
    if key is not None:
        if key not in arrays or arrays[key].ndim != 2:
            raise FieldFileError(f'{path}: no 2-D array {key!r} (arrays: {listing})')
        grid = arrays[key]
    else:
        grids = [k for k, v in arrays.items() if v.ndim == 2
                 and k not in LON_NAMES + LAT_NAMES]
        if len(grids) != 1:
            raise FieldFileError(f'{path}: expected exactly one 2-D array, found '
                                 f'{len(grids)} (arrays: {listing}); choose one with --key')
        grid = arrays[grids[0]]
    lon = next((arrays[k] for k in LON_NAMES if k in arrays), None)
    lat = next((arrays[k] for k in LAT_NAMES if k in arrays), None)
    if (lon is None) != (lat is None):
        raise FieldFileError(f'{path}: has only one of longitude / latitude (arrays: '
                             f'{listing})')
    if lon is None:
        return grid, None
    rows, cols = grid.shape
    if lon.ndim == 1 and lat.ndim == 1 and lon.shape == (cols,) and lat.shape == (rows,):
        lon, lat = np.meshgrid(lon, lat)
    elif not (lon.shape == lat.shape == grid.shape):
        raise FieldFileError(f'{path}: longitude {lon.shape} / latitude {lat.shape} do not '
                             f'match the grid {grid.shape} (1-D of length cols / rows, or '
                             f'2-D like the grid)')
    return grid, (lon.astype(float), lat.astype(float))


def _grid_dataset(path: Path, grid: np.ndarray, lonlat, cell_size: float) -> Dataset:
    if not np.issubdtype(grid.dtype, np.number) or np.issubdtype(grid.dtype, np.complexfloating):
        raise FieldFileError(f'{path}: grid must be real numbers, got dtype {grid.dtype}')
    grid = grid.astype(float)
    rows, cols = grid.shape
    if lonlat is None:
        if not (math.isfinite(cell_size) and cell_size > 0.0):
            raise FieldFileError(f'{path}: cell size must be > 0 m, got {cell_size}')
        row, col = np.mgrid[0:rows, 0:cols].astype(float)
        xy = np.stack([col * cell_size, row * cell_size], axis=-1)
    else:
        x, y = _project(path, *lonlat)
        xy = np.stack([x, y], axis=-1)
    cells = np.flatnonzero(np.isfinite(grid))
    if len(cells) < 3:
        raise FieldFileError(f'{path}: needs at least 3 finite cells, has {len(cells)}')
    return Dataset(path.name, xy.reshape(-1, 2)[cells], grid.ravel()[cells],
                   GridInfo(cells, xy))


def _load_csv(path: Path, key: str | None) -> Dataset:
    opener = lzma.open if path.name.lower().endswith('.xz') else open
    with opener(path, 'rt', encoding='utf-8') as stream:
        header = stream.readline().strip().lstrip('\ufeff')
        if not header:
            raise FieldFileError(f'{path}: empty file (expected a header line)')
        separator = ';' if header.count(';') > header.count(',') else ','
        columns = [c.strip().strip('"\'').lower() for c in header.split(separator)]
        if {'x', 'y'} <= set(columns):
            coordinates, geographic = ('x', 'y'), False
        else:
            lon = next((c for c in LON_NAMES if c in columns), None)
            lat = next((c for c in LAT_NAMES if c in columns), None)
            if lon is None or lat is None:
                raise FieldFileError(f'{path}: needs columns x, y or longitude, latitude; '
                                     f'has {", ".join(columns)}')
            coordinates, geographic = (lon, lat), True
        others = [c for c in columns if c not in coordinates]
        if key is not None:
            if key.lower() not in others:
                raise FieldFileError(f'{path}: no value column {key!r} (columns: '
                                     f'{", ".join(columns)})')
            value = key.lower()
        elif len(others) == 1:
            value = others[0]
        else:
            raise FieldFileError(f'{path}: expected one value column besides '
                                 f'{", ".join(coordinates)}, found {others or "none"}; '
                                 f'choose one with --key')
        usecols = [columns.index(c) for c in (*coordinates, value)]
        converters = (lambda s: float(s.replace(',', '.'))) if separator == ';' else None
        table = np.loadtxt(stream, delimiter=separator, usecols=usecols, ndmin=2,
                           converters=converters, dtype=float)
    table = table[np.isfinite(table).all(axis=1)]
    if len(table) < 3:
        raise FieldFileError(f'{path}: needs at least 3 rows with finite values, has '
                             f'{len(table)}')
    if geographic:
        x, y = _project(path, table[:, 0], table[:, 1])
    else:
        x, y = table[:, 0], table[:, 1]
    return Dataset(path.name, np.stack([x, y], axis=1), table[:, 2].copy())


def _project(path: Path, lon: np.ndarray, lat: np.ndarray):
    """Longitude / latitude [deg] -> east / north [m] about the centre of the data."""
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise FieldFileError(f'{path}: longitude / latitude must be finite')
    if np.abs(lat).max() >= 90.0 or lon.min() < -180.0 or lon.max() > 360.0:
        raise FieldFileError(f'{path}: latitude must be in (-90, 90) deg and longitude in '
                             f'[-180, 360] deg')
    # Unwrap about one sample so that 0..360 and -180..180 and the antimeridian all work.
    reference = lon.flat[0]
    unwrapped = (lon - reference + 180.0) % 360.0 - 180.0 + reference
    centre_lon = (unwrapped.min() + unwrapped.max()) / 2.0
    centre_lon = (centre_lon + 180.0) % 360.0 - 180.0
    datum = Datum(latitude=float((lat.min() + lat.max()) / 2.0), longitude=float(centre_lon))
    east, north, _ = LocalENU(datum).to_enu(lat, lon)
    return east, north


# ---------------------------------------------------------------------------------- split

def lawnmower_cells(valid: np.ndarray, n: int) -> np.ndarray:
    """A lawnmower survey of a grid with n samples.

    Lanes run along the rows, alternating direction, evenly spaced across the grid; the
    stations along a lane have the same spacing as the lanes, so the n samples cover the
    whole grid. Cells without a value are skipped.

    Args:
        valid: (rows, cols) bool, cells that hold a value.
        n: samples wanted, 1 <= n <= valid.sum().

    Returns:
        (n,) row-major flat cell indices in the order the path visits them.
    """
    rows, cols = valid.shape
    if not 1 <= n <= valid.sum():
        raise ValueError(f'n must be in [1, {valid.sum()}], got {n}')
    flat_valid = valid.ravel()
    spacing = math.sqrt(rows * cols / n)        # [cells]
    while True:
        lanes = np.unique(np.minimum(np.arange(spacing / 2, rows, spacing), rows - 1)
                          .astype(int))
        stations = np.unique(np.minimum(np.arange(spacing / 2, cols, spacing), cols - 1)
                             .astype(int))
        path = np.concatenate([lane * cols + (stations if k % 2 == 0 else stations[::-1])
                               for k, lane in enumerate(lanes)])
        path = path[flat_valid[path]]
        if len(path) >= n:
            break
        spacing *= 0.9      # below one cell every cell is on the path, so this ends
    # Keep n stations spread evenly along the path (steps >= 1, so all distinct).
    return path[np.round(np.linspace(0, len(path) - 1, n)).astype(int)]


def split(dataset: Dataset, order: str, n: int, seed: int, max_eval: int):
    """Training and held-out sample indices for one (n, seed).

    Returns:
        train (n,) in streaming order, heldout (<= max_eval,) sorted.
    """
    total = len(dataset)
    if not 1 <= n < total:
        raise ValueError(f'n must be in [1, {total - 1}] (some samples must be held out), '
                         f'got {n}')
    rng = np.random.default_rng(seed)
    if order == 'random':
        permutation = rng.permutation(total)
        train, rest = permutation[:n], permutation[n:]
    elif order == 'track':
        if dataset.grid is None:
            train = np.arange(n)
        else:
            valid = np.zeros(math.prod(dataset.grid.shape), bool)
            valid[dataset.grid.cells] = True
            path = lawnmower_cells(valid.reshape(dataset.grid.shape), n)
            train = np.searchsorted(dataset.grid.cells, path)
        rest = np.setdiff1d(np.arange(total), train)
    else:
        raise ValueError(f'order must be one of {ORDERS}, got {order!r}')
    if len(rest) > max_eval:
        rest = rng.choice(rest, max_eval, replace=False)
    return train, np.sort(rest)


@dataclass(frozen=True)
class Standardisation:
    """Affine maps fitted on the training set (see the module docstring)."""

    centre: np.ndarray   # (2,) [m]
    scale: float         # [m] per unit
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, xy: np.ndarray, y: np.ndarray) -> Standardisation:
        low, high = xy.min(axis=0), xy.max(axis=0)
        half = float((high - low).max()) / 2.0
        std = float(y.std())
        return cls((low + high) / 2.0, half if half > 0 else 1.0, float(y.mean()),
                   std if std > 0 else 1.0)

    def x(self, xy: np.ndarray) -> np.ndarray:
        return (xy - self.centre) / self.scale

    def y(self, values: np.ndarray) -> np.ndarray:
        return (values - self.y_mean) / self.y_std

    def back(self, mean: np.ndarray, std: np.ndarray):
        return mean * self.y_std + self.y_mean, std * self.y_std


# -------------------------------------------------------------------------------- metrics

def gaussian_metrics(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict:
    """Scores of Gaussian predictions N(mean, std^2) of observations y (all (N,)).

    Returns:
        rmse, mae [field unit]; nlpd: mean negative log predictive density (Gaussian, in
        the field's unit, lower is better); coverage95: fraction of y inside
        mean +- 1.96 std.
    """
    error = y - mean
    variance = std ** 2
    return {
        'rmse': float(np.sqrt(np.mean(error ** 2))),
        'mae': float(np.mean(np.abs(error))),
        'nlpd': float(np.mean(0.5 * np.log(2 * np.pi * variance) + error ** 2 / (2 * variance))),
        'coverage95': float(np.mean(np.abs(error) <= Z95 * std)),
    }


# --------------------------------------------------------------------------------- models

@dataclass(frozen=True)
class BenchSettings:
    """Budgets shared by the models.

    Args:
        inducing: M, inducing points of ``sgpr`` and the streaming mappers.
        iters: Adam steps (lr 0.1) on the marginal likelihood for ``exact-rbf`` and
            ``sgpr``; ``pypolo-ak`` takes 10x as many at PyPolo's own learning rates
            (0.01 hyperparameters, 0.001 network), the same step-size budget.
        batch: samples per ``GPMapper.update`` call of the streaming mappers.
        max_eval: held-out samples scored per run (random subsample above this).
        exact_limit: ``exact-rbf`` is skipped above this n (O(n^3)).
        pypolo_limit: ``pypolo-ak`` is skipped above this n (O(n^3), and its attentive
            kernel keeps one n x n matrix per lengthscale for backpropagation).
        threads: CPU threads of the streaming mappers (``GPMapperConfig.num_threads``);
            0 = the mapper's default (one). The gpytorch / PyPolo peers use torch's setting.
        adapt_in_background: the streaming mappers' ``GPMapperConfig.adapt_in_background``
            (as in the mapping node). Samples are streamed back to back, far faster than a
            sensor delivers them, so the worker lags many adaptation points behind (they
            are merged) and the worker thread competes with the updates for the GIL.
    """

    inducing: int = 256
    iters: int = 100
    batch: int = 10
    max_eval: int = 10_000
    exact_limit: int = 5000
    pypolo_limit: int = 2000
    threads: int = 0
    adapt_in_background: bool = False

    def __post_init__(self):
        for name in ('inducing', 'iters', 'batch', 'max_eval', 'exact_limit', 'pypolo_limit'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.threads < 0:
            raise ValueError(f'threads must be >= 0, got {self.threads}')


class Skipped(Exception):
    """A model that does not run for this n; the message says why (recorded as `note`)."""


class MapModel:
    """Adapter interface: ``fit`` on standardised training samples in streaming order,
    returning the per-update latencies [s] (empty for batch models); ``predict``
    returns the mean and the *observation* std (latent + noise) at standardised points."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        raise NotImplementedError

    def predict(self, x: np.ndarray):
        raise NotImplementedError


INITIAL_LENGTHSCALE = 0.2   # standardised units (training extent = 2): every RBF model


INITIAL_SPACING = 0.02   # standardised units, see StreamingMapper


class StreamingMapper(MapModel):
    """The project's GPMapper, fed ``batch`` samples per ``update`` call in order.

    Default GPMapperConfig except ``max_inducing`` = M, ``seed``, the kernel
    (``asv-stationary``: 'rbf') and its two lengths (standardised units: the training box
    spans [-1, 1]): ``inducing_spacing`` starts fine (``INITIAL_SPACING``; the mapper
    coarsens it evenly once the budget M is full, so a fine start uses the whole budget,
    where extent / sqrt(M) left half of it unused on survey tracks) and the initial
    ``lengthscale`` is the one the gpytorch models start from. The mapper normalises values itself (running
    mean / std), so it gets no hindsight of the training set's statistics beyond the
    shared standardisation.
    """

    def __init__(self, settings: BenchSettings, seed: int, kernel: str | None):
        from asv_autonomy.mapping.gp import GPMapper, GPMapperConfig
        overrides = {'max_inducing': settings.inducing, 'seed': seed,
                     'inducing_spacing': INITIAL_SPACING,
                     'lengthscale': INITIAL_LENGTHSCALE}
        if kernel is not None:
            overrides['kernel'] = kernel
        if settings.threads:
            overrides['num_threads'] = settings.threads
        if settings.adapt_in_background:
            overrides['adapt_in_background'] = True
        self.mapper = GPMapper(GPMapperConfig(**overrides))
        self.batch = settings.batch

    def fit(self, x, y):
        latencies = []
        t = np.zeros(len(y))
        for start in range(0, len(y), self.batch):
            stop = start + self.batch
            begin = time.perf_counter()
            self.mapper.update(x[start:stop], t[start:stop], y[start:stop])
            latencies.append(time.perf_counter() - begin)
        return latencies

    def predict(self, x):
        self.mapper.settle()   # the map as it stands when the stream ends
        return self.mapper.predict(x, include_noise=True)


class _GPyTorchModel(MapModel):
    """gpytorch regression with a constant mean and a scaled RBF kernel, float64, trained
    with Adam (lr 0.1) on the exact marginal likelihood (of the SGPR approximation for
    the inducing-point kernel). Initial lengthscale 0.2, noise variance 0.1 (standardised
    units)."""

    LR = 0.1

    def __init__(self, settings: BenchSettings, seed: int):
        import gpytorch     # imported here, not while fit is timed
        self.gpytorch = gpytorch
        self.settings = settings
        self.seed = seed

    def _covariance(self, x, likelihood):
        raise NotImplementedError

    def _train_settings(self):
        return contextlib.nullcontext()

    def fit(self, x, y):
        import torch
        gpytorch = self.gpytorch
        torch.manual_seed(self.seed)
        x_t = torch.as_tensor(x, dtype=torch.float64)
        y_t = torch.as_tensor(y, dtype=torch.float64)
        likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
        likelihood.noise = 0.1
        model = _exact_gp(x_t, y_t, likelihood, self._covariance(x, likelihood)).double()
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.LR)
        model.train()
        with self._train_settings():
            for _ in range(self.settings.iters):
                optimizer.zero_grad()
                loss = -mll(model(x_t), y_t)
                loss.backward()
                optimizer.step()
        model.eval()
        self.model, self.likelihood = model, likelihood
        self._prepare(x_t, y_t)     # prediction caches are part of fitting
        return []

    def _prepare(self, x, y):
        self.predict(x[:1].numpy())


def _rbf_kernel(gpytorch):
    kernel = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())
    kernel.base_kernel.lengthscale = INITIAL_LENGTHSCALE
    return kernel


def _exact_gp(x, y, likelihood, covariance):
    """gpytorch ExactGP with a constant mean (class built here: gpytorch loads lazily)."""
    import gpytorch

    class ExactGP(gpytorch.models.ExactGP):
        def __init__(self):
            super().__init__(x, y, likelihood)
            self.mean_module = gpytorch.means.ConstantMean()
            self.covar_module = covariance

        def forward(self, inputs):
            return gpytorch.distributions.MultivariateNormal(
                self.mean_module(inputs), self.covar_module(inputs))

    return ExactGP()


class ExactRBF(_GPyTorchModel):
    """Exact GP, Cholesky throughout (no conjugate gradients). Predictions use the
    closed-form posterior with the trained hyperparameters and a cached Cholesky factor:
    the same numbers as gpytorch's predictive (to 1e-12) without its per-call overhead,
    which at 10k points is 10-40x the arithmetic."""

    def __init__(self, settings, seed, n):
        if n > settings.exact_limit:
            raise Skipped(f'skipped: exact GP above {settings.exact_limit} samples')
        super().__init__(settings, seed)

    def _covariance(self, x, likelihood):
        return _rbf_kernel(self.gpytorch)

    def _train_settings(self):
        return self.gpytorch.settings.max_cholesky_size(10 ** 9)

    def _prepare(self, x, y):
        import torch
        with torch.no_grad():
            self.kernel = self.model.covar_module
            self.noise = float(self.likelihood.noise)
            self.constant = float(self.model.mean_module.constant)
            covariance = self.kernel(x).to_dense()
            covariance.diagonal().add_(self.noise)
            self.cholesky = torch.linalg.cholesky(covariance)
            self.alpha = torch.cholesky_solve((y - self.constant).unsqueeze(1), self.cholesky)
            self.x_train = x

    def predict(self, x):
        import torch
        means, stds = [], []
        with torch.no_grad():
            prior = float(self.kernel.outputscale)
            for start in range(0, len(x), PREDICT_CHUNK):
                chunk = torch.as_tensor(x[start:start + PREDICT_CHUNK], dtype=torch.float64)
                cross = self.kernel(chunk, self.x_train).to_dense()        # (Q, n)
                means.append((cross @ self.alpha).squeeze(1) + self.constant)
                v = torch.linalg.solve_triangular(self.cholesky, cross.T, upper=False)
                variance = (prior - v.square().sum(0)).clamp_min(0) + self.noise
                stds.append(variance.sqrt())
        return torch.cat(means).numpy(), torch.cat(stds).numpy()


class SGPR(_GPyTorchModel):
    """Titsias' SGPR (gpytorch InducingPointKernel) with M inducing points initialised by
    k-means on the training inputs (then learned with the hyperparameters); all n
    samples. Predictions: gpytorch's SGPR prediction strategy (O(M^2) per point)."""

    def _covariance(self, x, likelihood):
        import torch
        from scipy.cluster.vq import kmeans2
        m = min(self.settings.inducing, len(x))
        rng = np.random.default_rng(self.seed)
        sample = x[rng.choice(len(x), min(len(x), 20 * m), replace=False)]
        centres, _ = kmeans2(sample, sample[rng.choice(len(sample), m, replace=False)],
                             iter=10, minit='matrix', seed=self.seed)
        return self.gpytorch.kernels.InducingPointKernel(
            _rbf_kernel(self.gpytorch),
            inducing_points=torch.as_tensor(centres, dtype=torch.float64),
            likelihood=likelihood)

    def predict(self, x):
        import torch
        means, stds = [], []
        with torch.no_grad():
            for start in range(0, len(x), PREDICT_CHUNK):
                chunk = torch.as_tensor(x[start:start + PREDICT_CHUNK], dtype=torch.float64)
                out = self.likelihood(self.model(chunk))
                means.append(out.mean.numpy())
                stds.append(out.variance.clamp_min(0).sqrt().numpy())
        return np.concatenate(means), np.concatenate(stds)


class PypoloAK(MapModel):
    """PyPolo 0.0.3's attentive-kernel GP (pypolo.kernels.AK + pypolo.models.GPR) with
    the settings of PyPolo's experiments: 10 primitive lengthscales linspace(0.01, 0.5),
    a 10-unit two-hidden-layer network, amplitude 1, noise variance 1, Adam at lr 0.01
    (hyperparameters) / 0.001 (network) for 10 x ``iters`` steps; exact GP."""

    def __init__(self, settings: BenchSettings, seed: int, n: int):
        if n > settings.pypolo_limit:
            raise Skipped(f'skipped: PyPolo exact attentive-kernel GP above '
                          f'{settings.pypolo_limit} samples')
        from pypolo.kernels import AK       # imported here, not while fit is timed
        from pypolo.models import GPR
        self.AK, self.GPR = AK, GPR
        self.settings = settings
        self.seed = seed

    def fit(self, x, y):
        import torch
        torch.manual_seed(self.seed)
        with contextlib.redirect_stdout(io.StringIO()):      # AK prints its lengthscales
            kernel = self.AK(amplitude=1.0, lengthscales=np.linspace(0.01, 0.5, 10),
                        dim_input=2, dim_hidden=10, dim_output=10)
            self.model = self.GPR(x, y.reshape(-1, 1), kernel, noise=1.0, lr_hyper=0.01,
                             lr_nn=0.001, is_normalized=False)
            self.model.optimize(10 * self.settings.iters, verbose=False)
        return []

    def predict(self, x):
        means, stds = [], []
        with contextlib.redirect_stdout(io.StringIO()):      # it prints before raising
            for start in range(0, len(x), PREDICT_CHUNK):
                mean, std = self.model(x[start:start + PREDICT_CHUNK], noise_free=False)
                means.append(mean.ravel())
                stds.append(std.ravel())
        return np.concatenate(means), np.concatenate(stds)


def make_model(name: str, settings: BenchSettings, seed: int, n: int) -> MapModel:
    """The adapter of a model name (raises Skipped when it does not run at this n)."""
    if name == 'asv':
        return StreamingMapper(settings, seed, kernel=None)
    if name == 'asv-stationary':
        return StreamingMapper(settings, seed, kernel='rbf')
    if name == 'exact-rbf':
        return ExactRBF(settings, seed, n)
    if name == 'sgpr':
        return SGPR(settings, seed)
    if name == 'pypolo-ak':
        return PypoloAK(settings, seed, n)
    raise ValueError(f'unknown model {name!r} (one of {", ".join(MODELS)})')


# -------------------------------------------------------------------------------- running

class PeakMemory:
    """Peak resident-set growth [MB] of the block, Linux: freed heap is handed back
    (malloc_trim) and the kernel's high-water mark reset (/proc/self/clear_refs 5)
    before, VmHWM - VmRSS(before) after. Where the reset is not allowed the growth of
    getrusage's ru_maxrss is used instead, a lower bound when an earlier block peaked
    higher. NaN where neither is available."""

    def __enter__(self):
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        self.reset = False
        with contextlib.suppress(OSError):
            Path('/proc/self/clear_refs').write_text('5')
            self.reset = True
        self.before_kb = _status_kb('VmRSS') if self.reset else _maxrss_kb()
        return self

    def __exit__(self, *exc):
        after = _status_kb('VmHWM') if self.reset else _maxrss_kb()
        self.mb = (after - self.before_kb) / 1024.0
        return False


def _status_kb(field: str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return float(line.split()[1])
    return math.nan


def _maxrss_kb() -> float:
    try:
        import resource
    except ImportError:
        return math.nan
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def prediction_grid(dataset: Dataset) -> np.ndarray:
    """(10000, 2) [m]: a 100 x 100 grid over the bounding box of all samples."""
    side = int(math.isqrt(PREDICT_POINTS))
    low, high = dataset.xy.min(axis=0), dataset.xy.max(axis=0)
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], side), np.linspace(low[1], high[1], side))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def empty_result(model: str, n: int, seed: int, note: str) -> dict:
    result = {k: math.nan for k in RESULT_KEYS}
    result.update(model=model, n=n, seed=seed, note=note)
    return result


@dataclass
class MapPrediction:
    """What the map panels of the plot need from one run (points in [m], field units)."""

    model: str
    n: int
    train_xy: np.ndarray     # (n, 2)
    points: np.ndarray       # (Q, 2)
    mean: np.ndarray         # (Q,)
    std: np.ndarray          # (Q,) observation std


def run_one(dataset: Dataset, model: str, n: int, seed: int, train: np.ndarray,
            heldout: np.ndarray, settings: BenchSettings,
            map_points: np.ndarray | None = None):
    """Fit one model on ``train``, score it on ``heldout``.

    Returns:
        (result dict with RESULT_KEYS, plus ``note`` when the model was skipped or failed;
        MapPrediction at ``map_points`` when given and the model ran, else None)
    """
    scaling = Standardisation.fit(dataset.xy[train], dataset.values[train])
    x_train, y_train = scaling.x(dataset.xy[train]), scaling.y(dataset.values[train])
    try:
        adapter = make_model(model, settings, seed, n)
    except Skipped as skipped:
        return empty_result(model, n, seed, str(skipped)), None
    try:
        with PeakMemory() as memory:
            begin = time.perf_counter()
            latencies = adapter.fit(x_train, y_train)
            fit_s = time.perf_counter() - begin
            mean, std = scaling.back(*adapter.predict(scaling.x(dataset.xy[heldout])))
            grid = scaling.x(prediction_grid(dataset))
            adapter.predict(grid[:100])          # warm-up
            timings = []
            for _ in range(3):
                begin = time.perf_counter()
                adapter.predict(grid)
                timings.append(time.perf_counter() - begin)
    except Exception as error:  # noqa: BLE001 - a failing model is a result, not a crash
        return empty_result(model, n, seed, f'failed: {type(error).__name__}: {error}'), None
    result = {'model': model, 'n': n, 'seed': seed}
    result.update(gaussian_metrics(dataset.values[heldout], mean, std))
    milliseconds = 1e3 * np.asarray(latencies)
    result.update(
        fit_s=fit_s,
        update_ms_p50=float(np.percentile(milliseconds, 50)) if len(latencies) else math.nan,
        update_ms_p95=float(np.percentile(milliseconds, 95)) if len(latencies) else math.nan,
        predict_ms_10k=1e3 * float(np.median(timings)),
        peak_rss_mb=memory.mb)
    snapshot = None
    if map_points is not None:
        map_mean, map_std = scaling.back(*adapter.predict(scaling.x(map_points)))
        snapshot = MapPrediction(model, n, dataset.xy[train], map_points, map_mean, map_std)
    return result, snapshot


def warm_up(model: str, settings: BenchSettings) -> None:
    """Fit and predict once on a tiny field, so that one-time costs (lazy imports,
    first-call kernel dispatch, allocator growth) do not land on the first measured run."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.0, 100.0, (60, 2))
    data = Dataset('warm-up', xy, np.sin(xy[:, 0] / 20.0))
    train, heldout = split(data, 'random', 40, 0, 20)
    run_one(data, model, 40, 0, train, heldout,
            BenchSettings(inducing=min(settings.inducing, 16), iters=2, batch=settings.batch))


# ------------------------------------------------------------------------- JSON and plot

MAP_SAMPLES = 20_000     # scattered data: samples drawn on the map panels
MAP_SIDE = 200           # grids: cells per side on the map panels (strided above this)


def map_samples(dataset: Dataset, seed: int = 0) -> np.ndarray:
    """Indices of the samples the map panels show: the grid strided to at most
    MAP_SIDE cells a side, or a random subset of at most MAP_SAMPLES scattered samples."""
    if dataset.grid is None:
        if len(dataset) <= MAP_SAMPLES:
            return np.arange(len(dataset))
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(len(dataset), MAP_SAMPLES, replace=False))
    stride = _map_stride(dataset.grid)
    rows, cols = np.divmod(dataset.grid.cells, dataset.grid.shape[1])
    return np.flatnonzero((rows % stride == 0) & (cols % stride == 0))


def _map_stride(grid: GridInfo) -> int:
    return max(1, math.ceil(max(grid.shape) / MAP_SIDE))


def write_json(path: Path, dataset_name: str, results: list[dict]) -> None:
    """``{"dataset", "results"}``; figures that do not apply are NaN, written as the bare
    ``NaN`` that Python's json module (and JavaScript's JSON5, pandas, jq 1.7) read."""
    import json
    path.write_text(json.dumps({'dataset': dataset_name, 'results': results},
                               indent=1, allow_nan=True) + '\n')


def plot(path: Path, dataset: Dataset, results: list[dict],
         snapshot: MapPrediction | None, map_index: np.ndarray | None) -> None:
    """Figure comparing the models: RMSE, NLPD, coverage and fit time against n (mean over
    seeds, bars min..max), and truth / mean / std maps of one model at the largest n."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(17, 9.5), layout='constrained')
    top, bottom = figure.subfigures(2, 1, height_ratios=(1, 1.25))
    axes = top.subplots(1, 4)
    models = list(dict.fromkeys(r['model'] for r in results))
    metrics = (('rmse', 'RMSE'), ('nlpd', 'NLPD'), ('coverage95', '95 % coverage'),
               ('fit_s', 'fit time [s]'))
    for ax, (key, label) in zip(axes, metrics):
        for model in models:
            ns, centre, low, high = _summary(results, model, key)
            if len(ns):
                ax.errorbar(ns, centre, yerr=[centre - low, high - centre], marker='o',
                            capsize=3, label=model)
        ax.set_xscale('log')
        ax.set_xlabel('training samples n')
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[2].axhline(0.95, color='k', lw=0.8, ls='--')
    axes[3].set_yscale('log')
    axes[0].legend(fontsize=8)
    top.suptitle(f'{dataset.name}: held-out samples')

    panels = bottom.subplots(1, 3, sharex=True, sharey=True)
    if snapshot is None or map_index is None:
        for ax in panels:
            ax.set_axis_off()
        panels[1].text(0.5, 0.5, 'no map: the model of the map panels did not run',
                       ha='center', transform=panels[1].transAxes)
    else:
        truth = dataset.values[map_index]
        low, high = np.nanpercentile(truth, [1, 99])
        for ax, values, title, cmap, limits in (
                (panels[0], truth, 'truth', 'viridis', (low, high)),
                (panels[1], snapshot.mean, f'{snapshot.model} mean (n = {snapshot.n})',
                 'viridis', (low, high)),
                (panels[2], snapshot.std, f'{snapshot.model} std (observation)',
                 'magma', (None, None))):
            artist = _draw_map(ax, dataset, map_index, values, cmap, limits)
            figure.colorbar(artist, ax=ax, shrink=0.8)
            ax.set_title(title)
            ax.set_aspect('equal')
            ax.set_xlabel('east [m]')
        panels[0].set_ylabel('north [m]')
        shown = snapshot.train_xy[::max(1, len(snapshot.train_xy) // 5000)]
        panels[2].plot(shown[:, 0], shown[:, 1], '.', color='c', ms=1.5, alpha=0.6,
                       label='training samples')
        panels[2].legend(loc='upper right', fontsize=8, markerscale=5)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _summary(results, model, key):
    """n, mean, min, max over the seeds of the finite ``key`` values of one model."""
    by_n: dict[int, list[float]] = {}
    for r in results:
        if r['model'] == model and math.isfinite(r[key]):
            by_n.setdefault(r['n'], []).append(r[key])
    ns = sorted(by_n)
    values = [np.asarray(by_n[n]) for n in ns]
    return (np.asarray(ns), np.array([v.mean() for v in values]),
            np.array([v.min() for v in values]), np.array([v.max() for v in values]))


def _draw_map(ax, dataset, index, values, cmap, limits):
    vmin, vmax = limits
    if dataset.grid is None:
        xy = dataset.xy[index]
        return ax.scatter(xy[:, 0], xy[:, 1], c=values, s=2, cmap=cmap, vmin=vmin,
                          vmax=vmax, linewidths=0)
    stride = _map_stride(dataset.grid)
    image = np.full(math.prod(dataset.grid.shape), np.nan)
    image[dataset.grid.cells[index]] = values
    image = image.reshape(dataset.grid.shape)[::stride, ::stride]
    xy = dataset.grid.xy[::stride, ::stride]
    return ax.pcolormesh(xy[..., 0], xy[..., 1], np.ma.masked_invalid(image), cmap=cmap,
                         vmin=vmin, vmax=vmax, shading='nearest')
