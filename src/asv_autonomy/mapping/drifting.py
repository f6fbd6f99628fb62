"""A static background map under a fading anomaly map (`DriftingFieldMapper`), and the
factory that picks a field's mapper from its configuration (`make_mapper`, `load_mapper`).

Why. A `GPMapper` with ``temporal_timescale`` tau > 0 lets ALL evidence fade towards the
prior: a survey line run 20 minutes ago reverts to the field's mean although most of the
field (shallow warming, large-scale gradients, bathymetry-driven structure) has not
changed. Oceanographic objective analysis maps such fields as a climatology plus an
anomaly: the slowly varying background from all data, and the deviation from it mapped
with a short memory.

Model. f(x, t) = g(x) + h(x, t): g is a static GP map of every reading (``background``,
``temporal_timescale`` 0), h a fading GP map of what the background did not predict
(``anomaly``, the configured tau, with its own output normalisation and hyperparameters,
so its amplitude is learned from the residuals). For each batch the residual
y - g(x) is computed with the background's mean BEFORE the background assimilates the
batch (the innovation: what the past readings did not explain; 0 for the first batch,
when the background has no mean yet); then the background assimilates y and the anomaly
the residuals. Where the field is steady the innovations are small (along a track the
background already predicts the next reading) and the anomaly stays near zero; where it
changes, e.g. on a revisit, the anomaly holds the change, which fades after about tau
while the background keeps its long memory; the anomaly fades to its prior mean, the
running mean of the innovations (about 0). (A residual against the background's mean
AFTER it assimilated the batch gives the anomaly only what the background smoothed away:
on test_drifting's drifting plume the map's RMSE was 0.50 degC against 0.38.)

This approximates the GP with the sum kernel k_s + k_s' k_t (a static part plus an OU
part) by two independent filters: the exact posterior would split each innovation
between the parts in proportion to their prior variances and correlate them; here the
background takes every reading whole and the anomaly the innovation, so right after a
change the composite can overshoot by the background's share of it (at most its gain)
until the anomaly fades. The predictive variance is the sum of the parts' latent
variances (independent parts, as in the sum-kernel prior), plus the background's noise
variance with ``include_noise`` (see `noise_std`).

Limits. A reading seen once goes whole into the background, so a transient crossed once
(a warm patch of the simulator's pulsed plume under a lawnmower that does not come back)
stays in the map as in a static one, and for about tau the anomaly's copy of the
innovation adds to it: in ``asv bench plume`` this map is no better than the static one.
It pays where places are revisited (the change goes to the anomaly) and where old survey
lines hold steady structure that a plain fading map forgets.
"""
from __future__ import annotations

import os
from dataclasses import asdict, replace

import numpy as np

from .gp import (GPMapper, GPMapperConfig, check_header, check_samples, read_snapshot,
                 write_snapshot)

KIND = 'DriftingFieldMapper'   # the ``kind`` of its snapshots (GPMapper ones have none)
SNAPSHOT_VERSION = 1


