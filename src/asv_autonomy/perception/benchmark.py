"""Navigable-space segmentation benchmark: datasets, metrics, methods side by side, pictures.

A dataset is a folder of frames (``.png``/``.jpg``, any size) and, optionally, a folder of
masks with the same stems (non-zero = navigable water, same size as the frame), e.g. what
``asv sim render`` writes. Every method segments every frame; per method the benchmark
reports

* ``iou``: water IoU (intersection over union of the navigable pixels), the mean over
  frames (a frame where neither mask has water counts 1); ``iou_pooled`` pools the pixels
  of all frames;
* ``boundary_err_px``: mean over frames and columns of |boundary row of the prediction -
  boundary row of the ground truth| [px], where a column's boundary row is the top of the
  run of navigable pixels that starts at the bottom of the image (the image height when
  the bottom pixel is not navigable);
* ``fps``: frames per second of the method's ``segment(rgb)`` on the full frames (resize
  and post-processing included; one warm-up frame not timed);

and without masks only ``fps`` (``iou`` and ``boundary_err_px`` are null). Methods:
``asv`` (``perception.segmenter.Segmenter``, the label-free VAE), ``classical`` and
``unet-supervised`` (``perception.baselines``).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import cv2
import numpy as np

METHODS = ('asv', 'classical', 'unet-supervised')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
# Overlay colours (RGB) of the methods and the ground truth in the pictures.
COLOURS = {'truth': (255, 255, 255), 'asv': (255, 40, 40), 'classical': (255, 200, 0),
           'unet-supervised': (0, 230, 90)}


class DatasetError(ValueError):
    """A dataset folder that cannot be benchmarked (missing, empty, unmatched, unreadable)."""


class Segmenter(Protocol):
    def segment(self, rgb: np.ndarray) -> Any:
        """uint8 (H, W, 3) RGB -> object with ``mask`` (H, W) uint8 (255 = navigable) and
        ``polyline`` (K, 2) [px]."""


# --- metrics --------------------------------------------------------------------------------

def boundary_from_mask(mask: np.ndarray) -> np.ndarray:
    """Boundary row per column of a navigable mask.

    Args:
        mask: (H, W) bool (or non-zero = navigable).

    Returns:
        (W,) int: the top row of the run of navigable pixels that starts at the bottom row;
        H where the bottom pixel is not navigable (no water in that column).
    """
    water = np.asarray(mask).astype(bool)
    if water.ndim != 2:
        raise ValueError(f'mask must be 2-D, got shape {water.shape}')
    height = water.shape[0]
    dry = ~water[::-1]                                  # from the bottom up
    run = np.where(dry.any(axis=0), dry.argmax(axis=0), height)
    return height - run


def polyline_from_boundary(rows: np.ndarray, bands: int) -> np.ndarray:
    """(K, 2) (u, v) [px] at the centres of ``bands`` equal column bands of a (W,) boundary."""
    rows = np.asarray(rows, dtype=np.float64)
    width = len(rows)
    u = (np.arange(bands) + 0.5) * width / bands - 0.5
    return np.stack([u, np.interp(u, np.arange(width), rows)], axis=1)


def water_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of the navigable pixels of two (H, W) masks (non-zero = water); 1 when neither
    has water."""
    pred, truth = _pair(pred, truth)
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union


