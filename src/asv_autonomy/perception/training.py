"""Training the polyline VAE without pixel labels.

Objective (per image, averaged over the batch; no pixel labels needed):

* **Region competition** (the reconstruction term): the scene is split by two lines per
  column band into three regions, sky (above the auxiliary shore-top line), shore (between
  it and the waterline) and water (below the waterline, sampled from the posterior with
  the reparameterisation trick and rasterised with ``polyline.soft_mask``). Each region
  has a Gaussian model of per-pixel features (opponent colour, luminance gradients along
  and across rows) whose mean is a quadratic polynomial of the image row (the water gets
  brighter and smoother towards the horizon, the sky paler), plus, for the shore and the
  water, a thin band along the waterline (a beach; far water reflecting the sky:
  ``waterline_fringes``); its parameters are the
  soft-mask-weighted least-squares fit in that image (with a few pseudo-pixels at the
  image's global statistics, so an empty region is harmless). The loss is the mean
  negative log-likelihood of the pixels under their region's model. The three-region
  model is what puts the waterline between shore and water instead of on the sky line:
  with only two regions the strongest split (bright sky against the rest) would win.
* **KL** of the waterline posterior to the wide prior N(prior_mean, prior_std^2) per band.
* **Smoothness**: Charbonnier penalty on differences of neighbouring bands (steps at
  headlands and boats stay cheap).
* **Temporal consistency** (optional): consecutive frames of an image folder (sorted by
  name, one frame apart) should have the same waterline: squared difference of the means.
* **Shore cost**: a small cost for having a shore region in a column band (saturating
  with its height), so that when the scene has fewer than three regions (open water to
  the horizon) the water region is the largest one consistent with the image, while a
  tall shore costs no more than a thin one.
* **Few labels** (optional): binary cross-entropy of the soft mask against label masks.

``train`` renders simulated frames (training look seeds only, 1000+ by default; 0-99 are
held out for evaluation), mixes in real unlabelled frames, augments (horizontal flip,
random crop/zoom, colour jitter) and runs Adam with progress reports.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .benchmark import load_dataset
from .model import PolylineVAE, SegmenterConfig
from .polyline import columns_from_bands, soft_mask

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
# `pixel_features` puts the colour features first. The bands along the waterline shift only
# their means: with texture too, a textured strip at a real far bank (moored boats, house
# fronts) passed for the water's band and the boundary climbed onto the bank.
COLOUR_FEATURES = 3


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, data and loss weights.

    Args:
        steps: Adam steps.
        batch: images per step.
        lr: learning rate (cosine decay to 5 % of it).
        weight_decay: AdamW weight decay.
        seed: seed of every random choice (initial weights, data, augmentation).
        sim_frames: simulated frames rendered before training (0: none).
        sim_seeds: (first, last + 1) look seeds of the simulated frames (held-out
            evaluation seeds 0-99 must not be in it).
        frames_per_seed: simulated frames per look seed.
        real_fraction: share of each batch drawn from the real images (when given).
        loss_width, loss_height: [px] resolution of the feature maps of the region loss.
        kl_weight: weight of the KL term (per band, relative to the per-pixel NLL).
        smooth_weight: weight of the smoothness term.
        smooth_eps: [normalised rows] scale of the Charbonnier smoothness penalty.
        temporal_weight: weight of the temporal term (0: off).
        label_weight: weight of the few-label BCE term.
        shore_weight: cost of a shore region in a column band (saturating with its
            thickness, see ``shore_scale``): breaks the tie when fewer than three regions
            are visible (open water, flat test images) in favour of the largest water
            region, without penalising a tall shore more than a thin one.
        shore_scale: [normalised rows] thickness at which the shore cost reaches 63 %.
        region_degree: degree of the row polynomial of each region's feature means.
        waterline_fringe: [normalised rows] thickness of the bands along the waterline in
            the shore's and the water's models (`waterline_fringes`); 0: none.
        prior_pseudo: pseudo-pixels (as a fraction of the image) at the global statistics
            in each region's model.
        threads: torch CPU threads (0: leave torch's default).
        log_every: steps between progress reports.
    """

    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    sim_frames: int = 1200
    sim_seeds: tuple[int, int] = (1000, 2000)
    frames_per_seed: int = 6
    real_fraction: float = 0.25
    loss_width: int = 128
    loss_height: int = 96
    kl_weight: float = 1e-3
    smooth_weight: float = 0.5
    smooth_eps: float = 0.01
    temporal_weight: float = 5.0
    label_weight: float = 1.0
    shore_weight: float = 0.15
    shore_scale: float = 0.05
    region_degree: int = 2
    waterline_fringe: float = 0.04
    prior_pseudo: float = 0.01
    threads: int = 1
    log_every: int = 25

    def __post_init__(self):
        if self.steps < 0 or self.batch < 1:
            raise ValueError(f'need steps >= 0 and batch >= 1, got {self.steps}, {self.batch}')
        if not (self.lr > 0.0 and self.weight_decay >= 0.0):
            raise ValueError('need lr > 0 and weight_decay >= 0')
        if self.sim_frames < 0 or self.frames_per_seed < 1:
            raise ValueError('need sim_frames >= 0 and frames_per_seed >= 1')
        lo, hi = self.sim_seeds
        if not lo < hi:
            raise ValueError(f'sim_seeds must be (first, last + 1), got {self.sim_seeds}')
        if not 0.0 <= self.real_fraction <= 1.0:
            raise ValueError(f'real_fraction must be in [0, 1], got {self.real_fraction}')
        if self.loss_width < 8 or self.loss_height < 8:
            raise ValueError('loss resolution must be at least 8x8 px')
        for name in ('kl_weight', 'smooth_weight', 'smooth_eps', 'temporal_weight',
                     'label_weight', 'shore_weight', 'shore_scale', 'prior_pseudo',
                     'waterline_fringe'):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if not 0 <= self.region_degree <= 4:
            raise ValueError(f'region_degree must be in [0, 4], got {self.region_degree}')
        if self.threads < 0 or self.log_every < 1:
            raise ValueError('need threads >= 0 and log_every >= 1')


