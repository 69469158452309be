"""Regression: is the predicted spread as wide as the errors are?"""

import numpy as np
from matplotlib.axes import Axes

from mcdropout._exceptions import ArgumentValueError
from mcdropout._validation import check_optional_positive_int, check_probability
from mcdropout.metrics import (
    interval_coverage,
    miscalibration_area,
    regression_calibration_curve,
)
from mcdropout.metrics._checks import to_numpy
from mcdropout.plots._common import axes_or_new, check_regression
from mcdropout.predictions import RegressionPrediction

__all__ = ["regression_arrays", "regression_calibration", "regression_intervals"]

INSIDE_COLOR, OUTSIDE_COLOR = "tab:blue", "tab:red"


def regression_arrays(
    prediction: RegressionPrediction, name: str = "prediction"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat float64 ``mean``, ``std`` and ``targets`` of a prediction.

    Every output of every input is one value, as the regression metrics
    treat them; targets of shape ``(n_inputs,)`` therefore match a model
    that returns ``(n_inputs, 1)``.
    """
    prediction = check_regression(name, prediction)
    if prediction.targets is None:
        raise ArgumentValueError(
            f"expected `{name}` to carry targets (predict(..., targets=...)), "
            "got a prediction without them"
        )
    mean = prediction.mean.reshape(-1).numpy()
    targets = to_numpy("targets", prediction.targets).astype(np.float64).ravel()
    if targets.shape != mean.shape:
        raise ArgumentValueError(
            f"expected the targets of `{name}` to hold one value per predicted "
            f"mean, {mean.size}, got {targets.size}"
        )
    return mean, prediction.std.reshape(-1).numpy(), targets


def _curve_inputs(
    prediction_or_mean: object, std: object, targets: object
) -> tuple[object, object, object]:
    if isinstance(prediction_or_mean, RegressionPrediction):
        return regression_arrays(prediction_or_mean)
    missing = [
        name for name, value in (("std", std), ("targets", targets)) if value is None
    ]
    if missing:
        raise ArgumentValueError(
            "expected `std` and `targets` along with means, or a "
            "RegressionPrediction that carries its targets, got no "
            + " and no ".join(f"`{name}`" for name in missing)
        )
    return prediction_or_mean, std, targets


AXIS_LABELS = {
    "interval": (
        "Expected share inside the central interval",
        "Observed share inside",
    ),
    "quantile": ("Expected quantile level", "Observed share below"),
}


def regression_calibration(
    prediction_or_mean: RegressionPrediction | object,
    std: object = None,
    targets: object = None,
    *,
    kind: str = "interval",
    n_points: int = 100,
    ax: Axes | None = None,
    label: str | None = None,
) -> Axes:
    """Regression calibration curve: observed against expected probability mass.

    For each expected mass ``p``, the share of targets inside the central
    Gaussian interval of mass ``p`` (``kind="interval"``) or below the
    predicted ``p``-quantile (``kind="quantile"``), from
    :func:`mcdropout.metrics.regression_calibration_curve`. A calibrated
    model follows the diagonal; an interval curve below it is
    overconfident (intervals too narrow). The shaded area to the diagonal
    is the miscalibration area, given in the legend. Call again with the
    same ``ax`` to compare predictions.

    Parameters
    ----------
    prediction_or_mean : RegressionPrediction or Tensor or ndarray
        A prediction that carries its targets, or predicted means.
    std : Tensor or ndarray, optional
        Predicted standard deviations (> 0), with means.
    targets : Tensor or ndarray, optional
        Targets, with means.
    kind : {"interval", "quantile"}, default "interval"
    n_points : int, default 100
        Number of expected masses from 0 to 1.
    ax : Axes, optional
        Where to draw; None creates a new pyplot figure.
    label : str, optional
        Name of the prediction in the legend.

    Returns
    -------
    Axes
        ``ax.lines[0]`` is the first curve drawn (x: expected, y:
        observed), followed by the diagonal; each later call adds its curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> ax = regression_calibration(
    ...     np.zeros(4), np.ones(4), np.array([-2.0, -0.1, 0.3, 1.0]), n_points=3
    ... )
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 0.5, 1.0]
    """
    mean, std, targets = _curve_inputs(prediction_or_mean, std, targets)
    expected, observed = regression_calibration_curve(
        mean, std, targets, kind, n_points
    )
    area = miscalibration_area(mean, std, targets, kind, n_points)
    ax = axes_or_new(ax, (4.5, 4.5))

    name = "observed" if label is None else label
    (line,) = ax.plot(expected, observed, label=f"{name} (area = {area:.3f})")
    ax.fill_between(expected, expected, observed, color=line.get_color(), alpha=0.15)
    if not any(other.get_gid() == "diagonal" for other in ax.lines):
        ax.plot([0, 1], [0, 1], "--", color="gray", gid="diagonal", label="ideal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(AXIS_LABELS[kind][0])
    ax.set_ylabel(AXIS_LABELS[kind][1])
    ax.legend(fontsize="small", loc="upper left")
    return ax


def _shown(n_values: int, max_points: int | None) -> np.ndarray:
    """Indices of the values to draw: all, or a fixed random subset."""
    if max_points is None or n_values <= max_points:
        return np.arange(n_values)
    # A fixed seed: the same prediction always gives the same figure.
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n_values, size=max_points, replace=False))


def _draw_intervals(
    ax: Axes,
    targets: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    index: np.ndarray,
    color: str,
    name: str,
) -> None:
    errors = np.stack([mean[index] - lower[index], upper[index] - mean[index]])
    ax.errorbar(
        targets[index],
        mean[index],
        yerr=errors,
        fmt="o",
        markersize=3,
        elinewidth=0.8,
        alpha=0.7,
        color=color,
        label=f"{name} ({len(index)} shown)",
    )


def regression_intervals(
    prediction: RegressionPrediction,
    level: float = 0.95,
    *,
    max_points: int | None = 500,
    ax: Axes | None = None,
) -> Axes:
    """Predicted means with their prediction intervals, against the targets.

    Each input is a point at (target, predicted mean) with an error bar
    spanning its central Gaussian interval of mass ``level``,
    ``mean -/+ z std``. Blue intervals contain their target (they cross
    the dashed line ``y = x``), red ones miss it. The legend gives the
    share of all targets covered
    (:func:`mcdropout.metrics.interval_coverage`); for a calibrated model
    it is close to ``level``.

    Parameters
    ----------
    prediction : RegressionPrediction
        A prediction that carries its targets. Several outputs are drawn
        together, one point per output of each input.
    level : float, default 0.95
        Probability mass of the intervals, in [0, 1).
    max_points : int or None, default 500
        Draw at most this many points, a fixed random subset, so large test
        sets stay readable; None draws all. The coverage uses all.
    ax : Axes, optional
        Where to draw; None creates a new pyplot figure.

    Returns
    -------
    Axes
        ``ax.containers`` holds the error bars of the covered targets, then
        of the missed ones (a group with no point is left out).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> prediction = RegressionPrediction(
    ...     mean=torch.zeros(3, dtype=torch.float64),
    ...     epistemic_variance=torch.ones(3, dtype=torch.float64),
    ...     aleatoric_variance=torch.zeros(3, dtype=torch.float64),
    ...     n_passes=10,
    ...     targets=torch.tensor([0.5, -1.0, 3.0]),
    ... )
    >>> ax = regression_intervals(prediction)
    >>> [len(container.lines[0].get_xdata()) for container in ax.containers]
    [2, 1]
    """
    level = check_probability("level", level)
    max_points = check_optional_positive_int("max_points", max_points)
    mean, std, targets = regression_arrays(prediction)
    coverage = interval_coverage(mean, std, targets, level)
    lower, upper = (part.reshape(-1).numpy() for part in prediction.interval(level))
    ax = axes_or_new(ax, (4.5, 4.5))

    shown = _shown(len(mean), max_points)
    inside = (targets >= lower) & (targets <= upper)
    groups = (
        (inside, "target inside", INSIDE_COLOR),
        (~inside, "target outside", OUTSIDE_COLOR),
    )
    for group, name, color in groups:
        index = shown[group[shown]]
        if len(index):
            _draw_intervals(ax, targets, mean, lower, upper, index, color, name)

    low, high = min(targets.min(), lower.min()), max(targets.max(), upper.max())
    ax.plot([low, high], [low, high], "--", color="gray", label="y = x")
    ax.set_xlabel("Target")
    ax.set_ylabel("Predicted mean")
    title = f"{level:.0%} intervals cover {coverage:.1%} of {len(mean)} targets"
    ax.legend(title=title, fontsize="small", title_fontsize="small")
    return ax
