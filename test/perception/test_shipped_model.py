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


RIVER_MODEL = MODEL.with_name('segmentation_river.pt')
RIVER_LABELS = Path(__file__).resolve().parents[2] / 'bench' / 'labels' / 'river'


def test_river_labels_split_the_sequence_in_time():
    """Three labelled frames to refine on, six later ones to test on: none shared, and the
    test frames all come after the training ones (consecutive frames look alike)."""
    train = sorted(p.stem for p in (RIVER_LABELS / 'train').glob('*.png'))
    test = sorted(p.stem for p in (RIVER_LABELS / 'test').glob('*.png'))
    assert len(train) == 3 and len(test) == 6
    assert max(map(int, train)) < min(map(int, test))


def test_river_checkpoint_is_the_few_label_refinement_of_the_default():
    river = Segmenter.load(RIVER_MODEL)
    meta = river.metadata
    assert RIVER_MODEL.stat().st_size < 2_000_000
    assert '--init models/segmentation.pt' in meta['command']
    assert '--masks bench/labels/river/train' in meta['command']
    assert meta['labelled_frames'] == 3 and meta['sim_seeds'][0] > 99


def test_river_checkpoint_on_the_held_out_river_labels(shared_data, one_torch_thread):
    from asv_autonomy.perception.benchmark import load_dataset, water_iou
    dataset = load_dataset(shared_data / 'camera', RIVER_LABELS / 'test', masked_only=True)
    river = Segmenter.load(RIVER_MODEL)
    scores = [water_iou(river.segment(read_rgb(dataset.images[i])).mask,
                  dataset.mask(i, (384, 512))) for i in range(len(dataset))]
    assert len(scores) == 6 and min(scores) > 0.9, scores


def test_river_checkpoint_keeps_the_simulated_frames(one_torch_thread):
    scores = heldout_iou(Segmenter.load(RIVER_MODEL), seeds=[3, 42], frames_per_seed=3)
    assert scores['mean_iou'] > 0.8, scores
