"""Robust per-channel scores, smoothing, alarm events and threshold calibration."""
import numpy as np
import pytest

from asv_autonomy.anomaly.scoring import (ScoreMemory, ScoreStatistics, alarm_events,
                                          calibrate_threshold, channel_scores, long_mean,
                                          raw_errors, smooth, window_gains)


def test_raw_errors_are_zero_where_the_target_is_missing():
    raw = raw_errors(np.array([[1.0, 5.0]]), np.array([[3.0, -2.0]]), np.array([[1.0, 0.0]]))
    assert raw[:, 0, 0].tolist() == [2.0, 3.0] and raw[:, 0, 1].tolist() == [0.0, 0.0]


def test_statistics_and_channel_scores():
    errors = np.tile(np.arange(101.0), (2, 1)).T          # (101, 2): 0..100
    raw = np.stack([errors, errors * 0.5])
    observed = np.ones((101, 2), bool)
    observed[:, 1] = False                                # channel 1 never observed
    stats = ScoreStatistics.fit(raw, observed, quantile=0.9, min_scale=0.05)
    assert stats.centre[:, 0] == pytest.approx([50.0, 25.0])
    assert stats.scale[:, 0] == pytest.approx([40.0, 20.0])
    assert stats.scale[:, 1] == pytest.approx([0.05, 0.05])
    probe = np.stack([np.array([[90.0, 7.0]]), np.array([[0.0, 7.0]])])
    both = channel_scores(probe, np.array([[True, False]]), stats, level_weight=1.0)
    assert both[0].tolist() == pytest.approx([1.0, 0.0])  # z_forecast 1; missing scores 0
    # A large level with a small forecast error still scores when the level counts.
    probe = np.stack([np.array([[50.0, 0.0]]), np.array([[65.0, 0.0]])])
    observed_0 = np.array([[True, False]])
    assert channel_scores(probe, observed_0, stats, 1.0)[0, 0] == pytest.approx(2.0)
    assert channel_scores(probe, observed_0, stats, 0.0)[0, 0] == pytest.approx(0.0)


def test_smooth_is_a_causal_moving_average():
    x = np.array([3.0, 0.0, 0.0, 6.0, 0.0])
    assert smooth(x, 3).tolist() == pytest.approx([3.0, 1.5, 1.0, 2.0, 2.0])
    assert smooth(x, 1) is x


def test_alarm_events_merge_close_runs():
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 1], bool)
    assert alarm_events(flags) == [(1, 3), (5, 6), (9, 10)]
    assert alarm_events(flags, gap_steps=2) == [(1, 6), (9, 10)]
    assert alarm_events(np.zeros(4, bool)) == []


def test_threshold_allows_the_target_number_of_events():
    score = np.zeros(3600)
    score[[100, 1000, 2000, 3000]] = [5.0, 4.0, 3.0, 2.0]   # four excursions in one hour
    # 2 events per hour over 1 h: the 3rd highest peak must stay below the threshold.
    threshold = calibrate_threshold([score], hours=1.0, alarms_per_hour=2.0, gap_steps=0,
                                    margin=1.0)
    assert 3.0 <= threshold < 4.0
    assert len(alarm_events(score > threshold)) <= 2
    # Less than an hour for 1/h: nothing may alarm, margin on top of the maximum.
    assert calibrate_threshold([score], hours=0.5, alarms_per_hour=1.0, gap_steps=0,
                               margin=1.2) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        calibrate_threshold([score], hours=1.0, alarms_per_hour=0.0, gap_steps=0)


def test_window_gains_put_each_channels_normal_mean_below_the_threshold():
    rng = np.random.default_rng(0)
    quiet = np.abs(rng.standard_normal((600, 3))) * [1.0, 0.2, 0.0]   # channel 2 never scores
    gains = window_gains([quiet[:300], quiet[300:]], steps=50, threshold=3.0, margin=1.5)
    highest = np.max([long_mean(quiet[:300], 50).max(0), long_mean(quiet[300:], 50).max(0)], 0)
    assert gains[:2] == pytest.approx(3.0 / (1.5 * highest[:2]), rel=1e-5)
    assert gains[2] == 0.0
    # The quieter channel gets the larger gain: the same mean is more unusual there.
    assert gains[1] > 4 * gains[0]
    # Nothing as long as the window: no normal level, no long-window alarm.
    assert np.all(window_gains([quiet[:20]], steps=50, threshold=3.0, margin=1.5) == 0)
    with pytest.raises(ValueError, match='margin'):
        window_gains([quiet], steps=50, threshold=3.0, margin=0.5)
    # One step: the gain on the unsmoothed score, from its highest normal value.
    peak = window_gains([quiet[:300], quiet[300:]], steps=1, threshold=3.0, margin=2.0)
    assert peak[:2] == pytest.approx(3.0 / (2.0 * quiet.max(0)[:2]), rel=1e-5)
    assert peak[2] == 0.0


def test_long_mean_is_zero_until_the_window_is_full():
    x = np.ones((10, 2))
    mean = long_mean(x, 4)
    assert np.all(mean[:3] == 0) and np.all(mean[3:] == 1)


def test_score_memory_gives_the_offline_long_mean_and_tolerates_repeats_and_gaps():
    rng = np.random.default_rng(1)
    rows = rng.random((40, 2)).astype(np.float32)
    times = 100.0 + 0.1 * np.arange(40)
    offline = long_mean(rows, 8)
    memory = ScoreMemory(steps=8, dt=0.1)
    for i in range(40):
        # Each call brings the last 3 rows (overlapping the previous call's), as windows do.
        memory.add(times[max(0, i - 2):i + 1], rows[max(0, i - 2):i + 1])
        mean = memory.mean()
        if i < 7:
            assert mean is None
        else:
            assert mean == pytest.approx(offline[i], rel=1e-6)
    # A skipped step (a lagging stream) is left out of the mean, not filled in.
    memory.add([times[-1] + 0.2], [[10.0, 10.0]])
    assert memory.mean() == pytest.approx(np.mean(np.vstack([rows[-6:], [[10.0, 10.0]]]), 0))
