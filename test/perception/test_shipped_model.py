"""The shipped default checkpoint models/segmentation.pt: loadable, small, and it works."""
from pathlib import Path

import pytest

from asv_autonomy.perception.segmenter import Segmenter
from asv_autonomy.perception.training import heldout_iou, list_images, read_rgb

MODEL = Path(__file__).resolve().parents[2] / 'models' / 'segmentation.pt'


@pytest.fixture(scope='module')
def shipped():
    if not MODEL.is_file():
        pytest.fail(f'{MODEL} is missing (produce it with `asv train segmentation`)')
    return Segmenter.load(MODEL)


def test_shipped_checkpoint_is_small_and_records_its_command(shipped):
    assert MODEL.stat().st_size < 2_000_000
    meta = shipped.metadata
    assert meta['command'].startswith('asv train segmentation')
    assert isinstance(meta['seed'], int) and meta['steps'] > 0
    lo, hi = meta['sim_seeds']
    assert lo > 99                                   # never trained on held-out seeds
    assert meta['labelled_frames'] == 0              # zero labels


def test_shipped_model_on_held_out_simulated_frames(shipped, one_torch_thread):
    scores = heldout_iou(shipped, seeds=[3, 42], frames_per_seed=3)
    assert scores['frames'] == 6
    assert scores['mean_iou'] > 0.8, scores


def test_shipped_model_on_real_river_frames(shipped, shared_data, one_torch_thread):
    files = list_images(shared_data / 'camera')[::20]
    for result, path in zip(shipped.segment_batch([read_rgb(p) for p in files]), files):
        h, w = result.mask.shape
        # Water at the bottom centre, sky at the top: the line lies inside the frame.
        assert result.mask[-5:, w // 3: 2 * w // 3].mean() > 200, path.name
        assert result.mask[:10].max() == 0, path.name
        assert (result.polyline[:, 1] > 0.2 * h).all(), path.name
