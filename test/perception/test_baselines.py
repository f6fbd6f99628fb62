"""Baselines: the classical segmenter on synthetic scenes, the supervised U-Net."""
import numpy as np
import pytest
import torch

from asv_autonomy.perception.baselines import (ClassicalConfig, ClassicalSegmenter,
                                               UNetCheckpointError, UNetConfig,
                                               UNetSegmenter, UNetTraining, train_unet)
from asv_autonomy.perception.benchmark import boundary_from_mask, water_iou

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def scene(height, width, shore_row, rng, slope=0.0):
    """Sky (light blue) over a green shore band over blue-grey water with waves; the
    waterline at ``shore_row`` (+ slope * column). Returns (rgb, water mask)."""
    v = np.arange(height)[:, None]
    u = np.arange(width)[None, :]
    line = shore_row + slope * (u - width / 2)
    horizon = line - 0.15 * height
    img = np.empty((height, width, 3), np.float32)
    img[:] = (175, 205, 235)                                      # sky
    land = (v >= horizon) & (v < line)
    img[np.broadcast_to(land, (height, width))] = (50, 95, 40)    # trees
    water = np.broadcast_to(v >= line, (height, width))
    depth = np.broadcast_to((v - line) / height, (height, width))
    img[water] = np.stack([60 + 30 * depth, 85 + 30 * depth, 120 + 20 * depth],
                          axis=-1)[water]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), water


@pytest.mark.parametrize('size,shore,slope', [((384, 512), 200, 0.0), ((96, 128), 55, 0.1),
                                              ((240, 180), 150, -0.15)])
def test_classical_finds_the_waterline_of_a_two_colour_scene(size, shore, slope):
    rgb, water = scene(*size, shore, np.random.default_rng(0), slope)
    seg = ClassicalSegmenter().segment(rgb)
    assert seg.mask.shape == size and seg.mask.dtype == np.uint8
    assert water_iou(seg.mask > 0, water) > 0.97
    err = np.abs(boundary_from_mask(seg.mask > 0) - boundary_from_mask(water))
    assert np.median(err) <= 0.02 * size[0] + 2
    assert seg.polyline.shape == (32, 2) and seg.boundary_rows.shape == (size[1],)
    # The polyline lies on the mask's boundary.
    cols = np.clip(np.rint(seg.polyline[:, 0]).astype(int), 0, size[1] - 1)
    np.testing.assert_allclose(seg.polyline[:, 1], seg.boundary_rows[cols], atol=1.0)


def test_classical_refuses_bad_input_and_config():
    with pytest.raises(ValueError, match='uint8'):
        ClassicalSegmenter().segment(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match='threshold'):
        ClassicalConfig(threshold=0.0)


def _tiny_set(n, rng, config):
    images, masks = [], []
    for _ in range(n):
        rgb, water = scene(config.input_height, config.input_width,
                           int(rng.integers(20, 40)), rng, slope=rng.uniform(-0.1, 0.1))
        images.append(torch.from_numpy(rgb).permute(2, 0, 1))
        masks.append(torch.from_numpy(water.astype(np.float32))[None])
    return torch.stack(images), torch.stack(masks)


def test_unet_learns_a_tiny_synthetic_set_and_round_trips(tmp_path):
    config = UNetConfig(input_width=64, input_height=48, width=4, bands=8)
    rng = np.random.default_rng(1)
    lines = []
    seg = train_unet(UNetTraining(steps=60, batch=4, lr=1e-2), config, progress=lines.append,
                     data=_tiny_set(16, rng, config))
    assert lines and 'loss' in lines[-1]
    rgb, water = scene(96, 128, 55, rng, slope=0.05)          # any input size
    out = seg.segment(rgb)
    assert out.mask.shape == (96, 128) and out.polyline.shape == (8, 2)
    assert water_iou(out.mask > 0, water) > 0.9
    seg.save(tmp_path / 'unet.pt')
    again = UNetSegmenter.load(tmp_path / 'unet.pt')
    np.testing.assert_array_equal(again.segment(rgb).mask, out.mask)
    assert again.metadata['steps'] == 60


def test_unet_checkpoint_errors_name_the_file(tmp_path):
    bad = tmp_path / 'corrupt.pt'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(UNetCheckpointError, match='corrupt.pt'):
        UNetSegmenter.load(bad)
    other = tmp_path / 'other.pt'
    torch.save({'kind': 'something else'}, other)
    with pytest.raises(UNetCheckpointError, match='other.pt: not a U-Net'):
        UNetSegmenter.load(other)
    mismatched = tmp_path / 'mismatched.pt'
    seg = UNetSegmenter(__import__('asv_autonomy.perception.baselines',
                                   fromlist=['TinyUNet']).TinyUNet(4), UNetConfig(width=4))
    seg.save(mismatched)
    blob = torch.load(mismatched, weights_only=True)
    blob['config']['width'] = 6
    torch.save(blob, mismatched)
    with pytest.raises(UNetCheckpointError, match='mismatched.pt: does not match'):
        UNetSegmenter.load(mismatched)
    with pytest.raises(UNetCheckpointError, match='no such file'):
        UNetSegmenter.load(tmp_path / 'missing.pt')


def test_training_refuses_held_out_seeds():
    with pytest.raises(ValueError, match='held out'):
        UNetTraining(seeds=(5, 1000))
