"""A bounded 1-D minimiser: a coarse grid, then golden-section search.

The calibration objectives (NLL against a log temperature or a log noise
variance) are smooth and, in practice, unimodal, but not always convex. The
grid finds the basin of the smallest value over the whole range; the
golden-section search then narrows it down inside the two grid cells around
the best grid point. Both steps only evaluate the objective, so no gradient
is needed and the result never leaves the bounds.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Minimum", "minimize_bounded"]

# 1 / golden ratio: the share of the bracket kept at each step.
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Minimum:
    """Where a 1-D objective is smallest, its value, and whether the
    minimiser sits on the edge of the range (the true minimum may lie
    beyond it)."""

    x: float
    value: float
    at_bound: bool


def _golden(
    objective: Callable[[float], float], low: float, high: float, tol: float
) -> tuple[float, float]:
    inner_low = high - _INV_PHI * (high - low)
    inner_high = low + _INV_PHI * (high - low)
    f_low, f_high = objective(inner_low), objective(inner_high)

    # Each step drops the outer part beyond the worse inner point and reuses
    # the better one, so every step costs one evaluation.
    while high - low > tol:
        if f_low <= f_high:
            high, inner_high, f_high = inner_high, inner_low, f_low
            inner_low = high - _INV_PHI * (high - low)
            f_low = objective(inner_low)
        else:
            low, inner_low, f_low = inner_low, inner_high, f_high
            inner_high = low + _INV_PHI * (high - low)
            f_high = objective(inner_high)
    return (inner_low, f_low) if f_low <= f_high else (inner_high, f_high)


def minimize_bounded(
    objective: Callable[[float], float],
    low: float,
    high: float,
    *,
    n_grid: int = 41,
    tol: float = 1e-7,
) -> Minimum:
    """Minimise ``objective`` over ``[low, high]`` to within ``tol`` in x.

    ``n_grid`` evenly spaced points locate the best cell; golden-section
    search refines it. The result is never worse than the best grid point.
    """
    grid = np.linspace(low, high, n_grid)
    values = np.array([objective(float(x)) for x in grid])
    best = int(np.argmin(values))

    bracket = grid[max(best - 1, 0)], grid[min(best + 1, n_grid - 1)]
    x, value = _golden(objective, float(bracket[0]), float(bracket[1]), tol)
    if values[best] < value:
        x, value = float(grid[best]), float(values[best])

    at_bound = min(x - low, high - x) <= tol
    return Minimum(float(x), float(value), at_bound)
