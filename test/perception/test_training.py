"""The unsupervised objective separates regions; loss terms behave."""
import numpy as np
import pytest
import torch

from asv_autonomy.perception.model import SegmenterConfig
from asv_autonomy.perception.polyline import soft_mask
from asv_autonomy.perception.segmenter import Segmenter
from asv_autonomy.perception.training import (COLOUR_FEATURES, TrainConfig, TrainData,
                                              kl_to_prior, load_labelled, load_masked,
                                              pixel_features, region_nll, region_weights,
                                              smoothness, train, water_iou,
                                              waterline_fringes)

SMALL = SegmenterConfig(input_width=64, input_height=48, bands=8, channels=(8, 12, 16, 16),
                        hidden=32)


def two_region_images(n, rng, width=64, height=48):
    """Flat grey-green top over flat blue bottom (jittered colours, pixel noise), split at a
    random row; returns the images and the true water masks."""
    images = np.empty((n, height, width, 3), np.uint8)
    masks = np.empty((n, height, width), bool)
    for i in range(n):
        split = rng.integers(int(0.3 * height), int(0.8 * height))
        top = np.array([150.0, 170.0, 140.0]) + rng.normal(0, 15, 3)
        bottom = np.array([40.0, 80.0, 150.0]) + rng.normal(0, 15, 3)
        img = np.where(np.arange(height)[:, None, None] < split, top, bottom)
        img = img + rng.normal(0, 4, (height, width, 3))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
        masks[i] = np.arange(height)[:, None] >= split
    return images, masks


def test_region_loss_is_lowest_at_the_true_split():
    rng = np.random.default_rng(1)
    images, masks = two_region_images(1, rng)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    feats = pixel_features(x, 48, 64)
    split = masks[0][:, 0].argmax() / 48
    values = []
    for b in np.linspace(0.2, 0.9, 29):
        water = torch.full((1, 8), float(b))
        weights = region_weights(water, torch.zeros(1, 8), 48, 64, 2.0)
        values.append((float(region_nll(feats, weights)), b))
    best = min(values)[1]
    assert abs(best - split) < 0.05


def test_waterline_bands_keep_a_beach_on_the_shore_and_pale_far_water_in_the_water():
    """Trees, a 3-row beach, the waterline, 3 rows of pale far water, then textured blue
    water: without the bands the pale water goes to the shore (it resembles the beach more
    than the near water); with them the region loss is lowest at the true waterline."""
    rng = np.random.default_rng(2)
    height, width, line = 96, 128, 40
    rows = np.arange(height)[:, None, None]
    trees = np.where(rng.random((height, width, 1)) < 0.5, [60, 100, 50], [40, 80, 40])
    img = np.where(rows < line, trees, [70, 100, 150])
    img = np.where((rows >= line - 3) & (rows < line), [157, 149, 122], img)      # beach
    img = np.where((rows >= line) & (rows < line + 3), [142, 144, 141], img)      # far water
    img = np.clip(img + rng.normal(0, 5, (height, width, 3)), 0, 255)
    feats = pixel_features(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255,
                           height, width)

    def best_row(bands: bool) -> int:
        losses = []
        for row in range(line - 8, line + 9):
            water = torch.full((1, 8), row / height)     # rows >= row are water
            extra = (None, *waterline_fringes(water, height, width, 0.04)) if bands else None
            weights = region_weights(water, torch.zeros(1, 8), height, width, 2.0)
            losses.append((float(region_nll(feats, weights, degree=2, extra=extra,
                                            extra_features=COLOUR_FEATURES)), row))
        return min(losses)[1]

    assert best_row(bands=False) >= line + 3
    assert best_row(bands=True) == line


