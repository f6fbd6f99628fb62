"""Navigable-space segmentation at inference time: image in, polyline + mask out.

``Segmenter.segment`` resizes any RGB frame to the network input, runs the polyline VAE
and maps the posterior mean and std of the waterline back to the input image: a (K, 2)
polyline at the band centres, its per-vertex std [px], the per-column boundary row and a
mask (255 = navigable water, below the boundary).

Checkpoints are plain dicts loaded with ``torch.load(..., weights_only=True)``:
``{'format': 'asv_autonomy.segmentation', 'version': 1, 'config': SegmenterConfig dict,
'state_dict': ..., 'metadata': {...}}``. Anything else (missing, corrupt, wrong format,
mismatched weights) raises :class:`CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Sequence

import cv2
import numpy as np
import torch

from ..checkpoints import read_checkpoint

from .model import PolylineVAE, SegmenterConfig
from .polyline import band_centres, boundary_rows

CHECKPOINT_FORMAT = 'asv_autonomy.segmentation'
CHECKPOINT_VERSION = 1


def _plain(metadata: dict) -> dict:
    """Metadata as plain JSON types (str subclasses, numpy scalars -> str/float/int), so the
    checkpoint loads with ``weights_only=True``."""
    return json.loads(json.dumps(dict(metadata), default=lambda v: v.item()
                                 if hasattr(v, 'item') else str(v)))


class CheckpointError(Exception):
    """A segmentation checkpoint that cannot be used.

    Args:
        path: the file.
        reason: what is wrong with it.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'segmentation checkpoint {self.path}: {reason}')


class Segmentation(NamedTuple):
    """Result for one frame, in the coordinates of the INPUT image (pixel centres at integers).

    polyline: (K, 2) float (u, v) [px] of the waterline at the band centres.
    sigma: (K,) float [px] posterior std of each vertex's row.
    mask: (H, W) uint8, 255 = navigable (below the waterline), 0 elsewhere.
    boundary_rows: (W,) float [px] waterline row of every column (water where v > row).
    """

    polyline: np.ndarray
    sigma: np.ndarray
    mask: np.ndarray
    boundary_rows: np.ndarray


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}')
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f'image too small: {rgb.shape[1]}x{rgb.shape[0]} px')
    return rgb


class Segmenter:
    """The waterline polyline of camera frames.

    Args:
        model: a trained :class:`PolylineVAE` (put in eval mode); a new untrained one when
            None.
        config: its configuration (default: ``model.config``).
    """

    def __init__(self, model: PolylineVAE | None = None, config: SegmenterConfig | None = None):
        if config is None:
            config = model.config if model is not None else SegmenterConfig()
        if model is None:
            model = PolylineVAE(config)
        self.model = model.eval()
        self.config = config
        self.metadata: dict = {}

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def load(cls, path, map_location: str = 'cpu') -> 'Segmenter':
        """Segmenter of a checkpoint written by :meth:`save`.

        Raises:
            CheckpointError: missing, unreadable, corrupt or mismatched file.
        """
        path = Path(path)
        blob = read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                               'a segmentation checkpoint', CheckpointError, map_location)
        try:
            config = SegmenterConfig.from_dict(blob['config'])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(path, f'bad config: {error}') from error
        state = blob.get('state_dict')
        if not isinstance(state, dict):
            raise CheckpointError(path, 'no state_dict')
        model = PolylineVAE(config)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(path, f'weights do not match the config: '
                                        f'{str(error).splitlines()[0][:300]}') from error
        if not all(torch.isfinite(t).all() for t in model.state_dict().values()
                   if t.is_floating_point()):
            raise CheckpointError(path, 'non-finite weights')
        segmenter = cls(model, config)
        metadata = blob.get('metadata', {})
        segmenter.metadata = dict(metadata) if isinstance(metadata, dict) else {}
        return segmenter

    def save(self, path, metadata: dict | None = None) -> None:
        """Write the checkpoint (state_dict + config + metadata) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION,
                'config': self.config.to_dict(),
                'state_dict': {k: v.detach().cpu().clone()
                               for k, v in self.model.state_dict().items()},
                'metadata': _plain(metadata if metadata is not None else self.metadata)}
        torch.save(blob, path)

    # ------------------------------------------------------------------ inference
    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 frames (any sizes) -> (B, 3, h, w) float in [0, 1] at the input size."""
        c = self.config
        batch = np.empty((len(images), c.input_height, c.input_width, 3), np.uint8)
        for i, rgb in enumerate(images):
            rgb = _check_rgb(rgb)
            if rgb.shape[:2] == (c.input_height, c.input_width):
                batch[i] = rgb
            else:
                shrink = rgb.shape[0] > c.input_height and rgb.shape[1] > c.input_width
                batch[i] = cv2.resize(rgb, (c.input_width, c.input_height),
                                      interpolation=cv2.INTER_AREA if shrink
                                      else cv2.INTER_LINEAR)
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
        return tensor.float().mul_(1.0 / 255.0)

    def segment(self, rgb: np.ndarray) -> Segmentation:
        """Waterline polyline and navigable mask of one RGB uint8 (H, W, 3) frame."""
        return self.segment_batch([rgb])[0]

    def segment_batch(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        """:meth:`segment` of several frames (sizes may differ) in one network call."""
        if len(images) == 0:
            return []
        images = [_check_rgb(rgb) for rgb in images]
        with torch.inference_mode():
            mu, logvar = self.model(self.preprocess(images))
        mu, std = mu.double().numpy(), torch.exp(0.5 * logvar).double().numpy()
        return [self._result(m, s, rgb.shape[0], rgb.shape[1])
                for m, s, rgb in zip(mu, std, images)]

    @staticmethod
    def _result(mu: np.ndarray, std: np.ndarray, height: int, width: int) -> Segmentation:
        rows_k = mu * height - 0.5
        polyline = np.stack([band_centres(mu.size, width), rows_k], axis=1)
        rows = boundary_rows(rows_k, width)
        mask = np.where(np.arange(height)[:, None] > rows[None, :], 255, 0).astype(np.uint8)
        return Segmentation(polyline, std * height, mask, rows)


def model_size_bytes(segmenter: Segmenter) -> int:
    """float32 bytes of the parameters and buffers (a checkpoint is about this size)."""
    return sum(t.numel() * t.element_size() for t in segmenter.model.state_dict().values())