# ---------------------------------------------------------------------------- features

def pixel_features(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-pixel features of the region models, standardised per image and channel.

    Args:
        images: (B, 3, H, W) RGB in [0, 1].
        height, width: [px] output resolution.

    Returns:
        (B, 5, height, width): luminance, red-green, yellow-blue (opponent colour), log
        energy of the vertical and of the horizontal luminance gradient (local texture:
        wave crests are mostly horizontal, vegetation mostly vertical), each zero mean and
        unit variance over the image.
    """
    x = F.interpolate(images, size=(height, width), mode='area')
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    lum = (r + g + b) / 3.0
    rg = r - g
    yb = 0.5 * (r + g) - b
    lum_full = images.mean(1, keepdim=True)
    gy = lum_full[:, :, 1:, :] - lum_full[:, :, :-1, :]
    gx = lum_full[:, :, :, 1:] - lum_full[:, :, :, :-1]
    gy = F.pad(gy.abs(), (0, 0, 0, 1))
    gx = F.pad(gx.abs(), (0, 1, 0, 0))
    ey = torch.log(F.interpolate(gy, size=(height, width), mode='area')[:, 0] + 1e-3)
    ex = torch.log(F.interpolate(gx, size=(height, width), mode='area')[:, 0] + 1e-3)
    feats = torch.stack([lum, rg, yb, ey, ex], dim=1)
    mean = feats.mean(dim=(2, 3), keepdim=True)
    std = feats.std(dim=(2, 3), keepdim=True)
    return (feats - mean) / (std + 0.05)


def region_nll(features: torch.Tensor, weights: Sequence[torch.Tensor],
               pseudo: float = 0.01, degree: int = 1,
               extra: Sequence[torch.Tensor | None] | None = None,
               extra_features: int | None = None) -> torch.Tensor:
    """Mean NLL of every pixel under the Gaussian model of its (soft) region.

    Each region's model: per feature, mean = polynomial of ``degree`` in the image row
    (plus the region's ``extra`` basis function, if any), variance = weighted residual
    variance, fitted by weighted least squares with ``pseudo`` * N pseudo-pixels at the
    image's global statistics (zero mean, unit variance after standardisation), which
    keeps an empty region harmless.

    Args:
        features: (B, F, H, W) standardised features.
        weights: per region (B, H, W) soft membership (summing to 1 over regions).
        pseudo: pseudo-pixels as a fraction of the image's N = H * W.
        degree: degree of the row polynomial of the region means (0: constant).
        extra: per region None or a (B, H, W) extra basis function of its means (e.g. the
            bands along the waterline, `waterline_fringes`).
        extra_features: the extra basis enters the means of the first this many features
            only (None: all).

    Returns:
        (B,) mean over pixels of sum_r w_r * NLL_r (constants dropped).
    """
    b, f, h, w = features.shape
    n = h * w
    feats = features.reshape(b, f, n)
    row = torch.linspace(-1.0, 1.0, h, dtype=features.dtype, device=features.device)
    row = row[:, None].expand(h, w).reshape(n)
    rows = torch.stack([row ** d for d in range(degree + 1)])             # (D, N)
    n0 = pseudo * n
    total = features.new_zeros(b)
    def fit(basis: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        """Weighted least-squares means (B, F, N) in ``basis`` (B, D, N)."""
        # Pseudo-pixels spread evenly over the image, all at feature value 0.
        prior_gram = n0 * (basis @ basis.transpose(1, 2)) / n               # (B, D, D)
        gram = torch.einsum('bn,bdn,ben->bde', wt, basis, basis) + prior_gram
        rhs = torch.einsum('bn,bdn,bfn->bdf', wt, basis, feats)              # (B, D, F)
        return torch.einsum('bdf,bdn->bfn', torch.linalg.solve(gram, rhs), basis)

    for index, weight in enumerate(weights):
        wt = weight.reshape(b, 1, n)
        plain = rows.expand(b, -1, -1)                                     # (B, D, N)
        pred = fit(plain, wt[:, 0])
        if extra is not None and extra[index] is not None:
            more = fit(torch.cat([plain, extra[index].reshape(b, 1, n)], dim=1), wt[:, 0])
            k = f if extra_features is None else extra_features
            pred = torch.cat([more[:, :k], pred[:, k:]], dim=1)
        resid = (feats - pred) ** 2
        s0 = wt.sum(-1) + n0                                                 # (B, 1)
        prior_resid = n0 * (1.0 + (pred ** 2).mean(-1))                      # (B, F)
        var = ((wt * resid).sum(-1) + prior_resid) / s0 + 1e-3
        nll = 0.5 * (torch.log(var)[..., None] + resid / var[..., None]).sum(1)  # (B, N)
        total = total + (weight.reshape(b, n) * nll).mean(-1)
    return total


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor, prior_mean: float,
                prior_std: float) -> torch.Tensor:
    """(B,) KL(N(mu, exp(logvar)) || N(prior_mean, prior_std^2)) summed over the K bands."""
    var_p = prior_std ** 2
    kl = 0.5 * ((logvar.exp() + (mu - prior_mean) ** 2) / var_p - 1.0
                - logvar + math.log(var_p))
    return kl.sum(-1)


def smoothness(boundary: torch.Tensor, eps: float) -> torch.Tensor:
    """(B,) Charbonnier penalty sum_k sqrt(d_k^2 + eps^2) - eps of neighbouring bands."""
    d = boundary[:, 1:] - boundary[:, :-1]
    return (torch.sqrt(d * d + eps * eps) - eps).sum(-1)


def waterline_fringes(boundary: torch.Tensor, height: int, width: int, scale: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """exp(-distance from the waterline / scale) above it (shore) and below it (water).

    Both regions often have a thin band of their own colour along the waterline that a row
    polynomial cannot follow, as thin as a few pixels at any distance of the shore: a
    beach, rocks or a wet line at the foot of the shore; and pale, smooth water, seen at
    grazing angles near the shore, that reflects the sky. With these basis functions each
    region's model can have its band; without them the far water's pale band goes to the
    shore (which it resembles more than the textured near water), and with the water's
    alone the beach goes to the water. 1 on the other side of the line (nothing to fit).

    Args:
        boundary: (B, K) normalised waterline rows (not differentiated through).
        height, width: [px] resolution. scale: [normalised rows] thickness of the bands.

    Returns:
        shore band (B, H, W), water band (B, H, W).
    """
    rows = columns_from_bands(boundary.detach(), width)                     # (B, W)
    v = (torch.arange(height, dtype=boundary.dtype, device=boundary.device) + 0.5) / height
    below = v[None, :, None] - rows[:, None, :]                             # (B, H, W)
    return (torch.exp(-(-below).clamp(min=0.0) / scale),
            torch.exp(-below.clamp(min=0.0) / scale))


def region_weights(water: torch.Tensor, top: torch.Tensor, height: int, width: int,
                   sharpness: float) -> list[torch.Tensor]:
    """Soft (sky, shore, water) memberships (each (B, H, W)) of a waterline and a top line."""
    p_water = soft_mask(water, height, width, sharpness)
    p_below_top = soft_mask(top, height, width, sharpness)
    rest = 1.0 - p_water
    return [rest * (1.0 - p_below_top), rest * p_below_top, p_water]


def losses(model: PolylineVAE, images: torch.Tensor, train: TrainConfig,
           labels: torch.Tensor | None = None, label_rows: torch.Tensor | None = None,
           pairs: torch.Tensor | None = None, shore_scale: float = 1.0
           ) -> dict[str, torch.Tensor]:
    """Every loss term of one batch (means over the batch).

    Args:
        model: the VAE.
        images: (B, 3, H, W) RGB in [0, 1].
        train: weights and loss resolution.
        labels: optional (L, h, w) float label masks (1 = water) at the loss resolution
            for the images ``label_rows`` (L,) of the batch.
        pairs: optional (P, 2) indices of batch images one frame apart.
        shore_scale: factor on ``shore_weight`` (warm-up).

    Returns:
        dict with 'loss' (the weighted total) and each term: 'region', 'kl', 'smooth',
        'temporal', 'label', 'shore'.
    """
    cfg = model.config
    h, w = train.loss_height, train.loss_width
    mu, logvar, top = model.forward_all(images)
    sample = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    sharp = cfg.sharpness * cfg.input_height / h            # [1/px] at the loss resolution
    with torch.no_grad():
        feats = pixel_features(images, h, w)
    fringes = (None, *waterline_fringes(mu, h, w, train.waterline_fringe)) if (
        train.waterline_fringe > 0.0) else None
    region = region_nll(feats, region_weights(sample, top, h, w, sharp),
                        train.prior_pseudo, train.region_degree, extra=fringes,
                        extra_features=COLOUR_FEATURES).mean()
    kl = kl_to_prior(mu, logvar, cfg.prior_mean, cfg.prior_std).mean() / mu.shape[1]
    smooth = smoothness(mu, train.smooth_eps).mean() + 0.5 * smoothness(
        top, train.smooth_eps).mean()
    shore = (1.0 - torch.exp(-(mu - top).clamp(min=0.0) / train.shore_scale)).mean()
    zero = images.new_zeros(())
    temporal = zero
    if pairs is not None and len(pairs):
        temporal = ((mu[pairs[:, 0]] - mu[pairs[:, 1]]) ** 2).sum(-1).mean()
    label = zero
    if labels is not None and len(labels):
        soft = soft_mask(sample[label_rows], h, w, sharp).clamp(1e-5, 1 - 1e-5)
        label = F.binary_cross_entropy(soft, labels)
    total = (region + train.kl_weight * kl + train.smooth_weight * smooth
             + train.temporal_weight * temporal + train.label_weight * label
             + shore_scale * train.shore_weight * shore)
    return {'loss': total, 'region': region, 'kl': kl, 'smooth': smooth,
            'temporal': temporal, 'label': label, 'shore': shore}


# ---------------------------------------------------------------------------- data

def list_images(folder) -> list[Path]:
    """Image files of ``folder`` sorted by name (raises FileNotFoundError / ValueError)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder} is not a folder')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {folder}')
    return files


