"""Accuracy, likelihood and calibration of Gaussian regression predictions.

Every function takes ``mean``, ``std`` and ``targets`` of one shape,
``(n_inputs,)`` or ``(n_inputs, n_outputs)``, and treats the
``n_inputs * n_outputs`` values alike: means are taken over all of them.
"""

import math

import numpy as np
import torch

from mcdropout._exceptions import ArgumentValueError
from mcdropout._validation import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_probability,
)
from mcdropout.metrics._checks import check_same_shape, check_scores, check_std

__all__ = [
    "CURVE_KINDS",
    "gaussian_nll",
    "gaussian_nll_of_variance",
    "interval_coverage",
    "interval_width",
    "mae",
    "mc_log_likelihood",
    "miscalibration_area",
    "regression_calibration_curve",
    "regression_calibration_error",
    "rmse",
    "sharpness",
]

CURVE_KINDS = ("interval", "quantile")

_SHAPE = "(n_inputs,) or (n_inputs, n_outputs)"


def _values(name: str, value: object) -> np.ndarray:
    return check_scores(name, value, (1, 2), _SHAPE)


def _checked(
    mean: object, targets: object, std: object | None = None, *, strict: bool = True
) -> tuple[np.ndarray, ...]:
    """Flattened float64 ``mean``, ``targets`` (and ``std``) of one shape."""
    mean = _values("mean", mean)
    arrays = {"targets": _values("targets", targets)}
    if std is not None:
        arrays["std"] = _values("std", std)
        check_std(arrays["std"], strict=strict)
    check_same_shape("mean", mean, **arrays)
    return (mean.ravel(), *(array.ravel() for array in arrays.values()))


def _ndtri(p: np.ndarray | float) -> np.ndarray:
    """Standard normal quantile, -inf at 0 and inf at 1."""
    return torch.special.ndtri(torch.as_tensor(p, dtype=torch.float64)).numpy()


def _z(level: float) -> float:
    """Half-width in standard deviations of the central interval of ``level``."""
    return float(_ndtri((1.0 + level) / 2))


def rmse(mean: object, targets: object) -> float:
    """Root mean squared error.

    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac1N \\sum_i (y_i - \\mu_i)^2}

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means.
    targets : Tensor or ndarray
        Targets, of the shape of ``mean``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rmse(np.array([0.0, 1.0]), np.array([3.0, 5.0]))
    3.5355339059327378
    """
    mean, targets = _checked(mean, targets)
    return float(np.sqrt(np.mean((targets - mean) ** 2)))


def mae(mean: object, targets: object) -> float:
    """Mean absolute error.

    .. math:: \\mathrm{MAE} = \\frac1N \\sum_i |y_i - \\mu_i|

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means.
    targets : Tensor or ndarray
        Targets, of the shape of ``mean``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> mae(np.array([0.0, 1.0]), np.array([3.0, 5.0]))
    3.5
    """
    mean, targets = _checked(mean, targets)
    return float(np.mean(np.abs(targets - mean)))


def gaussian_nll_of_variance(
    mean: np.ndarray, variance: np.ndarray, targets: np.ndarray
) -> float:
    """:func:`gaussian_nll` of checked float64 arrays, from variances."""
    return float(
        np.mean(
            0.5 * np.log(2 * math.pi * variance)
            + (targets - mean) ** 2 / (2 * variance)
        )
    )


def gaussian_nll(mean: object, std: object, targets: object) -> float:
    """Mean negative log density of the targets under the predicted Gaussians.

    .. math:: \\mathrm{NLL} = \\frac1N \\sum_i \\left[\\frac12 \\log(2 \\pi
       \\sigma_i^2) + \\frac{(y_i - \\mu_i)^2}{2 \\sigma_i^2}\\right]

    With the full constant, in nats; lower is better.

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means.
    std : Tensor or ndarray
        Predicted standard deviations (> 0), of the shape of ``mean``.
    targets : Tensor or ndarray
        Targets, of the shape of ``mean``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(gaussian_nll(np.zeros(1), np.ones(1), np.zeros(1)), 6)
    0.918939
    """
    mean, targets, std = _checked(mean, targets, std)
    return gaussian_nll_of_variance(mean, std**2, targets)


def interval_coverage(
    mean: object, std: object, targets: object, level: float = 0.95
) -> float:
    """Share of targets inside the central Gaussian prediction interval.

    .. math:: \\frac1N \\sum_i [|y_i - \\mu_i| \\le z \\sigma_i], \\quad
       z = \\Phi^{-1}\\left(\\frac{1 + \\mathrm{level}}{2}\\right)

    A calibrated model covers ``level`` of the targets.

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means.
    std : Tensor or ndarray
        Predicted standard deviations (>= 0), of the shape of ``mean``.
    targets : Tensor or ndarray
        Targets, of the shape of ``mean``.
    level : float, default 0.95
        Probability mass of the interval, in [0, 1).

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> interval_coverage(np.zeros(4), np.ones(4), np.array([0.5, -1.9, 2.0, 3.0]))
    0.5
    """
    level = check_probability("level", level)
    mean, targets, std = _checked(mean, targets, std, strict=False)
    return float(np.mean(np.abs(targets - mean) <= _z(level) * std))


