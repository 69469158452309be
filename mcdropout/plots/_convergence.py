"""How the metrics settle as passes are added: the evidence for choosing T."""

import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcdropout._exceptions import ArgumentValueError
from mcdropout.metrics import (
    accuracy,
    expected_calibration_error,
    negative_log_likelihood,
)
from mcdropout.metrics._checks import check_binning, check_n_bins
from mcdropout.plots._common import (
    check_classification,
    figure_or_new,
    probs_and_targets,
)
from mcdropout.predictions import ClassificationPrediction

__all__ = ["convergence", "running_metrics"]

PANELS = (
    ("accuracy", "Accuracy"),
    ("nll", "NLL (nats)"),
    ("ece", "ECE"),
)


def running_metrics(
    samples: torch.Tensor, targets: object, n_bins: int = 15, binning: str = "uniform"
) -> pd.DataFrame:
    """Accuracy, NLL and ECE of the mean of the first ``t`` passes, every ``t``.

    Parameters
    ----------
    samples : Tensor
        ``(n_passes, n_inputs, n_classes)`` per-pass probabilities.
    targets : Tensor or ndarray
        ``(n_inputs,)`` class indices.
    n_bins, binning
        As in :func:`mcdropout.metrics.expected_calibration_error`.

    Returns
    -------
    pandas.DataFrame
        One row per ``t = 1 .. n_passes``: ``n_passes``, ``accuracy``,
        ``nll``, ``ece``.

    Notes
    -----
    The running mean is a cumulative sum divided by ``t``, built one pass
    at a time in float64: each pass is added once, and memory stays at one
    ``(n_inputs, n_classes)`` sum instead of the ``(n_passes, n_inputs,
    n_classes)`` float64 array a one-shot ``cumsum`` would allocate.
    """
    n_bins, binning = check_n_bins(n_bins), check_binning(binning)
    if not isinstance(samples, torch.Tensor) or samples.ndim != 3:
        raise ArgumentValueError(
            "expected `samples` to be a Tensor of shape (n_passes, n_inputs, "
            f"n_classes), got {_describe(samples)}"
        )

    total = torch.zeros(samples.shape[1:], dtype=torch.float64)
    rows = []
    for t, probs in enumerate(samples, start=1):
        total += probs
        mean = total / t
        rows.append(
            {
                "n_passes": t,
                "accuracy": accuracy(mean, targets),
                "nll": negative_log_likelihood(mean, targets),
                "ece": expected_calibration_error(mean, targets, n_bins, binning),
            }
        )
    return pd.DataFrame(rows)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _baseline_metrics(
    baseline: object, targets: object, n_bins: int, binning: str
) -> dict[str, float]:
    probs, targets = probs_and_targets(baseline, targets, "baseline")
    return {
        "accuracy": accuracy(probs, targets),
        "nll": negative_log_likelihood(probs, targets),
        "ece": expected_calibration_error(probs, targets, n_bins, binning),
    }


def _panel(
    ax: Axes,
    n_passes: pd.Series,
    values: pd.Series,
    final: float,
    baseline: float | None,
) -> None:
    ax.plot(n_passes, values, marker=".", label="MC dropout")
    ax.axhline(final, linestyle="--", color="gray", label="all passes")
    if baseline is not None:
        ax.axhline(baseline, linestyle=":", color="black", label="dropout off")
    ax.set_xlabel("Number of passes averaged")
    ax.legend(fontsize="small")


def convergence(
    prediction: ClassificationPrediction,
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    baseline: ClassificationPrediction | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Accuracy, NLL and ECE against the number of passes averaged.

    For ``t = 1 .. n_passes``, the metrics of the mean of the first ``t``
    passes kept in ``prediction.samples``: where the curves flatten, more
    passes buy nothing. A dashed line marks the value with all passes; a
    dotted one the deterministic (dropout off) ``baseline`` when given.

    Parameters
    ----------
    prediction : ClassificationPrediction
        An MC dropout prediction with its targets and its samples (made
        with ``MCDropout(..., keep_samples=True)``).
    n_bins : int, default 15
        Number of confidence bins of the ECE.
    binning : {"uniform", "quantile"}, default "uniform"
        Binning of the ECE.
    baseline : ClassificationPrediction, optional
        The deterministic prediction of the same inputs.
    fig : Figure, optional
        An empty figure to draw into; None creates a new pyplot figure.

    Returns
    -------
    Figure
        Three Axes (accuracy, NLL, ECE); in each, ``lines[0]`` is the
        running curve, with x data ``1 .. n_passes``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from mcdropout.predictions import (
    ...     ClassificationPrediction, ClassificationStatistics
    ... )
    >>> log_probs = torch.randn(6, 8, 3).log_softmax(-1)
    >>> stats = ClassificationStatistics.of(log_probs, keep_samples=True)
    >>> prediction = ClassificationPrediction.from_statistics(
    ...     stats, targets=torch.arange(8) % 3
    ... )
    >>> fig = convergence(prediction, n_bins=5)
    >>> fig.axes[0].lines[0].get_xdata().tolist()
    [1, 2, 3, 4, 5, 6]
    """
    prediction = check_classification("prediction", prediction)
    if prediction.samples is None:
        raise ArgumentValueError(
            "expected `prediction` to hold its per-pass samples, got "
            "prediction.samples=None; predict with MCDropout(..., keep_samples=True)"
        )
    _, targets = probs_and_targets(prediction, None)
    table = running_metrics(prediction.samples, targets, n_bins, binning)
    reference = None
    if baseline is not None:
        reference = _baseline_metrics(baseline, targets, n_bins, binning)

    fig = figure_or_new(fig, (11.0, 3.2))
    for ax, (column, title) in zip(fig.subplots(1, len(PANELS)), PANELS, strict=True):
        final = table[column].iloc[-1]
        baseline_value = None if reference is None else reference[column]
        _panel(ax, table["n_passes"], table[column], final, baseline_value)
        ax.set_ylabel(title)
    return fig