def read_rgb(path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file (ValueError when unreadable)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'cannot read image {path}')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrink = image.shape[0] > height and image.shape[1] > width
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def render_sim_frames(frames: int, seeds: tuple[int, int], frames_per_seed: int,
                      width: int, height: int, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None):
    """Simulated frames of random look seeds in ``seeds`` (first, last + 1).

    Returns:
        images (N, height, width, 3) uint8 and masks (N, height, width) bool (navigable),
        resized from the simulator's camera resolution.
    """
    from asv_autonomy.sim.render import render_frames
    rng = np.random.default_rng([seed, 0x7EA1])
    count = math.ceil(frames / frames_per_seed) if frames else 0
    looks = rng.choice(np.arange(*seeds), size=min(count, seeds[1] - seeds[0]),
                       replace=False)
    images = np.empty((frames, height, width, 3), np.uint8)
    masks = np.empty((frames, height, width), bool)
    done = 0
    for look in looks:
        take = min(frames_per_seed, frames - done)
        for _stem, rgb, navigable, _pose, _kind in render_frames(int(look), take):
            images[done] = _resize(rgb, width, height)
            masks[done] = _resize(navigable.astype(np.uint8) * 255, width, height) >= 128
            done += 1
            if progress is not None:
                progress(done, frames)
        if done >= frames:
            break
    return images[:done], masks[:done]