def test_model_trained_a_few_steps_separates_two_flat_regions(one_torch_thread):
    rng = np.random.default_rng(0)
    images, _ = two_region_images(64, rng)
    test_images, test_masks = two_region_images(16, rng)
    # No waterline bands: at a 24-row loss resolution a band is a whole row thick and would
    # make the split of two flat regions ambiguous by a row (they have their own test).
    tc = TrainConfig(steps=120, batch=8, lr=3e-3, loss_width=32, loss_height=24, seed=0,
                     threads=1, log_every=1000, waterline_fringe=0.0)
    empty = np.zeros((0, 48, 64, 3), np.uint8)
    model = train(TrainData(images, empty, empty, np.zeros((0, 48, 64), bool)), SMALL, tc)
    segmenter = Segmenter(model)
    ious = [water_iou(r.mask > 0, m) for r, m in
            zip(segmenter.segment_batch(list(test_images)), test_masks)]
    assert np.mean(ious) > 0.9, ious


def test_few_labels_alone_train_the_boundary(one_torch_thread):
    rng = np.random.default_rng(2)
    images, masks = two_region_images(32, rng)
    tc = TrainConfig(steps=60, batch=8, lr=3e-3, loss_width=32, loss_height=24, seed=0,
                     threads=1, label_weight=5.0)
    empty = np.zeros((0, 48, 64, 3), np.uint8)
    reports = []
    train(TrainData(empty, empty, images, masks), SMALL, tc, progress=reports.append)
    assert reports and reports[-1]['step'] == 60
    assert reports[-1]['label'] < reports[0]['label']


def test_masks_label_the_frames_of_their_stem(tmp_path):
    import cv2
    rng = np.random.default_rng(3)
    images, masks = two_region_images(4, rng)
    (tmp_path / 'frames').mkdir()
    (tmp_path / 'masks').mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / 'frames' / f'{i:03d}.jpg'), image[..., ::-1])
    for i in (1, 3):
        cv2.imwrite(str(tmp_path / 'masks' / f'{i:03d}.png'), masks[i].astype(np.uint8) * 255)
    frames, labels = load_masked(tmp_path / 'frames', tmp_path / 'masks', 32, 24)
    assert frames.shape == (2, 24, 32, 3) and labels.shape == (2, 24, 32)
    assert labels.dtype == bool
    for label, mask in zip(labels, masks[[1, 3]]):
        split = mask[:, 0].argmax() / 48
        assert abs(label[:, 0].argmax() / 24 - split) <= 1 / 24
    cv2.imwrite(str(tmp_path / 'masks' / '009.png'), masks[0].astype(np.uint8) * 255)
    with pytest.raises(ValueError, match='without a frame.*009'):
        load_masked(tmp_path / 'frames', tmp_path / 'masks', 32, 24)
    (tmp_path / 'none').mkdir()
    with pytest.raises(ValueError, match='no masks'):
        load_masked(tmp_path / 'frames', tmp_path / 'none', 32, 24)
    # The labelled-folder form still wants a mask for every image.
    (tmp_path / 'masks' / '009.png').unlink()
    (tmp_path / 'frames').rename(tmp_path / 'images')
    with pytest.raises(ValueError, match='no mask for 000.jpg'):
        load_labelled(tmp_path, 32, 24)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    mu = torch.full((2, 4), 0.5)
    logvar = torch.full((2, 4), float(np.log(0.09)))
    assert torch.allclose(kl_to_prior(mu, logvar, 0.5, 0.3), torch.zeros(2), atol=1e-6)
    assert (kl_to_prior(mu + 0.1, logvar, 0.5, 0.3) > 0).all()


def test_smoothness_prefers_flat_boundaries():
    flat = torch.full((1, 8), 0.5)
    wavy = flat + 0.1 * torch.tensor([[1., -1.] * 4])
    assert smoothness(flat, 0.01) < 1e-6 < smoothness(wavy, 0.01)


def test_region_weights_partition_the_image():
    water = torch.rand(3, 8)
    top = water * torch.rand(3, 8)
    weights = region_weights(water, top, 24, 32, 0.7)
    total = sum(weights)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)
    assert torch.allclose(weights[2], soft_mask(water, 24, 32, 0.7))
