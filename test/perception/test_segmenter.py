"""Segmenter inference API and safe checkpoint loading."""
import numpy as np
import pytest
import torch

from asv_autonomy.perception.model import PolylineVAE, SegmenterConfig
from asv_autonomy.perception.segmenter import CheckpointError, Segmentation, Segmenter

SMALL = SegmenterConfig(input_width=64, input_height=48, bands=8, channels=(8, 8, 8, 8),
                        hidden=16)


@pytest.fixture
def segmenter():
    torch.manual_seed(0)
    return Segmenter(PolylineVAE(SMALL))


@pytest.mark.parametrize('size', [(48, 64), (384, 512), (31, 97), (200, 120)])
def test_segment_any_input_size(segmenter, size):
    h, w = size
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    result = segmenter.segment(rgb)
    assert isinstance(result, Segmentation)
    assert result.polyline.shape == (8, 2) and result.sigma.shape == (8,)
    assert result.mask.shape == (h, w) and result.mask.dtype == np.uint8
    assert result.boundary_rows.shape == (w,)
    assert set(np.unique(result.mask)) <= {0, 255}
    assert (result.sigma > 0).all()
    # Vertices at the band centres of the input image, rows inside [-0.5, h - 0.5].
    np.testing.assert_allclose(result.polyline[:, 0], (np.arange(8) + 0.5) * w / 8 - 0.5)
    assert (result.polyline[:, 1] >= -0.5).all() and (result.polyline[:, 1] <= h - 0.5).all()
    # The mask is exactly "below the boundary row" of every column.
    below = np.arange(h)[:, None] > result.boundary_rows[None, :]
    assert ((result.mask > 0) == below).all()


def test_segment_batch_matches_single_frames(segmenter):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
              rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)]
    batch = segmenter.segment_batch(frames)
    assert len(batch) == 2 and segmenter.segment_batch([]) == []
    for frame, result in zip(frames, batch):
        single = segmenter.segment(frame)
        np.testing.assert_allclose(result.polyline, single.polyline, atol=1e-4)


@pytest.mark.parametrize('bad', [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((10, 10, 3), np.float32), np.zeros((1, 10, 3), np.uint8)])
def test_segment_rejects_malformed_images(segmenter, bad):
    with pytest.raises(ValueError):
        segmenter.segment(bad)


def test_checkpoint_round_trip(segmenter, tmp_path):
    path = tmp_path / 'seg.pt'
    segmenter.save(path, {'command': 'test', 'seed': 3})
    loaded = Segmenter.load(path)
    assert loaded.config == SMALL
    assert loaded.metadata == {'command': 'test', 'seed': 3}
    rgb = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.segment(rgb).polyline, segmenter.segment(rgb).polyline)
    # Loadable with weights_only (no pickled code).
    blob = torch.load(path, weights_only=True)
    assert blob['format'] == 'asv_autonomy.segmentation'


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path):
    missing = tmp_path / 'nope.pt'
    with pytest.raises(CheckpointError, match='nope.pt'):
        Segmenter.load(missing)
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'not a checkpoint at all' * 10)
    with pytest.raises(CheckpointError, match='corrupt.pt') as info:
        Segmenter.load(corrupt)
    assert info.value.path == str(corrupt) and 'readable' in info.value.reason


def test_truncated_checkpoint(segmenter, tmp_path):
    path = tmp_path / 'cut.pt'
    segmenter.save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match='cut.pt'):
        Segmenter.load(path)


def test_mismatched_checkpoint(segmenter, tmp_path):
    path = tmp_path / 'mismatch.pt'
    segmenter.save(path)
    blob = torch.load(path, weights_only=True)
    blob['config']['hidden'] = 32                      # weights no longer fit
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match='mismatch.pt.*do not match'):
        Segmenter.load(path)
    blob['config'] = {'bogus': 1}
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match='bad config'):
        Segmenter.load(path)
    torch.save({'state_dict': {}}, path)
    with pytest.raises(CheckpointError, match='not a segmentation checkpoint'):
        Segmenter.load(path)


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'format': 'asv_autonomy.segmentation', 'payload': object()}, path)
    with pytest.raises(CheckpointError, match='evil.pt'):
        Segmenter.load(path)


def test_non_finite_weights_are_refused(segmenter, tmp_path):
    path = tmp_path / 'nan.pt'
    segmenter.save(path)
    blob = torch.load(path, weights_only=True)
    key = next(k for k, v in blob['state_dict'].items() if v.is_floating_point())
    blob['state_dict'][key].fill_(float('nan'))
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match='non-finite'):
        Segmenter.load(path)