def augment(batch: np.ndarray, rng: np.random.Generator, width: int, height: int,
            groups: np.ndarray | None = None, masks: np.ndarray | None = None):
    """Flip, random crop/zoom and colour jitter of uint8 images (resized to width x height).

    Images of the same ``groups`` value get the same geometric augmentation (temporal
    pairs). Masks (optional, (N, H, W) float) get the same geometry.

    Returns:
        (N, 3, height, width) float tensor in [0, 1] (and the masks (N, height, width)).
    """
    n = len(batch)
    out = np.empty((n, height, width, 3), np.float32)
    out_masks = None if masks is None else np.empty((n, height, width), np.float32)
    geometry = {}
    for i in range(n):
        key = i if groups is None else int(groups[i])
        if key not in geometry:
            scale = rng.uniform(0.7, 1.0)
            geometry[key] = (rng.random() < 0.5, scale, rng.uniform(0, 1), rng.uniform(0, 1))
        flip, scale, fx, fy = geometry[key]
        img = batch[i]
        hh, ww = img.shape[:2]
        ch, cw = int(round(hh * scale)), int(round(ww * scale))
        y0, x0 = int(fy * (hh - ch)), int(fx * (ww - cw))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
        if flip:
            crop = crop[:, ::-1]
        x = crop.astype(np.float32) / 255.0
        # Colour jitter: brightness, contrast, per-channel gain, saturation.
        gray = x.mean(axis=2, keepdims=True)
        x = gray + (x - gray) * rng.uniform(0.6, 1.4)
        x = x * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
        x = (x - 0.5) * rng.uniform(0.75, 1.25) + 0.5 + rng.uniform(-0.12, 0.12)
        out[i] = np.clip(x, 0.0, 1.0)
        if masks is not None:
            m = cv2.resize(masks[i][y0:y0 + ch, x0:x0 + cw].astype(np.float32), (width, height),
                           interpolation=cv2.INTER_LINEAR)
            out_masks[i] = m[:, ::-1] if flip else m
    tensor = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    if masks is None:
        return tensor
    return tensor, torch.from_numpy(out_masks)