def boundary_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over columns of |boundary row (pred) - boundary row (truth)| [px] (see
    `boundary_from_mask`)."""
    pred, truth = _pair(pred, truth)
    return float(np.abs(boundary_from_mask(pred) - boundary_from_mask(truth)).mean())


def _pair(pred, truth):
    pred, truth = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f'masks must be 2-D of the same shape, got {pred.shape} and '
                         f'{truth.shape}')
    return pred, truth


# --- datasets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    """Frames (and masks) of one benchmark dataset.

    Args:
        name: reported as ``dataset``.
        images: frame files, sorted by stem.
        masks: mask files of the same stems, or None (no ground truth).
    """

    name: str
    images: tuple[Path, ...]
    masks: tuple[Path, ...] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> np.ndarray:
        """uint8 (H, W, 3) RGB of frame ``index``."""
        path = self.images[index]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f'cannot read image {path}')
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def mask(self, index: int, shape: tuple[int, int] | None = None) -> np.ndarray:
        """bool (H, W) ground truth of frame ``index`` (non-zero = water); ``shape`` (H, W)
        it must have."""
        if self.masks is None:
            raise DatasetError(f'dataset {self.name} has no masks')
        path = self.masks[index]
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise DatasetError(f'cannot read mask {path}')
        if mask.ndim == 3:
            mask = mask.max(axis=2)
        if shape is not None and mask.shape != tuple(shape):
            raise DatasetError(f'mask {path} is {mask.shape[1]}x{mask.shape[0]} px, its image '
                               f'{shape[1]}x{shape[0]} px')
        return mask != 0


def dataset_name(images_dir: Path) -> str:
    """``sim7`` for ``.../sim7/images``, else the folder's own name."""
    images_dir = Path(images_dir).resolve()
    return images_dir.parent.name if images_dir.name == 'images' else images_dir.name


