"""Safe reading of the project's versioned model checkpoints (DESIGN.md §5).

A checkpoint is a plain dict saved with ``torch.save`` and tagged with ``format`` and
``version``; it is read with ``torch.load(..., weights_only=True)``, so a file that tries
to run code is refused. Each model checks its own contents after this common part.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch


def read_checkpoint(path, fmt: str, version: int, what: str,
                    error: Callable[[Path, str], Exception],
                    map_location: str = 'cpu') -> dict:
    """The dict of a ``fmt`` checkpoint of ``version``, or ``error(path, reason)`` raised
    for a missing, unreadable, unsafe, foreign or other-version file.

    Args:
        path: the file. fmt, version: the expected tags. what: the model's name in
            messages ('an anomaly checkpoint'). error: the model's exception class.
        map_location: where tensors are loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise error(path, 'no such file')
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as failure:      # pickle / zip / unsafe-global errors of every kind
        raise error(path, f'not a readable torch checkpoint ({type(failure).__name__}: '
                          f'{str(failure)[:200]})') from failure
    if not isinstance(blob, dict) or blob.get('format') != fmt:
        raise error(path, f'not {what} (expected format {fmt!r})')
    if blob.get('version') != version:
        raise error(path, f'unsupported version {blob.get("version")!r} '
                          f'(this code reads {version})')
    return blob
