"""Temperature scaling of Monte Carlo dropout classifiers (Guo et al., 2017).

One temperature ``T`` divides every pass's logits before its softmax, and is
chosen to minimise the negative log-likelihood of the Monte Carlo average
on held-out data:

.. math:: \\min_T -\\frac1N \\sum_i \\log \\frac1P \\sum_{t=1}^{P}
   \\mathrm{softmax}(z_{ti} / T)_{y_i}

With one pass of the dropout-off model this is ordinary temperature scaling.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mcdropout._exceptions import MCDropoutWarning
from mcdropout.calibration._mc import check_mc, collect_outputs, reconfigured
from mcdropout.calibration._search import minimize_bounded
from mcdropout.metrics._checks import check_scores, check_targets
from mcdropout.predictions import log_probs_from_logits
from mcdropout.sampling import MCDropout
from mcdropout.sampling._batches import Batch

__all__ = [
    "TEMPERATURE_RANGE",
    "TemperatureFit",
    "fit_temperature",
    "fit_temperature_from_logits",
    "mc_nll",
]

logger = logging.getLogger(__name__)

# Temperatures searched: from sharpening 20-fold to flattening 20-fold.
TEMPERATURE_RANGE = (0.05, 20.0)

# The search in log T: grid cells of 0.25 (a factor 1.28 in T), refined to
# a relative precision of 1e-6 in T.
_GRID_POINTS = 25
_LOG_TOL = 1e-6

# Elements of float64 log-probabilities evaluated at a time (32 MiB).
_CHUNK_ELEMENTS = 1 << 22


def _target_log_probs(logits: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """``(n_passes, n_inputs)`` log-probability of each input's target."""
    index = targets.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    if logits.shape[-1] == 1:
        # A binary model's logit: MCDropout's own conversion to two classes.
        log_probs = log_probs_from_logits(logits, temperature)
        return log_probs.gather(-1, index).squeeze(-1)

    # log softmax at the target alone: never materialises all log-probabilities.
    scaled = logits.double() / temperature
    return scaled.gather(-1, index).squeeze(-1) - torch.logsumexp(scaled, dim=-1)


