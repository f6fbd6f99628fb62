"""Normalisation and windowing, missing channels included."""
import numpy as np
import pytest
import torch

from asv_autonomy.anomaly.series import AlignedSeries
from asv_autonomy.anomaly.windows import Normaliser, make_windows, normalise


def _series(values, channels=('a', 'b', 'c')):
    values = np.asarray(values, dtype=np.float32)
    return AlignedSeries(np.arange(len(values)) * 0.1, values, channels)


def test_normaliser_uses_median_and_iqr_of_training_data_only():
    a = np.arange(1.0, 102.0)                     # median 51, IQR 50
    b = np.full(101, 3.0)                         # constant: scale 1
    c = np.full(101, np.nan)                      # never observed: centre 0, scale 1
    norm = Normaliser.fit([_series(np.stack([a, b, c], 1))])
    assert norm.centre == pytest.approx([51.0, 3.0, 0.0])
    assert norm.scale == pytest.approx([50.0 / 1.3489795, 1.0, 1.0], rel=1e-5)
    values, mask = norm.transform(np.array([[51.0 + norm.scale[0], 5.0, np.nan]]))
    assert values == pytest.approx(np.array([[1.0, 2.0, 0.0]]))
    assert mask.tolist() == [[1.0, 1.0, 0.0]]


def test_normaliser_clips_and_rejects_wrong_channel_count():
    norm = Normaliser(np.zeros(2), np.ones(2), clip=5.0)
    values, _ = norm.transform(np.array([[100.0, -100.0]]))
    assert values.tolist() == [[5.0, -5.0]]
    with pytest.raises(ValueError, match='expected 2 channels'):
        norm.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        Normaliser(np.zeros(2), np.array([1.0, 0.0]))


def test_windows_with_a_missing_channel_have_masks_and_no_nan():
    n = 12
    values = np.stack([np.arange(n), 10 + np.arange(n), np.arange(n)], 1).astype(float)
    values[4:9, 1] = np.nan                      # channel b drops out (e.g. a GPS outage)
    values[:, 2] = np.nan                        # channel c is never there
    norm = Normaliser(np.zeros(3), np.ones(3))
    x, mask = normalise(_series(values), norm)
    windows = make_windows(x, mask, length=3, stride=2)
    # Targets at steps 3, 5, 7, 9, 11; window k covers the 3 steps before its target.
    assert windows.end_index.tolist() == [3, 5, 7, 9, 11]
    assert windows.x.shape == (5, 3, 3) and windows.target.shape == (5, 3)
    assert windows.x[1, 0].tolist() == [2.0, 3.0, 4.0]
    assert windows.target[1, 0] == 5.0
    # Window 1 covers steps 2..4: b present at 2 and 3, missing at 4.
    assert windows.mask[1, 1].tolist() == [1.0, 1.0, 0.0]
    assert windows.x[1, 1].tolist() == [12.0, 13.0, 0.0]
    assert windows.target_mask[:, 1].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert windows.mask[:, 2].sum() == 0 and windows.target_mask[:, 2].sum() == 0
    for tensor in (windows.x, windows.mask, windows.target, windows.target_mask):
        assert torch.isfinite(tensor).all()


def test_too_short_series_gives_no_windows():
    windows = make_windows(torch.zeros(3, 2), torch.ones(3, 2), length=3)
    assert len(windows) == 0 and windows.x.shape == (0, 2, 3)
    with pytest.raises(ValueError):
        make_windows(torch.zeros(3, 2), torch.ones(3, 2), length=0)
