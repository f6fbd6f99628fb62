"""Strict JSON for result files: NaN and inf (figures that do not apply) become null."""
from __future__ import annotations

import math


def strict_json(value):
    """``value`` (nested dicts / lists) with NaN and inf floats as None: strict JSON's null
    for figures that do not apply."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value
