"""Compute measurement rows (planning/compute.py) on tiny, uncompiled problems."""
import pytest

from asv_autonomy.planning.compute import compute_rows, measure
from asv_autonomy.planning.mppi import MPPIConfig

pytest.importorskip('pytorch_mppi')
KEYS = {'planner', 'device', 'rollouts', 'horizon', 'hz', 'solve_s', 'warmup_s'}


def test_measure_reports_rate_and_time_of_one_optimisation():
    row = measure('asv', 16, 4, repeats=3, config=MPPIConfig(compile=False))
    assert set(row) == KEYS
    assert (row['planner'], row['device'], row['rollouts'], row['horizon']) == ('asv', 'cpu', 16, 4)
    assert row['solve_s'] > 0 and row['hz'] == pytest.approx(1.0 / row['solve_s'])


def test_compute_rows_cover_every_planner_and_size():
    rows = compute_rows(['pytorch-mppi'], 'cpu', sizes=[(8, 3), (16, 3)], repeats=1)
    assert [(r['planner'], r['rollouts']) for r in rows] == [('pytorch-mppi', 8),
                                                            ('pytorch-mppi', 16)]