def interval_width(mean: object, std: object, level: float = 0.95) -> float:
    """Mean width of the central Gaussian prediction intervals.

    .. math:: \\frac1N \\sum_i 2 z \\sigma_i, \\quad
       z = \\Phi^{-1}\\left(\\frac{1 + \\mathrm{level}}{2}\\right)

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means. The
        width does not depend on them; they are checked against ``std``'s
        shape, so that the interval metrics share one signature.
    std : Tensor or ndarray
        Predicted standard deviations (>= 0), of the shape of ``mean``.
    level : float, default 0.95
        Probability mass of the interval, in [0, 1).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(interval_width(np.zeros(2), np.array([1.0, 2.0])), 4)
    5.8799
    """
    level = check_probability("level", level)
    mean, std = _values("mean", mean), _values("std", std)
    check_same_shape("mean", mean, std=std)
    check_std(std, strict=False)
    return float(2 * _z(level) * np.mean(std))


def sharpness(std: object) -> float:
    """Root mean predicted variance: how narrow the predictions are.

    .. math:: \\mathrm{sharpness} = \\sqrt{\\frac1N \\sum_i \\sigma_i^2}

    Parameters
    ----------
    std : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted standard
        deviations (>= 0).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> sharpness(np.array([1.0, 7.0]))
    5.0
    """
    std = _values("std", std)
    check_std(std, strict=False)
    return float(np.sqrt(np.mean(std**2)))


def mc_log_likelihood(
    samples: object, targets: object, noise_precision: float
) -> float:
    """Monte Carlo dropout test log-likelihood (Gal & Ghahramani, 2016).

    The log density of each target under the mixture of ``T`` Gaussians,
    one per pass, centred on the pass's prediction with precision
    :math:`\\tau`, averaged over inputs; higher is better:

    .. math:: \\mathrm{LL} = \\frac1N \\sum_i \\left[\\operatorname{logsumexp}_t
       \\left(-\\frac\\tau2 (y_i - \\hat y_{ti})^2\\right) - \\log T
       - \\frac12 \\log 2\\pi + \\frac12 \\log \\tau\\right]

    Parameters
    ----------
    samples : Tensor or ndarray
        ``(n_passes, n_inputs)`` or ``(n_passes, n_inputs, n_outputs)``
        per-pass predictions, in the targets' original units.
    targets : Tensor or ndarray
        ``samples.shape[1:]`` targets, in original units.
    noise_precision : float
        The model precision :math:`\\tau` (> 0), in original units.

    Returns
    -------
    float
        In nats per value.

    Notes
    -----
    For a model trained on standardised targets :math:`(y - m) / s`, pass
    ``samples * s + m``, the raw targets and :math:`\\tau_{std} / s^2`;
    the result then compares with published numbers in original units.
    With several outputs, each output's mixture density is scored on its
    own and the mean is over all ``n_inputs * n_outputs`` values.

    Examples
    --------
    >>> import numpy as np
    >>> samples = np.array([[0.0], [0.0]])
    >>> round(mc_log_likelihood(samples, np.array([0.0]), 1.0), 6)
    -0.918939
    """
    tau = check_positive_float("noise_precision", noise_precision)
    samples = check_scores(
        "samples",
        samples,
        (2, 3),
        "(n_passes, n_inputs) or (n_passes, n_inputs, n_outputs)",
    )
    targets = _values("targets", targets)
    if targets.shape != samples.shape[1:]:
        raise ArgumentValueError(
            f"expected `targets` of shape {samples.shape[1:]}, `samples` without "
            f"its passes dimension, got {targets.shape}"
        )

    exponents = torch.from_numpy(-0.5 * tau * (targets - samples) ** 2)
    log_mixture = torch.logsumexp(exponents, dim=0).numpy() - math.log(len(samples))
    constant = -0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau)
    return float(np.mean(log_mixture) + constant)


def _check_curve_args(kind: object, n_points: object) -> tuple[str, int]:
    kind = check_choice("kind", kind, CURVE_KINDS)
    n_points = check_positive_int("n_points", n_points)
    if n_points < 2:
        raise ArgumentValueError(
            f"expected `n_points` >= 2 (the curve runs from 0 to 1), got {n_points}"
        )
    return kind, n_points


