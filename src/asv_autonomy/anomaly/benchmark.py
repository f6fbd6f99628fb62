"""Anomaly benchmark: the graph detector against classical baselines on the same data.

Every method is fitted on the same normal training series (the last quarter of each
calibrates its alarm threshold to the same false-alarm rate) and scored on the same
held-out labelled series; the metrics are :func:`.metrics.evaluate_many` pooled per
(dataset, fault) test set, plus ``all`` over every fault of the dataset. Methods:

* ``asv``: :class:`~.detector.AnomalyDetector` (contrastive + forecasting; the fault-type
  head when labelled series are given);
* ``asv-no-contrastive``: the same without the contrastive loss (ablation);
* ``pca``, ``isolation-forest``: :mod:`.baselines`.

The data (simulated missions, NMEA logs) are prepared by the caller (``asv bench
anomaly``), so this module stays free of the simulator and of files.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .baselines import BASELINES, BaselineConfig
from .detector import AnomalyDetector, DetectorConfig
from .metrics import evaluate_many
from .series import AlignedSeries

__all__ = ['METHODS', 'DatasetSplit', 'fit_method', 'benchmark_dataset', 'window_latency_ms']

METHODS = ('asv', 'asv-no-contrastive', 'pca', 'isolation-forest')
METRICS = ('auroc', 'f1_event', 'f1_point', 'detection_delay_s', 'false_alarms_per_hour',
           'attribution_accuracy')


@dataclass
class DatasetSplit:
    """One dataset of the benchmark.

    Args:
        name: dataset name in the results ('sim', 'plaka', ...).
        train: normal series to fit on.
        tests: fault name -> labelled held-out series.
        labelled: a few labelled series for the fault-type head (may be empty).
        detector: detector settings (its ``rate_hz`` must match the series).
        extra_tests: more (dataset name -> {fault -> series}) scored with the same fitted
            models, e.g. real GPS loss in other logs of the same kind.
    """

    name: str
    train: list[AlignedSeries]
    tests: dict[str, list[AlignedSeries]]
    labelled: list[AlignedSeries] = dataclasses.field(default_factory=list)
    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    extra_tests: dict[str, dict[str, list[AlignedSeries]]] = dataclasses.field(
        default_factory=dict)


def fit_method(method: str, split: DatasetSplit, progress: Callable | None = None):
    """Fit ``method`` on ``split.train``; returns (model with ``score(series)``, train_s)."""
    start = time.perf_counter()
    if method in ('asv', 'asv-no-contrastive'):
        config = split.detector
        if method == 'asv-no-contrastive':
            config = dataclasses.replace(config, training=dataclasses.replace(
                config.training, contrastive_weight=0.0))
        model = AnomalyDetector(config)
        model.fit(split.train, labelled=split.labelled, progress=progress)
    elif method in BASELINES:
        base = split.detector
        config = BaselineConfig(false_alarms_per_hour=base.false_alarms_per_hour,
                                alarm_gap_s=base.alarm_gap_s, smoothing=base.smoothing)
        model = BASELINES[method](config).fit(split.train)
    else:
        raise ValueError(f'unknown method {method!r}; choose from {", ".join(METHODS)}')
    return model, time.perf_counter() - start


def _row(dataset: str, fault: str, method: str, pairs) -> dict:
    metrics = evaluate_many(pairs)
    return {'dataset': dataset, 'fault': fault, 'method': method,
            **{k: float(metrics[k]) for k in METRICS}}


def score_tests(model, method: str, dataset: str, tests: dict[str, list[AlignedSeries]],
                scored: dict | None = None) -> list[dict]:
    """Rows of one fitted method on one dataset's test sets (per fault, then 'all');
    ``scored`` (if given) receives ``(dataset, fault) -> [(series, scores), ...]``."""
    rows, everything = [], []
    for fault, series in tests.items():
        pairs = [(s, model.score(s)) for s in series]
        if scored is not None:
            scored[dataset, fault] = pairs
        everything += pairs
        rows.append(_row(dataset, fault, method, pairs))
    if len(tests) > 1:
        rows.append(_row(dataset, 'all', method, everything))
    return rows


def benchmark_dataset(split: DatasetSplit, methods=METHODS, say: Callable[[str], None] = print,
                      progress_factory: Callable | None = None):
    """Fit every method on ``split`` and score its tests.

    Returns:
        (rows, train_s per method, fitted models per method, scored pairs per method).
    """
    rows, train_s, models, scored = [], {}, {}, {}
    for method in methods:
        progress = progress_factory(f'{split.name} {method}') if progress_factory else None
        model, seconds = fit_method(method, split, progress)
        train_s[method], models[method] = seconds, model
        say(f'{split.name}: {method} fitted in {seconds:.1f} s')
        scored[method] = {}
        rows += score_tests(model, method, split.name, split.tests, scored[method])
        for name, tests in split.extra_tests.items():
            rows += score_tests(model, method, name, tests, scored[method])
    return rows, train_s, models, scored


def window_latency_ms(detector: AnomalyDetector, series: AlignedSeries,
                      windows: int = 200) -> float:
    """Median wall time [ms] of :meth:`AnomalyDetector.score_window` (the node's call)
    over ``windows`` consecutive windows of ``series``."""
    rows = detector.config.rows_needed
    values = series.select(detector.channels).values
    if len(values) < rows + 1:
        raise ValueError(f'series too short for one window of {rows} rows')
    ends = np.linspace(rows, len(values), num=min(windows, len(values) - rows + 1), dtype=int)
    memory = detector.score_memory()
    times = []
    for end in ends:
        start = time.perf_counter()
        detector.score_window(values[end - rows:end], memory, series.times[end - rows:end])
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)) if times else math.nan
