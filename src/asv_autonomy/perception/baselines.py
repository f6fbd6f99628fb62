"""Baselines of the navigable-space benchmark: a classical segmenter and a supervised U-Net.

* `ClassicalSegmenter`: no learning. A horizon row from the strongest change of the mean
  row colour (the upper limit of water), then each column grown from the bottom edge up
  while its Lab colour stays consistent (the first strong colour change from the bottom is
  the waterline); everything from the bottom up to it is navigable (the same "boundary per
  column" form as the project's segmenter).
* `UNetSegmenter`: a small U-Net trained with pixel labels (the simulator's ground-truth
  masks of TRAINING seeds, 1000+), an upper-bound reference for the label-free segmenter.
  `train_unet` trains one (progress through a callback), `UNetSegmenter.save/load` keep it.

Both return `BaselineSegmentation`, field for field like ``perception.segmenter.Segmentation``
(polyline (K, 2) px, sigma (K,) px, mask uint8 (H, W) 255 = navigable, boundary_rows (W,)).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import cv2
import numpy as np
import torch
from scipy.ndimage import median_filter
from torch import nn
from torch.nn import functional as F

from .benchmark import boundary_from_mask, polyline_from_boundary

TRAINING_SEEDS = range(1000, 2000)   # world/look seeds for training; 0-99 are held out


class BaselineSegmentation(NamedTuple):
    """One segmented frame (as ``perception.segmenter.Segmentation``).

    Args:
        polyline: (K, 2) float (u, v) [px] of the boundary at K band centres.
        sigma: (K,) [px] boundary uncertainty (0: the baselines have none).
        mask: (H, W) uint8, 255 = navigable.
        boundary_rows: (W,) float [px]: top row of the navigable run from the bottom.
    """

    polyline: np.ndarray
    sigma: np.ndarray
    mask: np.ndarray
    boundary_rows: np.ndarray


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        raise ValueError(f'need a uint8 (H, W, 3) RGB image of at least 8x8 px, got '
                         f'{rgb.dtype} {rgb.shape}')
    return rgb


# --- classical ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassicalConfig:
    """Args:
        work_width, work_height: [px] the image is segmented at this size.
        horizon_search: the horizon is searched in this top fraction of the rows.
        window: [rows at work size] the colour change at a row compares the mean Lab colour
            of this many rows above with this many rows below.
        threshold: a colour change is an edge above ``threshold`` x the median change in
            the bottom-centre of the image (water), + 1 (Lab units).
        smooth_columns: [px at work size] median filter width of the boundary across columns.
        bands: K polyline vertices.
    """

    work_width: int = 128
    work_height: int = 96
    horizon_search: float = 0.75
    window: int = 2
    threshold: float = 5.0
    smooth_columns: int = 11
    bands: int = 32

    def __post_init__(self):
        if self.work_width < 16 or self.work_height < 16:
            raise ValueError(f'work size must be >= 16x16 px, got {self.work_width}x'
                             f'{self.work_height}')
        if not 0.0 < self.horizon_search <= 1.0:
            raise ValueError(f'horizon_search must be in (0, 1], got {self.horizon_search}')
        if not 1 <= self.window <= self.work_height // 4:
            raise ValueError(f'window must be in [1, work_height / 4], got {self.window}')
        if not self.threshold > 0.0:
            raise ValueError(f'threshold must be > 0, got {self.threshold}')
        if self.smooth_columns < 1 or self.smooth_columns % 2 == 0:
            raise ValueError(f'smooth_columns must be odd and >= 1, got {self.smooth_columns}')
        if self.bands < 2:
            raise ValueError(f'bands must be >= 2, got {self.bands}')


class ClassicalSegmenter:
    """Horizon + per-column colour-change scan from the bottom (no learning).

    The horizon is the row of the strongest change of the mean row colour (Lab) in the top
    part of the image; water cannot lie above it. Each column is then grown upwards from
    the bottom edge while the colour stays consistent: the boundary is the first row (from
    the bottom) where the mean Lab colour of ``window`` rows above differs from that of
    ``window`` rows below by more than ``threshold`` times the typical change of the water
    under the bow (waves, the near-far gradient; bottom-centre of the image); a median filter across
    columns removes single-column spikes.
    """

    def __init__(self, config: ClassicalConfig = ClassicalConfig()):
        self.config = config

    def horizon_row(self, lab: np.ndarray) -> int:
        """Row (at work size) of the strongest change of the mean row colour in the searched
        top part of the image: the water lies below it."""
        profile = cv2.GaussianBlur(lab.mean(axis=1, keepdims=True), (1, 5), 0)[:, 0]
        change = np.linalg.norm(np.diff(profile, axis=0), axis=1)
        stop = max(3, int(self.config.horizon_search * len(change)))
        return int(np.argmax(change[1:stop])) + 2

    def segment(self, rgb: np.ndarray) -> BaselineSegmentation:
        """Segment a uint8 (H, W, 3) RGB frame of any size."""
        c = self.config
        rgb = _check_rgb(rgb)
        height, width = rgb.shape[:2]
        w, h, n = c.work_width, c.work_height, c.window
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        horizon = self.horizon_row(lab)
        cumulative = np.concatenate([np.zeros((1, w, 3), np.float32),
                                     np.cumsum(lab, axis=0)])
        rows = np.arange(n, h - n + 1)                  # edge between rows r - 1 and r
        above = (cumulative[rows] - cumulative[rows - n]) / n
        below = (cumulative[rows + n] - cumulative[rows]) / n
        change = np.linalg.norm(above - below, axis=2)
        # Typical change of water: the bottom quarter, central half of the columns.
        typical = float(np.median(change[rows >= 3 * h // 4, w // 4:3 * w // 4]))
        edge = (change > c.threshold * typical + 1.0) | (rows <= horizon)[:, None]
        last = len(rows) - 1 - np.argmax(edge[::-1], axis=0)   # lowest edge per column
        # The blur and the window spread an edge over a few rows: the waterline is the
        # strongest change among the edge rows just above the lowest one.
        reach = np.clip(last[None, :] - np.arange(n + 2)[:, None], 0, len(rows) - 1)
        cols = np.arange(w)[None, :]
        strength = np.where(edge[reach, cols], change[reach, cols], -1.0)
        last = reach[np.argmax(strength, axis=0), np.arange(w)]
        bound = np.where(edge.any(axis=0), rows[last], horizon).astype(np.float32)
        if c.smooth_columns > 1:
            bound = median_filter(bound, size=c.smooth_columns, mode='nearest')
        # Work-size rows -> input rows (a row edge at work row r is at r * height / h).
        rows_px = np.interp((np.arange(width) + 0.5) * w / width - 0.5, np.arange(w),
                            bound) * (height / h)
        return _from_boundary(rows_px, height, width, c.bands)


def _from_boundary(rows_px: np.ndarray, height: int, width: int,
                   bands: int) -> BaselineSegmentation:
    rows_px = np.clip(rows_px, 0.0, float(height))
    mask = (np.arange(height)[:, None] >= np.ceil(rows_px - 0.5)[None, :])
    polyline = polyline_from_boundary(rows_px, bands)
    return BaselineSegmentation(polyline, np.zeros(bands), mask.astype(np.uint8) * 255,
                                rows_px.astype(np.float64))


# --- supervised U-Net -----------------------------------------------------------------------

class UNetCheckpointError(ValueError):
    """A U-Net checkpoint that cannot be used.

    Args:
        path: the checkpoint file.
        reason: what is wrong with it.
    """

    def __init__(self, path, reason: str):
        super().__init__(f'U-Net checkpoint {path}: {reason}')
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class UNetConfig:
    """Args:
        input_width, input_height: [px] network input (multiples of 8).
        width: channels of the first level (x2 per level, 3 levels + bottleneck).
        bands: K polyline vertices of the output.
    """

    input_width: int = 128
    input_height: int = 96
    width: int = 12
    bands: int = 32

    def __post_init__(self):
        if self.input_width % 8 or self.input_height % 8 or min(self.input_width,
                                                                self.input_height) < 16:
            raise ValueError(f'input size must be multiples of 8 and >= 16 px, got '
                             f'{self.input_width}x{self.input_height}')
        if self.width < 2 or self.bands < 2:
            raise ValueError(f'need width >= 2 and bands >= 2, got {self.width}, '
                             f'{self.bands}')


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """U-Net with three down/up levels: water logits per pixel.

    Args:
        width: channels of the first level.

    Shapes:
        input: (B, 3, H, W) float in [0, 1], H and W multiples of 8.
        output: (B, 1, H, W) logits of "navigable water".
    """

    def __init__(self, width: int = 12):
        super().__init__()
        w = width
        self.enc = nn.ModuleList([_block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w)])
        self.mid = _block(4 * w, 8 * w)
        self.up = nn.ModuleList([nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2),
                                 nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2),
                                 nn.ConvTranspose2d(2 * w, w, 2, stride=2)])
        self.dec = nn.ModuleList([_block(8 * w, 4 * w), _block(4 * w, 2 * w), _block(2 * w, w)])
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def _to_input(images: Sequence[np.ndarray], config: UNetConfig) -> torch.Tensor:
    """uint8 RGB frames (any sizes) -> (B, 3, h, w) float tensor at the network size."""
    size = (config.input_width, config.input_height)
    batch = np.stack([cv2.resize(_check_rgb(im), size, interpolation=cv2.INTER_AREA)
                      for im in images])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)


class UNetSegmenter:
    """Supervised U-Net as a segmenter.

    Args:
        model: a trained TinyUNet (put in eval mode here).
        config: its config.
        metadata: how it was trained (saved with it).
    """

    def __init__(self, model: TinyUNet, config: UNetConfig = UNetConfig(),
                 metadata: dict | None = None):
        self.model = model.eval()
        self.config = config
        self.metadata = dict(metadata or {})

    @torch.no_grad()
    def segment(self, rgb: np.ndarray) -> BaselineSegmentation:
        """Segment a uint8 (H, W, 3) RGB frame of any size (water where p > 0.5)."""
        rgb = _check_rgb(rgb)
        height, width = rgb.shape[:2]
        logits = self.model(_to_input([rgb], self.config))
        logits = F.interpolate(logits, size=(height, width), mode='bilinear',
                               align_corners=False)[0, 0].numpy()
        mask = logits > 0.0
        rows = boundary_from_mask(mask).astype(np.float64)
        return BaselineSegmentation(polyline_from_boundary(rows, self.config.bands),
                                    np.zeros(self.config.bands), mask.astype(np.uint8) * 255,
                                    rows)

    def save(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({'kind': 'unet-supervised', 'state_dict': self.model.state_dict(),
                    'config': asdict(self.config), 'metadata': self.metadata}, path)

    @classmethod
    def load(cls, path: Path | str) -> 'UNetSegmenter':
        """Load a checkpoint written by `save` (``torch.load(weights_only=True)``).

        Raises:
            UNetCheckpointError: missing, unreadable, corrupt or mismatched file.
        """
        path = Path(path)
        if not path.is_file():
            raise UNetCheckpointError(path, 'no such file')
        try:
            blob = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as error:  # noqa: BLE001 - pickle/zip errors have many types
            raise UNetCheckpointError(path, f'cannot read it ({type(error).__name__}: '
                                            f'{error})') from None
        if not isinstance(blob, dict) or blob.get('kind') != 'unet-supervised' or \
                'state_dict' not in blob or 'config' not in blob:
            raise UNetCheckpointError(path, 'not a U-Net checkpoint of '
                                            'asv_autonomy.perception.baselines')
        try:
            config = UNetConfig(**blob['config'])
            model = TinyUNet(config.width)
            model.load_state_dict(blob['state_dict'])
        except (TypeError, ValueError, RuntimeError) as error:
            raise UNetCheckpointError(path, f'does not match the U-Net: {error}') from None
        return cls(model, config, blob.get('metadata'))


@dataclass(frozen=True)
class UNetTraining:
    """Args:
        seeds: world/look seeds rendered for training (keep them out of 0-99).
        frames_per_seed: frames rendered per seed.
        steps: optimiser steps.
        batch: frames per step.
        lr: Adam learning rate.
        seed: torch / augmentation seed.
    """

    seeds: tuple[int, ...] = tuple(range(1000, 1020))
    frames_per_seed: int = 30
    steps: int = 600
    batch: int = 8
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        if not self.seeds or any(s < 100 for s in self.seeds):
            raise ValueError(f'training seeds must be given and >= 100 (0-99 are held out), '
                             f'got {self.seeds}')
        if self.frames_per_seed < 1 or self.steps < 1 or self.batch < 1 or not self.lr > 0:
            raise ValueError('frames_per_seed, steps, batch and lr must be > 0')


def render_training_set(training: UNetTraining, config: UNetConfig,
                        progress: Callable[[str], None] | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulated frames + ground-truth masks of the training seeds at the network size.

    Returns:
        images: (N, 3, h, w) uint8; masks: (N, 1, h, w) float water fraction in [0, 1].
    """
    from asv_autonomy.sim.render import render_frames
    size = (config.input_width, config.input_height)
    images, masks = [], []
    start = time.monotonic()
    for i, seed in enumerate(training.seeds):
        for _, rgb, navigable, _, _ in render_frames(seed, training.frames_per_seed):
            images.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
            masks.append(cv2.resize(navigable.astype(np.float32), size,
                                    interpolation=cv2.INTER_AREA))
        if progress is not None:
            progress(f'rendered seed {seed} ({i + 1}/{len(training.seeds)}), '
                     f'{len(images)} frames, {time.monotonic() - start:.0f} s')
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.stack(masks))[:, None])