def regression_calibration_curve(
    mean: object,
    std: object,
    targets: object,
    kind: str = "interval",
    n_points: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed against expected probability mass of the predicted Gaussians.

    At each expected mass ``p`` on ``linspace(0, 1, n_points)``, with the
    standardised residual :math:`r_i = (y_i - \\mu_i) / \\sigma_i`:

    .. math::
        \\mathrm{interval}: \\frac1N \\sum_i \\left[|r_i| \\le
            \\Phi^{-1}\\left(\\frac{1+p}{2}\\right)\\right], \\quad
        \\mathrm{quantile}: \\frac1N \\sum_i [r_i \\le \\Phi^{-1}(p)]

    the share of targets inside the central interval of mass ``p``, or
    below the predicted ``p``-quantile. A calibrated model lies on the
    diagonal; plot ``observed`` (y axis) against ``expected`` (x axis).

    Parameters
    ----------
    mean : Tensor or ndarray
        ``(n_inputs,)`` or ``(n_inputs, n_outputs)`` predicted means.
    std : Tensor or ndarray
        Predicted standard deviations (> 0), of the shape of ``mean``.
    targets : Tensor or ndarray
        Targets, of the shape of ``mean``.
    kind : {"interval", "quantile"}, default "interval"
        Central intervals (under the curve: overconfident) or one-sided
        quantiles (the curve also shows a biased mean).
    n_points : int, default 100
        Number of expected masses, >= 2, from 0 to 1 inclusive.

    Returns
    -------
    expected, observed : ndarray
        ``(n_points,)`` float64 each; both start at 0 and end at 1 (up to
        targets exactly on the mean, which count as inside at ``p = 0``).

    Examples
    --------
    >>> import numpy as np
    >>> expected, observed = regression_calibration_curve(
    ...     np.zeros(4), np.ones(4), np.array([-2.0, -0.1, 0.3, 1.0]), n_points=3
    ... )
    >>> expected.tolist(), observed.tolist()
    ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    """
    kind, n_points = _check_curve_args(kind, n_points)
    mean, targets, std = _checked(mean, targets, std)
    residuals = (targets - mean) / std
    expected = np.linspace(0.0, 1.0, n_points)

    if kind == "interval":
        scores, thresholds = np.abs(residuals), _ndtri((1.0 + expected) / 2)
    else:
        scores, thresholds = residuals, _ndtri(expected)
    inside = np.searchsorted(np.sort(scores), thresholds, side="right")
    return expected, inside / len(scores)


def _area_to_diagonal(expected: np.ndarray, observed: np.ndarray) -> float:
    """Exact area between a polyline and the diagonal, split where they cross."""
    gaps = observed - expected
    left, right, widths = gaps[:-1], gaps[1:], np.diff(expected)
    same_side = left * right >= 0

    # A segment that crosses the diagonal is two triangles meeting there.
    total = np.abs(left) + np.abs(right)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = (left**2 + right**2) / (2 * total)
    areas = np.where(same_side, total / 2, crossing) * widths
    return float(np.sum(areas))


def miscalibration_area(
    mean: object,
    std: object,
    targets: object,
    kind: str = "interval",
    n_points: int = 100,
) -> float:
    """Area between the regression calibration curve and the diagonal.

    .. math:: \\int_0^1 |\\mathrm{obs}(p) - p| \\, dp

    with :math:`\\mathrm{obs}` the polyline through the points of
    :func:`regression_calibration_curve`. The area is exact for that
    polyline: a segment that crosses the diagonal is split at the crossing.

    Parameters
    ----------
    mean, std, targets, kind, n_points
        As in :func:`regression_calibration_curve`.

    Returns
    -------
    float
        In [0, 0.5]; 0 for a calibrated model.

    Examples
    --------
    >>> import numpy as np
    >>> miscalibration_area(
    ...     np.zeros(2), np.ones(2), np.array([0.0, 0.0]), n_points=2
    ... )
    0.5
    """
    expected, observed = regression_calibration_curve(
        mean, std, targets, kind, n_points
    )
    return _area_to_diagonal(expected, observed)


def regression_calibration_error(
    mean: object,
    std: object,
    targets: object,
    kind: str = "interval",
    n_points: int = 100,
) -> float:
    """Root mean squared gap between the calibration curve and the diagonal.

    .. math:: \\sqrt{\\frac1P \\sum_{j=1}^{P} (\\mathrm{obs}(p_j) - p_j)^2}

    over the ``P = n_points`` points of :func:`regression_calibration_curve`.

    Parameters
    ----------
    mean, std, targets, kind, n_points
        As in :func:`regression_calibration_curve`.

    Returns
    -------
    float
        In [0, 1]; 0 for a calibrated model.

    Examples
    --------
    >>> import numpy as np
    >>> regression_calibration_error(
    ...     np.zeros(2), np.ones(2), np.array([0.0, 0.0]), n_points=2
    ... )
    0.7071067811865476
    """
    expected, observed = regression_calibration_curve(
        mean, std, targets, kind, n_points
    )
    return float(np.sqrt(np.mean((observed - expected) ** 2)))
