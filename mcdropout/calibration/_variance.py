"""Recalibrating the spread of Gaussian regression predictions.

Two fits on validation data, both minimising the Gaussian NLL of the
targets: a factor ``s^2`` multiplying the predictive variance (closed form),
or the model precision ``tau`` whose noise variance ``1 / tau`` is added to
the epistemic variance of Monte Carlo dropout (Gal & Ghahramani, 2016).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropoutWarning,
)
from mcdropout.calibration._mc import check_mc, reconfigured
from mcdropout.calibration._search import Minimum, minimize_bounded
from mcdropout.metrics._checks import check_same_shape, check_scores
from mcdropout.metrics._regression import gaussian_nll_of_variance
from mcdropout.predictions import RegressionPrediction
from mcdropout.sampling import MCDropout
from mcdropout.sampling._batches import Batch

__all__ = [
    "NoisePrecisionFit",
    "VarianceScaleFit",
    "fit_noise_precision",
    "fit_variance_scale",
]

logger = logging.getLogger(__name__)

# Noise variances searched, relative to the largest squared error: the NLL
# only rises beyond it, and below 1e-12 of it the noise is negligible.
_NOISE_DECADES = 12


def _flat(values: Tensor) -> np.ndarray:
    """A prediction's tensor as flat float64 values (user-built ones may be
    float32, and NumPy keeps float32 when a Python float is added)."""
    return values.detach().cpu().double().numpy().ravel()


def _nll_or_nan(mean: np.ndarray, variance: np.ndarray, targets: np.ndarray) -> float:
    # A zero variance gives a density of 0 or a point mass: no finite NLL.
    if not (variance > 0).all():
        return float("nan")
    return gaussian_nll_of_variance(mean, variance, targets)


def _resolve(
    prediction: object, inputs: object, targets: object
) -> tuple[RegressionPrediction, np.ndarray]:
    """The prediction to fit on and its flattened float64 targets."""
    if isinstance(prediction, MCDropout):
        mc = check_mc(prediction, "regression")
        if inputs is None:
            raise ArgumentValueError(
                "expected `inputs` to predict on when `prediction` is an MCDropout, "
                "got None"
            )
        prediction, targets = mc.predict(inputs, targets=targets), None
    elif not isinstance(prediction, RegressionPrediction):
        raise ArgumentTypeError(
            "expected `prediction` to be a RegressionPrediction or an MCDropout "
            f"with task='regression', got {type(prediction).__name__}"
        )
    elif inputs is not None:
        raise ArgumentValueError(
            "expected `inputs` to be None when `prediction` is a "
            f"RegressionPrediction (it is already made), got {type(inputs).__name__}"
        )

    targets = prediction.targets if targets is None else targets
    if targets is None:
        raise ArgumentValueError(
            "expected targets to fit on: pass `targets`, or a prediction made "
            "with targets, got none"
        )
    targets = check_scores("targets", targets, (1, 2), "(n_inputs, ...)")
    check_same_shape(
        "prediction.mean", prediction.mean.detach().cpu().numpy(), targets=targets
    )
    return prediction, targets.ravel()


def _residuals_squared(
    prediction: RegressionPrediction, targets: np.ndarray
) -> np.ndarray:
    squared = (targets - _flat(prediction.mean)) ** 2
    if not squared.any():
        raise ArgumentValueError(
            "expected targets that differ from the predicted means somewhere, got "
            "every target equal to its mean; no spread can be fitted"
        )
    return squared


@dataclass(frozen=True)
class VarianceScaleFit:
    """A factor on the predictive variance, fitted on validation data.

    Attributes
    ----------
    scale : float
        ``s^2``, multiplying the predictive variance (``s`` multiplies the
        standard deviation).
    nll_before : float
        Validation Gaussian NLL (nats per value) of the prediction as given.
    nll_after : float
        Validation NLL with the variance multiplied by ``scale``.
    n_values : int
        Number of target values fitted on.
    """

    scale: float
    nll_before: float
    nll_after: float
    n_values: int

    def apply(self, prediction: RegressionPrediction) -> RegressionPrediction:
        """A new prediction whose epistemic and aleatoric variances are both
        multiplied by ``scale``; ``prediction`` is left unchanged."""
        if not isinstance(prediction, RegressionPrediction):
            raise ArgumentTypeError(
                "expected `prediction` to be a RegressionPrediction, got "
                f"{type(prediction).__name__}"
            )
        return dataclasses.replace(
            prediction,
            epistemic_variance=prediction.epistemic_variance * self.scale,
            aleatoric_variance=prediction.aleatoric_variance * self.scale,
        )


def fit_variance_scale(
    prediction: RegressionPrediction | MCDropout,
    inputs: Batch | Iterable | None = None,
    targets: Tensor | None = None,
) -> VarianceScaleFit:
    """Fit the factor on the predictive variance that minimises the NLL.

    For predicted means :math:`\\mu_i`, variances :math:`\\sigma_i^2` and
    targets :math:`y_i`, the Gaussian NLL of :math:`(\\mu_i, s^2 \\sigma_i^2)`
    is smallest at

    .. math:: s^2 = \\frac1N \\sum_i \\frac{(y_i - \\mu_i)^2}{\\sigma_i^2}

    (its derivative in :math:`s^2` vanishes there), the mean squared
    standardised residual; no search is needed.

    Parameters
    ----------
    prediction : RegressionPrediction or MCDropout
        A validation prediction, or a regression wrapper to run on
        ``inputs``. Its total variance (epistemic plus aleatoric) must be
        > 0 everywhere.
    inputs : Tensor, tuple, list, dict, iterable of batches, or None
        Validation inputs, only with an MCDropout.
    targets : Tensor or None
        Validation targets of the shape of the prediction's mean; by default
        the prediction's own (or the batches') targets.

    Returns
    -------
    VarianceScaleFit

    Examples
    --------
    >>> import torch
    >>> from mcdropout import RegressionPrediction
    >>> prediction = RegressionPrediction(
    ...     torch.zeros(2), torch.ones(2), torch.zeros(2), n_passes=10
    ... )
    >>> fit = fit_variance_scale(prediction, targets=torch.tensor([2.0, -2.0]))
    >>> fit.scale, float(fit.apply(prediction).std[0])
    (4.0, 2.0)
    """
    prediction, targets = _resolve(prediction, inputs, targets)
    mean = _flat(prediction.mean)
    variance = _flat(prediction.variance)
    if not (variance > 0).all():
        raise ArgumentValueError(
            "expected the prediction's variance > 0 everywhere to scale it, got "
            f"{int((variance <= 0).sum())} zero value(s); a prediction without "
            "aleatoric variance (deterministic, or no noise_precision) needs "
            "fit_noise_precision instead"
        )

    scale = float(np.mean(_residuals_squared(prediction, targets) / variance))
    nll_before = gaussian_nll_of_variance(mean, variance, targets)
    nll_after = gaussian_nll_of_variance(mean, variance * scale, targets)
    logger.info("variance scale %.4g: NLL %.4f -> %.4f", scale, nll_before, nll_after)
    return VarianceScaleFit(scale, nll_before, nll_after, len(targets))


@dataclass(frozen=True)
class NoisePrecisionFit:
    """A model precision ``tau`` fitted on validation data.

    Attributes
    ----------
    noise_precision : float
        ``tau``; the predictive variance is the epistemic variance plus
        ``1 / tau``. Pass it as ``MCDropout(..., noise_precision=tau)`` or
        use :meth:`apply`.
    nll_before : float
        Validation Gaussian NLL (nats per value) of the prediction as
        given; NaN when its variance is 0 somewhere.
    nll_after : float
        Validation NLL with variance ``epistemic + 1 / tau``.
    n_values : int
        Number of target values fitted on.
    """

    noise_precision: float
    nll_before: float
    nll_after: float
    n_values: int

    def apply(
        self, target: MCDropout | RegressionPrediction
    ) -> MCDropout | RegressionPrediction:
        """The fitted precision put into a copy of ``target``.

        An MCDropout gives a new wrapper with ``noise_precision=tau`` (the
        model is shared, not copied); a RegressionPrediction gives a new
        prediction with aleatoric variance ``1 / tau``. ``target`` itself is
        left unchanged.
        """
        if isinstance(target, MCDropout):
            mc = check_mc(target, "regression")
            return reconfigured(mc, noise_precision=self.noise_precision)
        if isinstance(target, RegressionPrediction):
            noise = torch.full_like(target.epistemic_variance, 1 / self.noise_precision)
            return dataclasses.replace(target, aleatoric_variance=noise)
        raise ArgumentTypeError(
            "expected `target` to be an MCDropout or a RegressionPrediction, got "
            f"{type(target).__name__}"
        )


def _search_log_noise(nll: Callable[[float], float], largest: float) -> Minimum:
    """Minimise ``nll`` over the log noise variance, up to ``log(largest)``."""
    high = math.log(largest)
    low = high - _NOISE_DECADES * math.log(10)
    found = minimize_bounded(nll, low, high, n_grid=61)

    # An optimum at the upper end is genuine (all errors equal); at the lower
    # end the NLL would fall further with less noise.
    if found.at_bound and found.x < (low + high) / 2:
        warnings.warn(
            "the validation NLL keeps falling as the noise variance goes to 0 "
            "(the epistemic variance covers the errors); returning "
            f"noise_precision {math.exp(-found.x):.4g}, the end of the range",
            MCDropoutWarning,
            stacklevel=3,
        )
    return found


def fit_noise_precision(
    prediction: RegressionPrediction | MCDropout,
    inputs: Batch | Iterable | None = None,
    targets: Tensor | None = None,
) -> NoisePrecisionFit:
    """Fit the model precision ``tau`` of a Monte Carlo dropout regressor.

    Minimises over :math:`\\tau` the Gaussian NLL with the epistemic
    variance :math:`v_i` (the variance of the per-pass means) plus the
    noise variance :math:`1 / \\tau`:

    .. math:: \\min_\\tau \\frac1N \\sum_i \\left[\\frac12 \\log 2\\pi
       (v_i + \\tau^{-1}) + \\frac{(y_i - \\mu_i)^2}{2 (v_i + \\tau^{-1})}\\right]

    The noise variance is searched from :math:`10^{-12} m` to :math:`m`,
    :math:`m` the largest squared error (beyond it every term rises): 61 grid
    points evenly spaced in its logarithm, then golden-section search to
    within 1e-7 in the logarithm. With zero epistemic variance the optimum
    is :math:`1 / \\tau = \\frac1N \\sum_i (y_i - \\mu_i)^2`.

    Parameters
    ----------
    prediction : RegressionPrediction or MCDropout
        A validation prediction, or a regression wrapper (not
        heteroscedastic) to run on ``inputs``. Only its mean and epistemic
        variance are used: the fitted noise replaces any aleatoric variance.
    inputs : Tensor, tuple, list, dict, iterable of batches, or None
        Validation inputs, only with an MCDropout.
    targets : Tensor or None
        Validation targets of the shape of the prediction's mean; by default
        the prediction's own (or the batches') targets.

    Returns
    -------
    NoisePrecisionFit

    Warns
    -----
    MCDropoutWarning
        When the NLL keeps falling as the noise vanishes (the epistemic
        variance alone already covers the errors); the precision at the end
        of the searched range is returned.

    Notes
    -----
    Meant for homoscedastic models: a heteroscedastic model predicts its own
    aleatoric variance, which this fit would discard; scale it with
    :func:`fit_variance_scale` instead.

    Examples
    --------
    >>> import torch
    >>> from mcdropout import RegressionPrediction
    >>> prediction = RegressionPrediction(
    ...     torch.zeros(2), torch.zeros(2), torch.zeros(2), n_passes=1
    ... )
    >>> fit = fit_noise_precision(prediction, targets=torch.tensor([2.0, -2.0]))
    >>> round(fit.noise_precision, 6)
    0.25
    """
    if isinstance(prediction, MCDropout) and prediction.heteroscedastic:
        raise ArgumentValueError(
            "expected `prediction` to be a homoscedastic MCDropout, got "
            "heteroscedastic=True; its aleatoric variance is predicted, so scale "
            "it with fit_variance_scale instead"
        )
    prediction, targets = _resolve(prediction, inputs, targets)
    mean = _flat(prediction.mean)
    epistemic = _flat(prediction.epistemic_variance)

    def nll(log_noise: float) -> float:
        return gaussian_nll_of_variance(mean, epistemic + math.exp(log_noise), targets)

    found = _search_log_noise(nll, _residuals_squared(prediction, targets).max())
    nll_before = _nll_or_nan(mean, _flat(prediction.variance), targets)
    logger.info(
        "noise precision %.4g: NLL %.4f -> %.4f",
        math.exp(-found.x),
        nll_before,
        found.value,
    )
    return NoisePrecisionFit(math.exp(-found.x), nll_before, found.value, len(targets))