# ---------------------------------------------------------------------------- training

@dataclass
class TrainData:
    """In-memory training set (uint8 images at the network input size).

    Args:
        sim: (N, H, W, 3) simulated frames.
        real: (M, H, W, 3) real unlabelled frames, in temporal order.
        labelled: (L, H, W, 3) labelled frames and their masks ``labels`` (L, H, W) bool.
    """

    sim: np.ndarray
    real: np.ndarray
    labelled: np.ndarray
    labels: np.ndarray


def load_folder(folder, width: int, height: int) -> np.ndarray:
    """All images of a folder resized to width x height: (N, height, width, 3) uint8."""
    return np.stack([_resize(read_rgb(p), width, height) for p in list_images(folder)])


def load_labelled(folder, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``folder/images`` + ``folder/masks`` (same stems, non-zero = water)."""
    folder = Path(folder)
    images = list_images(folder / 'images')
    masks = _masks_by_stem(folder / 'masks')
    missing = [p.name for p in images if p.stem not in masks]
    if missing:
        raise ValueError(f'no mask for {missing[0]} in {folder / "masks"}')
    return _labelled_pairs(images, masks, width, height)


def load_masked(images_dir, masks_dir, width: int, height: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The frames of ``images_dir`` that have a mask of the same stem in ``masks_dir``
    (a few labelled frames of an otherwise unlabelled sequence), with their masks; paired
    as the benchmark pairs them (``benchmark.load_dataset(masked_only=True)``).

    Raises:
        ValueError: a mask without a frame of its stem (a typo would silently drop a
            label), no mask at all, or a missing folder.
    """
    dataset = load_dataset(images_dir, masks_dir, masked_only=True)
    masks = {image.stem: mask for image, mask in zip(dataset.images, dataset.masks)}
    return _labelled_pairs(dataset.images, masks, width, height)


def _masks_by_stem(folder) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f'mask folder {folder} does not exist')
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _labelled_pairs(images: Sequence[Path], masks: dict[str, Path], width: int, height: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    frames, labels = [], []
    for path in images:
        mask = cv2.imread(str(masks[path.stem]), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ValueError(f'cannot read mask {masks[path.stem]}')
        frames.append(_resize(read_rgb(path), width, height))
        labels.append(cv2.resize((mask > 0).astype(np.uint8), (width, height),
                                 interpolation=cv2.INTER_NEAREST) > 0)
    return np.stack(frames), np.stack(labels)


def empty_data(width: int, height: int) -> TrainData:
    z = np.zeros((0, height, width, 3), np.uint8)
    return TrainData(z, z.copy(), z.copy(), np.zeros((0, height, width), bool))


def train(data: TrainData, config: SegmenterConfig = SegmenterConfig(),
          train_config: TrainConfig = TrainConfig(), model: PolylineVAE | None = None,
          progress: Callable[[dict], None] | None = None) -> PolylineVAE:
    """Fit the polyline VAE on ``data`` with the unsupervised objective (module doc).

    Args:
        data: training images (at least one simulated, real or labelled frame).
        config: network configuration (ignored when ``model`` is given).
        train_config: optimisation settings.
        model: continue training this model (fine-tuning) instead of a new one.
        progress: called every ``log_every`` steps and at the end with a dict: step, steps,
            loss and its terms, images_per_s, elapsed_s.

    Returns:
        The trained model (eval mode).
    """
    tc = train_config
    pools = [(name, arr) for name, arr in (('sim', data.sim), ('real', data.real),
                                           ('labelled', data.labelled)) if len(arr)]
    if not pools:
        raise ValueError('no training images')
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng([tc.seed, 0xA5])
    if model is None:
        model = PolylineVAE(config)
    cfg = model.config
    width, height = cfg.input_width, cfg.input_height
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, tc.steps)
                                                         / max(tc.steps, 1))))
    model.train()
    start = time.monotonic()
    last_time, last_step = start, 0
    sums: dict[str, float] = {}
    n_sum = 0
    for step in range(1, tc.steps + 1):
        n_real = n_lab = 0
        if len(data.real):
            n_real = int(round(tc.batch * (tc.real_fraction if len(data.sim) else 1.0)))
            n_real -= n_real % 2                                       # pairs
        if len(data.labelled):
            n_lab = max(1, tc.batch // 8) if (len(data.sim) or len(data.real)) else tc.batch
        n_sim = tc.batch - n_real - n_lab if len(data.sim) else 0
        if not len(data.sim):
            n_real = tc.batch - n_lab if len(data.real) else 0
            n_real -= n_real % 2 if len(data.real) > 1 else 0
        parts, groups, pairs = [], [], []
        if n_sim > 0:
            idx = rng.integers(len(data.sim), size=n_sim)
            parts.append(data.sim[idx])
        base = sum(len(p) for p in parts)
        if n_real > 0:
            if len(data.real) > 1 and tc.temporal_weight > 0:
                first = rng.integers(len(data.real) - 1, size=n_real // 2)
                idx = np.stack([first, first + 1], 1).ravel()
                pairs = [(base + 2 * j, base + 2 * j + 1) for j in range(n_real // 2)]
            else:
                idx = rng.integers(len(data.real), size=n_real)
            parts.append(data.real[idx])
        images_np = np.concatenate(parts) if parts else np.zeros((0, height, width, 3),
                                                                np.uint8)
        groups = np.arange(len(images_np))
        for a, b in pairs:
            groups[b] = groups[a]
        images = augment(images_np, rng, width, height, groups) if len(images_np) else None
        labels = label_rows = None
        if n_lab > 0:
            idx = rng.integers(len(data.labelled), size=n_lab)
            lab_img, lab_mask = augment(data.labelled[idx], rng, width, height,
                                        masks=data.labels[idx].astype(np.float32))
            labels = F.interpolate(lab_mask[:, None], size=(tc.loss_height, tc.loss_width),
                                   mode='area')[:, 0]
            offset = 0 if images is None else len(images)
            label_rows = torch.arange(offset, offset + n_lab)
            images = lab_img if images is None else torch.cat([images, lab_img])
        # The shore cost ramps up over the first 30 % of the steps: the three regions
        # settle first (a thin shore region costs more than it gains at first).
        terms = losses(model, images, tc, labels, label_rows,
                       torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2),
                       shore_scale=min(1.0, step / max(1.0, 0.3 * tc.steps)))
        opt.zero_grad(set_to_none=True)
        terms['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_sum += 1
        if progress is not None and (step % tc.log_every == 0 or step == tc.steps):
            now = time.monotonic()
            report = {k: v / n_sum for k, v in sums.items()}
            report.update(step=step, steps=tc.steps, elapsed_s=now - start,
                          images_per_s=(step - last_step) * tc.batch / max(now - last_time,
                                                                          1e-9))
            progress(report)
            sums, n_sum, last_time, last_step = {}, 0, now, step
    model.eval()
    return model


def water_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean water masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def heldout_iou(segmenter, seeds: Sequence[int] = range(100), frames_per_seed: int = 2,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Water IoU of ``segmenter`` on simulated frames of held-out look seeds.

    Frames come from ``sim.render.render_frames(seed, frames_per_seed)`` (the same frames
    as ``asv sim render --seed S --frames N``), at the camera's full resolution.

    Returns:
        dict: 'mean_iou' (mean of per-frame IoU), 'pooled_iou' (intersection over union
        of all frames together), 'frames', and 'per_kind' mean IoU by pose kind.
    """
    from asv_autonomy.sim.render import render_frames
    ious, kinds = [], []
    inter = union = 0
    seeds = list(seeds)
    for i, seed in enumerate(seeds):
        frames = list(render_frames(int(seed), frames_per_seed))
        results = segmenter.segment_batch([rgb for _, rgb, _, _, _ in frames])
        for (_, _, truth, _, kind), result in zip(frames, results):
            pred = result.mask > 0
            ious.append(water_iou(pred, truth))
            kinds.append(kind)
            inter += int(np.logical_and(pred, truth).sum())
            union += int(np.logical_or(pred, truth).sum())
        if progress is not None:
            progress(i + 1, len(seeds))
    ious_arr = np.asarray(ious)
    per_kind = {k: float(ious_arr[[j for j, kk in enumerate(kinds) if kk == k]].mean())
                for k in sorted(set(kinds))}
    return {'mean_iou': float(ious_arr.mean()) if ious else float('nan'),
            'pooled_iou': inter / union if union else 1.0, 'frames': len(ious),
            'per_kind': per_kind}
