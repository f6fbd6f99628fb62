"""Segmentation benchmark: metrics on hand-made masks, dataset pairing, method runs."""
import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from asv_autonomy.perception.benchmark import (DatasetError, boundary_error, boundary_from_mask,
                                               example_indices, load_dataset,
                                               polyline_from_boundary, run_method, water_iou,
                                               write_json)


def test_boundary_from_mask_is_the_top_of_the_run_from_the_bottom():
    mask = np.zeros((6, 4), bool)
    mask[3:, 0] = True            # run rows 3..5 -> 3
    mask[:, 1] = True             # all water -> 0
    mask[1, 2] = True             # water not connected to the bottom -> 6 (none)
    mask[4:, 3] = True            # run 4..5; an island above it is ignored
    mask[1, 3] = True
    np.testing.assert_array_equal(boundary_from_mask(mask), [3, 0, 6, 4])


def test_iou_and_boundary_error_exact_values():
    truth = np.zeros((10, 4), bool)
    truth[5:] = True                                  # 20 pixels, boundary 5 everywhere
    pred = np.zeros((10, 4), bool)
    pred[5:, :2] = True                               # columns 0, 1 right
    pred[7:, 2:] = True                               # columns 2, 3 two rows short
    assert water_iou(pred, truth) == pytest.approx(16 / 20)
    assert boundary_error(pred, truth) == pytest.approx((0 + 0 + 2 + 2) / 4)
    assert water_iou(truth, truth) == 1.0 and boundary_error(truth, truth) == 0.0
    empty = np.zeros((10, 4), bool)
    assert water_iou(empty, empty) == 1.0            # nothing to find, nothing found
    assert water_iou(empty, truth) == 0.0
    assert boundary_error(empty, truth) == pytest.approx(5.0)
    with pytest.raises(ValueError, match='same shape'):
        water_iou(pred[:9], truth)


def test_polyline_from_boundary_samples_band_centres():
    rows = np.arange(8, dtype=float) * 2.0            # v = 2 u
    poly = polyline_from_boundary(rows, 4)
    np.testing.assert_allclose(poly[:, 0], [0.5, 2.5, 4.5, 6.5])
    np.testing.assert_allclose(poly[:, 1], 2.0 * poly[:, 0])


def _write(folder, stem, array):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f'{stem}.png'), array)


def test_load_dataset_pairs_by_stem_and_refuses_missing_masks(tmp_path):
    for stem in ('b', 'a'):
        _write(tmp_path / 'd' / 'images', stem, np.zeros((8, 10, 3), np.uint8))
    _write(tmp_path / 'd' / 'masks', 'a', np.zeros((8, 10), np.uint8))
    with pytest.raises(DatasetError, match='without a mask.*b.png'):
        load_dataset(tmp_path / 'd' / 'images', tmp_path / 'd' / 'masks')
    _write(tmp_path / 'd' / 'masks', 'b', np.zeros((9, 10), np.uint8))
    ds = load_dataset(tmp_path / 'd' / 'images', tmp_path / 'd' / 'masks')
    assert ds.name == 'd' and [p.stem for p in ds.images] == ['a', 'b']
    assert [p.stem for p in ds.masks] == ['a', 'b']
    with pytest.raises(DatasetError, match='9 px'):
        ds.mask(1, (8, 10))
    # A partly labelled sequence: only the masked frames, on request.
    _write(tmp_path / 'd' / 'images', 'c', np.zeros((8, 10, 3), np.uint8))
    (tmp_path / 'd' / 'masks' / 'b.png').unlink()
    part = load_dataset(tmp_path / 'd' / 'images', tmp_path / 'd' / 'masks', masked_only=True)
    assert [p.stem for p in part.images] == ['a'] and [p.stem for p in part.masks] == ['a']
    _write(tmp_path / 'd' / 'masks', 'typo', np.zeros((8, 10), np.uint8))
    with pytest.raises(DatasetError, match='without a frame.*typo'):
        load_dataset(tmp_path / 'd' / 'images', tmp_path / 'd' / 'masks', masked_only=True)
    with pytest.raises(DatasetError, match='does not exist'):
        load_dataset(tmp_path / 'nowhere')
    with pytest.raises(DatasetError, match='no images'):
        load_dataset(tmp_path)


class FixedRows:
    """A fake method: water below a fixed row."""

    def __init__(self, row):
        self.row = row
        self.calls = 0

    def segment(self, rgb):
        self.calls += 1
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[self.row:] = 255
        rows = np.full(rgb.shape[1], float(self.row))
        return SimpleNamespace(mask=mask, polyline=polyline_from_boundary(rows, 4),
                               sigma=np.zeros(4), boundary_rows=rows)


def test_run_method_scores_against_the_masks(tmp_path):
    for i in range(3):
        _write(tmp_path / 'images', f'f{i}', np.full((20, 16, 3), 90, np.uint8))
        truth = np.zeros((20, 16), np.uint8)
        truth[10:] = 1                                     # non-zero = water
        _write(tmp_path / 'masks', f'f{i}', truth)
    ds = load_dataset(tmp_path / 'images', tmp_path / 'masks', name='toy')
    method = FixedRows(12)
    run = run_method(ds, 'fake', method, keep=[1], overlays=tmp_path / 'over')
    r = run.result
    assert r['dataset'] == 'toy' and r['method'] == 'fake' and r['frames'] == 3
    assert r['iou'] == pytest.approx(8 / 10) and r['iou_pooled'] == pytest.approx(0.8)
    assert r['boundary_err_px'] == pytest.approx(2.0)
    assert r['fps'] > 0 and method.calls == 4               # one warm-up call
    assert list(run.examples) == [1]
    assert len(list((tmp_path / 'over').glob('*_fake.jpg'))) == 3
    unlabelled = run_method(load_dataset(tmp_path / 'images'), 'fake', FixedRows(3)).result
    assert unlabelled['iou'] is None and unlabelled['boundary_err_px'] is None
    write_json(tmp_path / 'r.json', [r, dict(unlabelled, fps=math.inf)])
    saved = json.loads((tmp_path / 'r.json').read_text())
    assert saved['results'][0]['iou'] == pytest.approx(0.8)
    assert saved['results'][1]['fps'] is None and saved['results'][1]['iou'] is None


def test_example_indices_spread():
    assert example_indices(10, 3) == [0, 4, 9]
    assert example_indices(2, 5) == [0, 1]