class DriftingFieldMapper:
    """Static background GP + fading anomaly GP of one scalar field (module docstring).

    Exposes the `GPMapper` interface the callers use (`update`, `predict`,
    `variance_reduction`, `settle`, `close`, snapshots, `num_samples`, `inducing_points`,
    `spacing`, `time`, `noise_std`).

    Args:
        config: the field's `GPMapperConfig`, with ``temporal_timescale`` > 0. The
            background is the same with ``temporal_timescale`` 0, the anomaly the same;
            both with ``static_background`` False (plain `GPMapper`s).

    Raises:
        ValueError: ``temporal_timescale`` is 0 (nothing fades: use a `GPMapper`).
    """

    def __init__(self, config: GPMapperConfig):
        if not config.temporal_timescale > 0.0:
            raise ValueError('DriftingFieldMapper needs temporal_timescale > 0 (a static '
                             'field is a GPMapper)')
        self.config = config
        part = replace(config, static_background=False)
        self.background = GPMapper(replace(part, temporal_timescale=0.0))
        self.anomaly = GPMapper(part)

    # ------------------------------------------------------------------ public API
    @property
    def num_samples(self) -> int:
        """Samples assimilated so far."""
        return self.background.num_samples

    @property
    def inducing_points(self) -> np.ndarray:
        """[m] the background's inducing points (the map's resolution over all the data;
        the anomaly places its own on the same samples). Shapes: -> (M_used, 2)"""
        return self.background.inducing_points

    @property
    def spacing(self) -> float:
        """[m] the background's current inducing spacing."""
        return self.background.spacing

    @property
    def time(self) -> float | None:
        """[s] time of the belief (latest sample time), None before the first sample."""
        return self.anomaly.time

    @property
    def noise_std(self) -> float:
        """[field unit] observation noise std: the background's, fitted to the readings
        themselves (the anomaly's is fitted to innovations, which also carry the
        background's prediction error: it comes out larger)."""
        return self.background.noise_std

    def update(self, xy, t, y) -> None:
        """Assimilate samples: the background takes the values, the anomaly the residuals
        against the background's mean before this batch.

        All-or-nothing like `GPMapper.update`: any non-finite value refuses the whole
        batch with ``InvalidInput('nan')`` and leaves both parts unchanged.

        Args:
            xy: [m] sample positions in ``map``. t: [s] sample times (scalar or per sample).
            y: field values [field unit] (scalar or per sample).

        Shapes:
            xy: (N, 2), t: (N,) or (), y: (N,) or () with N >= 1
        """
        xy, t, y = check_samples(xy, t, y)
        # The innovation (static background: the same at any time). Before its first sample
        # the background's mean is no estimate (its normalisation starts from that sample,
        # an innovation against 0 would put the whole field into the anomaly): the first
        # batch only defines the background.
        residual = (y - self.background.predict_mean(xy) if self.background.num_samples
                    else np.zeros(len(y)))
        self.background.update(xy, t, y)
        self.anomaly.update(xy, t, residual)

    def predict(self, xy, t: float | None = None,
                include_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the field: background + anomaly.

        Args:
            xy: [m] query positions. t: [s] query time of the anomaly (default: its
                belief's time; see `GPMapper.predict`). include_noise: std of an
                observation (adds the noise variance, `noise_std`) instead of the latent
                field.

        Returns:
            mean [field unit], std [field unit]: sqrt of the sum of the parts' variances.

        Shapes:
            xy: (Q, 2) -> (Q,), (Q,)
        """
        mean_g, std_g = self.background.predict(xy, include_noise=include_noise)
        mean_h, std_h = self.anomaly.predict(xy, t)
        return mean_g + mean_h, np.sqrt(std_g ** 2 + std_h ** 2)

    def variance_reduction(self, candidates, targets=None) -> np.ndarray:
        """Expected reduction of the field's mean latent variance over ``targets`` if a
        measurement were taken at each candidate (or candidate set), now.

        The sum of both parts' reductions, each as if the measurement informed it alone:
        an approximation (a joint update would split the measurement between them, so
        this overstates the gain where both parts are uncertain), which ranks candidates
        the way the parts' variances do.

        Args:
            candidates: [m] one point per candidate (C, 2), or a set of S points per
                candidate (C, S, 2).
            targets: [m] where the variance counts (T, 2); default: the background's
                inducing points.

        Returns:
            [field unit^2] mean variance reduction over the targets, per candidate.

        Shapes:
            candidates: (C, 2) or (C, S, 2), targets: (T, 2) -> (C,)
        """
        if targets is None and self.num_samples:
            targets = self.inducing_points
        return (self.background.variance_reduction(candidates, targets)
                + self.anomaly.variance_reduction(candidates, targets))

    # ------------------------------------------------------------------ snapshot
    def settle(self) -> None:
        """Wait for the parts' adaptations in flight and apply them."""
        self.background.settle()
        self.anomaly.settle()

    def close(self) -> None:
        """Stop the parts' adaptations in flight and their worker threads."""
        self.background.close()
        self.anomaly.close()

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this mapper is: both parts."""
        return {'kind': KIND, 'version': SNAPSHOT_VERSION, 'config': asdict(self.config),
                'background': self.background.state_dict(),
                'anomaly': self.anomaly.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output; ValueError (mapper unchanged) when it does not fit."""
        check_header(state, KIND, SNAPSHOT_VERSION, self.config)
        backup = self.background.state_dict()
        for name, part in (('background', self.background), ('anomaly', self.anomaly)):
            try:
                part.load_state_dict(state.get(name))   # a refusal leaves the part as it was
            except ValueError as error:
                self.background.load_state_dict(backup)   # ... and the other part too
                raise ValueError(f'{name}: {error}') from error

    def save(self, path) -> None:
        """Write a snapshot of both parts atomically."""
        write_snapshot(self.state_dict(), path)

    @classmethod
    def load(cls, path, config: GPMapperConfig | None = None) -> 'DriftingFieldMapper':
        """Mapper from a snapshot file written by `save`.

        Args:
            path: snapshot file.
            config: the configuration the caller expects; None = the stored one.

        Raises:
            FileNotFoundError: no such file.
            ValueError: naming the file, when it is corrupt, of another version, of a
                `GPMapper` (a field saved with ``static_background`` False or before it
                existed), or its configuration differs from ``config``.
        """
        path = os.fspath(path)
        state = read_snapshot(path, KIND)
        try:
            if not isinstance(state, dict) or not isinstance(state.get('config'), dict):
                raise ValueError('no configuration in the snapshot')
            mapper = cls(config or GPMapperConfig(**state['config']))
            mapper.load_state_dict(state)
        except (ValueError, TypeError) as error:
            raise ValueError(f'{path}: {error}') from error
        return mapper


Mapper = GPMapper | DriftingFieldMapper


def uses_background(config: GPMapperConfig) -> bool:
    """Whether ``config`` asks for a `DriftingFieldMapper` (a fading field with
    ``static_background``) rather than a `GPMapper`."""
    return config.temporal_timescale > 0.0 and config.static_background


def make_mapper(config: GPMapperConfig) -> Mapper:
    """The mapper a field's configuration asks for: a `DriftingFieldMapper` when
    ``temporal_timescale`` > 0 and ``static_background``, else a `GPMapper`."""
    return DriftingFieldMapper(config) if uses_background(config) else GPMapper(config)


def load_mapper(path, config: GPMapperConfig) -> Mapper:
    """`make_mapper`'s class restored from a snapshot file (its ``load``: ValueError naming
    the file for a snapshot of the other class, a corrupt one or another configuration;
    FileNotFoundError)."""
    cls = DriftingFieldMapper if uses_background(config) else GPMapper
    return cls.load(path, config)