def load_dataset(images_dir: Path | str, masks_dir: Path | str | None = None,
                 name: str | None = None, limit: int | None = None,
                 masked_only: bool = False) -> Dataset:
    """Pair the frames of ``images_dir`` with the masks of ``masks_dir`` by stem.

    Args:
        masked_only: keep only the frames that have a mask (a sequence of which a few
            frames are labelled); otherwise every frame must have one.

    Raises:
        DatasetError: a missing folder, no frames, frames without a mask (unless
            ``masked_only``), or, with ``masked_only``, masks without a frame.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DatasetError(f'image folder {images_dir} does not exist')
    images = sorted((p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: p.stem)
    if not images:
        raise DatasetError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {images_dir}')
    if limit is not None:
        images = images[:limit]
    masks = None
    if masks_dir is not None:
        masks_dir = Path(masks_dir)
        if not masks_dir.is_dir():
            raise DatasetError(f'mask folder {masks_dir} does not exist')
        by_stem = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        if masked_only:
            orphans = sorted(set(by_stem) - {p.stem for p in images})
            if orphans or not by_stem:
                raise DatasetError(f'{len(orphans)} mask(s) in {masks_dir} without a frame of '
                                   f'the same stem in {images_dir}: {", ".join(orphans[:3])}'
                                   if orphans else f'no masks in {masks_dir}')
            images = [p for p in images if p.stem in by_stem]
        missing = [p.name for p in images if p.stem not in by_stem]
        if missing:
            raise DatasetError(f'{len(missing)} image(s) without a mask of the same stem in '
                               f'{masks_dir}: {", ".join(missing[:3])}'
                               f'{" ..." if len(missing) > 3 else ""}')
        masks = tuple(by_stem[p.stem] for p in images)
    return Dataset(name or dataset_name(images_dir), tuple(images), masks)


# --- methods --------------------------------------------------------------------------------

def default_model_path() -> Path:
    """models/segmentation.pt of the package share (the source checkout when run from it)."""
    from asv_autonomy.cli.launch_xml import find_package_share
    return find_package_share('asv_autonomy') / 'models' / 'segmentation.pt'


def build_method(name: str, *, model: Path | str | None = None, unet: Path | str | None = None,
                 unet_training=None, progress: Callable[[str], None] | None = None
                 ) -> Segmenter:
    """The segmenter of method ``name``.

    Args:
        model: checkpoint of ``asv`` (default: `default_model_path`).
        unet: checkpoint of ``unet-supervised``; trained (``unet_training``, a
            ``baselines.UNetTraining``) and saved there when the file does not exist; None
            trains one in memory.

    Raises:
        ValueError: unknown method; ``CheckpointError`` / ``UNetCheckpointError`` for a
            checkpoint that cannot be used.
    """
    if name == 'asv':
        from asv_autonomy.perception.segmenter import Segmenter as AsvSegmenter
        return AsvSegmenter.load(default_model_path() if model is None else model)
    if name == 'classical':
        from asv_autonomy.perception.baselines import ClassicalSegmenter
        return ClassicalSegmenter()
    if name == 'unet-supervised':
        from asv_autonomy.perception import baselines
        if unet is not None and Path(unet).exists():
            return baselines.UNetSegmenter.load(unet)
        segmenter = baselines.train_unet(unet_training or baselines.UNetTraining(),
                                         progress=progress)
        if unet is not None:
            segmenter.save(unet)
            if progress is not None:
                progress(f'saved the U-Net to {unet}')
        return segmenter
    raise ValueError(f'unknown method {name!r}; choose from {", ".join(METHODS)}')


@dataclass
class MethodRun:
    """What one method did on one dataset."""

    result: dict
    examples: dict[int, Any] = field(default_factory=dict)   # frame index -> segmentation


def run_method(dataset: Dataset, method: str, segmenter: Segmenter, *,
               keep: Iterable[int] = (), frame_done: Callable[[], None] | None = None,
               overlays: Path | None = None) -> MethodRun:
    """Segment every frame of ``dataset``; score against its masks when it has them.

    Args:
        keep: frame indices whose segmentations are returned (for the pictures).
        frame_done: called after each frame (progress bars).
        overlays: folder for one picture per frame (``<stem>_<method>.jpg``), or None.

    Returns:
        ``result``: {dataset, method, iou, boundary_err_px, fps, iou_pooled, frames}
        (metrics null without masks); ``examples``: the kept segmentations.
    """
    keep = set(keep)
    ious, errors, elapsed = [], [], 0.0
    inter = union = 0
    run = MethodRun({})
    if overlays is not None:
        overlays.mkdir(parents=True, exist_ok=True)
    for index in range(len(dataset)):
        rgb = dataset.image(index)
        if index == 0:
            segmenter.segment(rgb)                      # warm-up (lazy init, caches)
        start = time.perf_counter()
        seg = segmenter.segment(rgb)
        elapsed += time.perf_counter() - start
        pred = np.asarray(seg.mask) != 0
        if pred.shape != rgb.shape[:2]:
            raise ValueError(f'{method} returned a {pred.shape} mask for a {rgb.shape[:2]} '
                             'frame')
        truth = None
        if dataset.masks is not None:
            truth = dataset.mask(index, rgb.shape[:2])
            ious.append(water_iou(pred, truth))
            errors.append(boundary_error(pred, truth))
            inter += np.count_nonzero(pred & truth)
            union += np.count_nonzero(pred | truth)
        if index in keep:
            run.examples[index] = seg
        if overlays is not None:
            picture = draw_overlay(rgb, seg, COLOURS.get(method, (255, 0, 255)), truth)
            cv2.imwrite(str(overlays / f'{dataset.images[index].stem}_{method}.jpg'),
                        picture[:, :, ::-1])
        if frame_done is not None:
            frame_done()
    scored = dataset.masks is not None
    run.result = {
        'dataset': dataset.name, 'method': method,
        'iou': float(np.mean(ious)) if scored else None,
        'boundary_err_px': float(np.mean(errors)) if scored else None,
        'fps': len(dataset) / elapsed if elapsed > 0 else math.inf,
        'iou_pooled': float(inter / union if union else 1.0) if scored else None,
        'frames': len(dataset)}
    return run


def write_json(path: Path, results: Sequence[dict], settings: dict | None = None) -> None:
    """``{"results": [...], "settings": {...}}``; NaN/inf become null (strict JSON)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    payload = {'results': [{k: clean(v) for k, v in r.items()} for r in results]}
    if settings:
        payload['settings'] = settings
    Path(path).write_text(json.dumps(payload, indent=2) + '\n')