def train_unet(training: UNetTraining = UNetTraining(), config: UNetConfig = UNetConfig(),
               progress: Callable[[str], None] | None = None,
               data: tuple[torch.Tensor, torch.Tensor] | None = None) -> UNetSegmenter:
    """Train the supervised U-Net on simulated labels of the training seeds.

    Args:
        training: data and optimiser settings.
        config: network settings.
        progress: receives one line per report (rendering, then step / loss / throughput).
        data: (images (N, 3, h, w) uint8, masks (N, 1, h, w) float) to use instead of
            rendering (tests).

    Returns:
        The trained segmenter (metadata: seeds, frames, steps, seed, final loss).
    """
    generator = torch.Generator().manual_seed(training.seed)
    torch.manual_seed(training.seed)
    images, masks = data if data is not None else render_training_set(training, config,
                                                                       progress)
    model = TinyUNet(config.width)
    optimiser = torch.optim.Adam(model.parameters(), lr=training.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, training.lr,
                                                   total_steps=training.steps)
    model.train()
    start, loss_avg = time.monotonic(), None
    report_every = max(1, training.steps // 20)
    for step in range(1, training.steps + 1):
        index = torch.randint(len(images), (training.batch,), generator=generator)
        x = images[index].float().div_(255.0)
        y = masks[index]
        flip = torch.rand(training.batch, generator=generator) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        gain = 0.75 + 0.5 * torch.rand(training.batch, 3, 1, 1, generator=generator)
        x = (x * gain + 0.1 * (torch.rand(training.batch, 1, 1, 1, generator=generator)
                               - 0.5)).clamp_(0.0, 1.0)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        loss_avg = loss.item() if loss_avg is None else 0.9 * loss_avg + 0.1 * loss.item()
        if progress is not None and (step % report_every == 0 or step == training.steps):
            elapsed = time.monotonic() - start
            progress(f'step {step}/{training.steps} loss {loss_avg:.4f} '
                     f'{step * training.batch / elapsed:.1f} frames/s')
    metadata = {'seeds': list(training.seeds), 'frames': int(len(images)),
                'steps': training.steps, 'batch': training.batch, 'seed': training.seed,
                'final_loss': float(loss_avg if loss_avg is not None else math.nan)}
    return UNetSegmenter(model, config, metadata)