def mc_nll(logits: Tensor, targets: Tensor, temperature: float) -> float:
    """NLL of the mean over passes of ``softmax(logits / temperature)``.

    ``logits`` ``(n_passes, n_inputs, n_classes)`` (a single column is a
    binary model's logit, as in MCDropout), ``targets`` int64
    ``(n_inputs,)``. Computed in float64 with logsumexp over passes and no
    clipping, a block of inputs at a time to bound memory.
    """
    n_passes, n_inputs = logits.shape[:2]
    rows = max(1, _CHUNK_ELEMENTS // (n_passes * max(logits.shape[-1], 2)))

    total = 0.0
    for start in range(0, n_inputs, rows):
        block = slice(start, start + rows)
        log_probs = _target_log_probs(logits[:, block], targets[block], temperature)
        log_mean = torch.logsumexp(log_probs, dim=0) - math.log(n_passes)
        total -= float(log_mean.sum())
    return total / n_inputs


@dataclass(frozen=True)
class TemperatureFit:
    """A temperature fitted on validation data, and what it changed.

    Attributes
    ----------
    temperature : float
        The fitted ``T``, dividing the raw logits of every pass; pass it as
        ``MCDropout(..., temperature=T)`` or use :meth:`apply`.
    nll_before : float
        Validation NLL (nats) at ``initial_temperature``.
    nll_after : float
        Validation NLL at ``temperature``; never above ``nll_before``.
    initial_temperature : float
        The temperature the model had before the fit (1 when none was set).
    n_passes : int
        Passes per input the fit used (1 for the deterministic baseline).
    n_inputs : int
        Number of validation inputs.
    """

    temperature: float
    nll_before: float
    nll_after: float
    initial_temperature: float
    n_passes: int
    n_inputs: int

    def apply(self, mc: MCDropout) -> MCDropout:
        """A new MCDropout like ``mc`` with the fitted temperature.

        ``mc`` is left unchanged; the model is shared, not copied.
        """
        return reconfigured(
            check_mc(mc, "classification"), temperature=self.temperature
        )


def _checked_logits(logits: object) -> Tensor:
    array = check_scores(
        "logits",
        logits,
        (2, 3),
        "(n_passes, n_inputs, n_classes) or (n_inputs, n_classes)",
    )
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor


def _fit(logits: Tensor, targets: Tensor, initial: float) -> TemperatureFit:
    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    found = minimize_bounded(
        lambda x: mc_nll(logits, targets, math.exp(x)),
        low,
        high,
        n_grid=_GRID_POINTS,
        tol=_LOG_TOL,
    )
    nll_before = mc_nll(logits, targets, initial)

    # The search is over the range only; a start outside it may still win.
    temperature, nll_after = math.exp(found.x), found.value
    if nll_before < nll_after:
        temperature, nll_after = initial, nll_before
    elif found.at_bound:
        warnings.warn(
            f"the validation NLL is smallest at the edge of the temperature range "
            f"{TEMPERATURE_RANGE}; returning temperature {temperature:.4g}",
            MCDropoutWarning,
            stacklevel=3,
        )
    logger.info(
        "temperature %.4g: NLL %.4f -> %.4f", temperature, nll_before, nll_after
    )
    return TemperatureFit(
        temperature, nll_before, nll_after, initial, logits.shape[0], logits.shape[1]
    )


def _checked_fit_targets(targets: object, logits: Tensor) -> Tensor:
    n_classes = max(logits.shape[-1], 2)
    array = check_targets(targets, logits.shape[1], n_classes)
    return torch.from_numpy(np.ascontiguousarray(array))


def fit_temperature_from_logits(logits: object, targets: object) -> TemperatureFit:
    """Fit a temperature to logits already collected from a model.

    Minimises :func:`mc_nll` over ``T`` in [0.05, 20]: 25 grid points evenly
    spaced in ``log T``, then golden-section search in ``log T`` between the
    neighbours of the best grid point, to within 1e-6 in ``log T``.

    Parameters
    ----------
    logits : Tensor or ndarray
        ``(n_passes, n_inputs, n_classes)`` per-pass logits, or
        ``(n_inputs, n_classes)`` for a single (deterministic) pass. A
        single column is a binary model's logit of class 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices.

    Returns
    -------
    TemperatureFit
        ``nll_before`` is at ``T = 1``.

    Warns
    -----
    MCDropoutWarning
        When the best temperature is at an end of [0.05, 20].

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> fit = fit_temperature_from_logits(logits, torch.tensor([0, 1, 1, 1]))
    >>> round(fit.temperature, 3), fit.nll_after < fit.nll_before
    (3.641, True)
    """
    logits = _checked_logits(logits)
    targets = _checked_fit_targets(targets, logits)
    return _fit(logits, targets, 1.0)


def fit_temperature(
    mc: MCDropout,
    inputs: Batch | Iterable,
    targets: Tensor | None = None,
    *,
    deterministic: bool = False,
) -> TemperatureFit:
    """Fit the temperature of a Monte Carlo dropout classifier on validation data.

    Runs ``mc``'s passes once over ``inputs``, keeps every pass's logits and
    minimises the NLL of the Monte Carlo average over the temperature, as
    :func:`fit_temperature_from_logits` does. The passes run exactly as
    :meth:`MCDropout.predict` runs them (same flags, seed, batching), so with
    a seed ``fit.apply(mc).predict(inputs)`` has NLL ``fit.nll_after``.

    Parameters
    ----------
    mc : MCDropout
        A classification wrapper; it is not changed.
    inputs : Tensor, tuple, list, dict, or iterable of batches
        Validation inputs, as for :meth:`MCDropout.predict`; an iterable's
        items are ``(inputs, targets)`` pairs.
    targets : Tensor or None
        ``(n_inputs,)`` class indices of a single batch of ``inputs``.
    deterministic : bool, default False
        Fit the dropout-off model instead (one pass in eval mode): plain
        temperature scaling, the baseline to compare against.

    Returns
    -------
    TemperatureFit
        ``nll_before`` is at ``mc``'s own temperature (1 when it has none);
        the fitted temperature replaces it (it is not multiplied).

    Notes
    -----
    Memory holds ``n_passes * n_inputs * n_classes`` logits in the model's
    dtype (50 passes of 10,000 inputs over 100 classes in float32: 200 MB).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> import mcdropout
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.Linear(16, 3))
    >>> mc = mcdropout.MCDropout(model, n_passes=10, seed=0)
    >>> x = 5 * torch.randn(200, 4)  # validation inputs, and targets:
    >>> y = torch.multinomial(mc.predict(x).probs, 1).squeeze(1)
    >>> fit = fit_temperature(mc, x, y)
    >>> fit.nll_after <= fit.nll_before
    True
    >>> calibrated = fit.apply(mc)
    >>> calibrated.temperature == fit.temperature
    True
    """
    check_mc(mc, "classification")
    logits, collected = collect_outputs(
        mc, inputs, targets, deterministic=deterministic
    )
    targets = _checked_fit_targets(collected, logits)
    return _fit(logits, targets, mc.temperature or 1.0)