# --- pictures -------------------------------------------------------------------------------

def draw_overlay(rgb: np.ndarray, seg: Any, colour: Sequence[int],
                 truth: np.ndarray | None = None) -> np.ndarray:
    """Frame with the predicted water tinted, its polyline (and +-sigma ticks when the method
    has an uncertainty) in ``colour``, and the ground-truth boundary dashed white."""
    out = rgb.astype(np.float32)
    water = np.asarray(seg.mask) != 0
    tint = np.float32(colour) * 0.35
    out[water] = out[water] * 0.65 + tint
    out = np.clip(out, 0, 255).astype(np.uint8)
    scale = max(1, round(rgb.shape[1] / 320))
    if truth is not None:
        rows = boundary_from_mask(truth)
        for u in range(0, len(rows), 6):
            cv2.line(out, (u, int(rows[u])), (min(u + 3, len(rows) - 1), int(rows[u])),
                     COLOURS['truth'], scale, cv2.LINE_AA)
    poly = np.asarray(seg.polyline, dtype=np.float64)
    sigma = np.asarray(getattr(seg, 'sigma', np.zeros(len(poly))), dtype=np.float64)
    for (u, v), s in zip(poly, sigma):
        if s > 0.5:
            cv2.line(out, (int(round(u)), int(round(v - s))), (int(round(u)), int(round(v + s))),
                     tuple(int(c) for c in colour), 1, cv2.LINE_AA)
    points = np.rint(poly).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(out, [points], False, tuple(int(c) for c in colour), 2 * scale, cv2.LINE_AA)
    for u, v in points[:, 0]:
        cv2.circle(out, (int(u), int(v)), 2 * scale, tuple(int(c) for c in colour), -1,
                   cv2.LINE_AA)
    return out


def plot_examples(path: Path, dataset: Dataset, runs: dict[str, MethodRun],
                  indices: Sequence[int], results: Sequence[dict] | None = None) -> None:
    """A grid of examples: one row per frame, one column per method (its polyline over the
    frame, water tinted; the ground-truth boundary dashed white when there are masks)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    methods = list(runs)
    scores = {r['method']: r for r in (results or []) if r['dataset'] == dataset.name}
    fig, axes = plt.subplots(len(indices), len(methods),
                             figsize=(3.4 * len(methods), 2.7 * len(indices)), squeeze=False)
    for row, index in enumerate(indices):
        rgb = dataset.image(index)
        truth = dataset.mask(index, rgb.shape[:2]) if dataset.masks is not None else None
        for col, method in enumerate(methods):
            ax = axes[row, col]
            seg = runs[method].examples.get(index)
            if seg is not None:
                ax.imshow(draw_overlay(rgb, seg, COLOURS.get(method, (255, 0, 255)), truth))
                if truth is not None:
                    ax.set_xlabel(f'IoU {water_iou(np.asarray(seg.mask) != 0, truth):.3f}',
                                  fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                score = scores.get(method)
                title = method
                if score and score.get('iou') is not None:
                    title += f'\nIoU {score["iou"]:.3f}, {score["boundary_err_px"]:.1f} px'
                if score:
                    title += f', {score["fps"]:.0f} fps'
                ax.set_title(title, fontsize=9)
            if col == 0:
                ax.set_ylabel(dataset.images[index].stem, fontsize=8)
    fig.suptitle(f'{dataset.name}: navigable-space boundary per method'
                 + (' (white dashes: ground truth)' if dataset.masks is not None else ''),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def example_indices(count: int, examples: int) -> list[int]:
    """``examples`` frame indices spread evenly over ``count`` frames."""
    examples = max(1, min(examples, count))
    return sorted({int(i) for i in np.linspace(0, count - 1, examples).round()})
