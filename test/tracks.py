"""Survey tracks shared by the mapping tests."""
import numpy as np


def lawnmower(n: int, width: float, lane: float, step: float) -> np.ndarray:
    """n samples ``step`` [m] apart along a boustrophedon track over a square of side
    ``width`` [m] with lanes ``lane`` [m] apart. Shapes: -> (n, 2)"""
    s = np.arange(n) * step
    lanes = (s // width).astype(int)
    along = s % width
    x = np.where(lanes % 2 == 0, along, width - along)
    y = (lanes * lane) % width
    return np.column_stack([x, y])
