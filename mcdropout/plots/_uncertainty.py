"""How uncertainty separates right from wrong predictions."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcdropout._validation import check_positive_int
from mcdropout.metrics import aurc, risk_coverage_curve
from mcdropout.plots._common import (
    MEASURE_LABELS,
    MEASURES,
    axes_or_new,
    check_classification,
    check_measures,
    correct_of,
    figure_or_new,
    measure_values,
    uncertainty_scores,
)
from mcdropout.predictions import ClassificationPrediction

__all__ = ["risk_coverage", "uncertainty_distributions"]

RIGHT_COLOR, WRONG_COLOR = "tab:green", "tab:red"


def _histograms(
    ax: Axes, values: np.ndarray, correct: np.ndarray, bins: int, measure: str
) -> None:
    # One set of edges for both groups, so their bars line up.
    edges = np.histogram_bin_edges(values, bins=bins)
    groups = (("Correct", correct, RIGHT_COLOR), ("Wrong", ~correct, WRONG_COLOR))
    for name, group, color in groups:
        if not group.any():
            continue
        ax.hist(
            values[group],
            bins=edges,
            density=True,
            color=color,
            alpha=0.5,
            label=f"{name} (n={int(group.sum())})",
        )
    ax.set_xlabel(MEASURE_LABELS[measure])
    ax.set_ylabel("Density")
    ax.legend(fontsize="small")


def uncertainty_distributions(
    prediction: ClassificationPrediction,
    measures: str | Sequence[str] = MEASURES,
    *,
    bins: int = 30,
    fig: Figure | None = None,
) -> Figure:
    """Histograms of each uncertainty measure, correct against wrong inputs.

    A useful measure puts the wrong predictions (red) at higher uncertainty
    than the correct ones (green); the more the two densities overlap, the
    less the measure tells them apart.

    Parameters
    ----------
    prediction : ClassificationPrediction
        A prediction that carries its targets.
    measures : str or sequence of str, default all
        Any of ``"confidence"``, ``"predictive_entropy"``,
        ``"expected_entropy"``, ``"mutual_information"``,
        ``"variation_ratio"``; one panel each, in this order.
    bins : int, default 30
        Number of histogram bins, shared by both groups of a panel.
    fig : Figure, optional
        An empty figure to draw into; None creates a new pyplot figure.

    Returns
    -------
    Figure
        ``fig.axes[j]`` is the panel of ``measures[j]``; its ``containers``
        hold the density bars of the correct inputs, then of the wrong ones
        (a group with no input is left out).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from mcdropout.predictions import (
    ...     ClassificationPrediction, ClassificationStatistics
    ... )
    >>> log_probs = torch.randn(10, 8, 3).log_softmax(-1)
    >>> prediction = ClassificationPrediction.from_statistics(
    ...     ClassificationStatistics.of(log_probs), targets=torch.arange(8) % 3
    ... )
    >>> fig = uncertainty_distributions(prediction, ["mutual_information"])
    >>> fig.axes[0].get_xlabel()
    'Mutual information (nats)'
    """
    prediction = check_classification("prediction", prediction)
    measures = check_measures(measures)
    bins = check_positive_int("bins", bins)
    correct = correct_of("prediction", prediction)

    n = len(measures)
    fig = figure_or_new(fig, (3.6 * n, 3.2))
    for ax, measure in zip(np.atleast_1d(fig.subplots(1, n)), measures, strict=True):
        values = measure_values(prediction, measure)
        _histograms(ax, values, correct, bins, measure)
    return fig


def _oracle_ranks(correct: np.ndarray) -> np.ndarray:
    """Distinct uncertainty scores that put every right input first.

    Distinct, so the curve has a point at every coverage rather than one
    per tie group.
    """
    order = np.argsort(~correct, kind="stable")
    ranks = np.empty(len(correct), dtype=np.float64)
    ranks[order] = np.arange(len(correct))
    return ranks


def risk_coverage(
    prediction: ClassificationPrediction,
    measures: str | Sequence[str] = MEASURES,
    *,
    oracle: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Risk-coverage curves, one per uncertainty measure.

    Keeping only the fraction ``coverage`` of inputs with the lowest
    uncertainty, the risk is the error rate among them (see
    :func:`mcdropout.metrics.risk_coverage_curve`). Each curve's area, the
    AURC (lower is better), is in the legend. The oracle curve ranks every
    correct input before every wrong one, the best any measure could do;
    the dotted line is the overall error rate, what a random order gives.

    Parameters
    ----------
    prediction : ClassificationPrediction
        A prediction that carries its targets.
    measures : str or sequence of str, default all
        As in :func:`uncertainty_distributions`; ``"confidence"`` ranks by
        ``1 - confidence``.
    oracle : bool, default True
        Also draw the oracle curve.
    ax : Axes, optional
        Where to draw; None creates a new pyplot figure.

    Returns
    -------
    Axes
        ``ax.lines`` holds one curve per measure in order, then the oracle
        curve (when drawn), then the error-rate line.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from mcdropout.predictions import (
    ...     ClassificationPrediction, ClassificationStatistics
    ... )
    >>> log_probs = torch.randn(10, 8, 3).log_softmax(-1)
    >>> prediction = ClassificationPrediction.from_statistics(
    ...     ClassificationStatistics.of(log_probs), targets=torch.arange(8) % 3
    ... )
    >>> ax = risk_coverage(prediction, ["predictive_entropy"])
    >>> len(ax.lines)
    3
    """
    prediction = check_classification("prediction", prediction)
    measures = check_measures(measures)
    correct = correct_of("prediction", prediction)
    ax = axes_or_new(ax)

    for measure in measures:
        scores = uncertainty_scores(prediction, measure)
        coverage, risk = risk_coverage_curve(scores, correct)
        label = f"{measure} (AURC = {aurc(scores, correct):.4f})"
        ax.plot(coverage, risk, label=label)
    if oracle:
        ranks = _oracle_ranks(correct)
        coverage, risk = risk_coverage_curve(ranks, correct)
        label = f"oracle (AURC = {aurc(ranks, correct):.4f})"
        ax.plot(coverage, risk, color="black", linestyle="--", label=label)

    error_rate = 1.0 - correct.mean()
    ax.axhline(error_rate, color="gray", linestyle=":", label="error rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Coverage (share of inputs kept)")
    ax.set_ylabel("Risk (error rate among kept)")
    ax.legend(fontsize="small")
    return ax
