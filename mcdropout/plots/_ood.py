"""How uncertainty separates out-of-distribution inputs from the rest."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from mcdropout._validation import check_positive_int
from mcdropout.metrics import ood_detection
from mcdropout.plots._common import (
    MEASURE_LABELS,
    check_classification,
    check_measures,
    figure_or_new,
    measure_values,
    uncertainty_scores,
)
from mcdropout.predictions import ClassificationPrediction

__all__ = ["OOD_MEASURES", "ood_histograms"]

OOD_MEASURES = ("confidence", "predictive_entropy", "mutual_information")

IN_COLOR, OUT_COLOR = "tab:blue", "tab:orange"


def _histograms(
    ax: Axes, in_values: np.ndarray, out_values: np.ndarray, bins: int, measure: str
) -> None:
    edges = np.histogram_bin_edges(np.r_[in_values, out_values], bins=bins)
    for values, name, color in (
        (in_values, "In distribution", IN_COLOR),
        (out_values, "Out of distribution", OUT_COLOR),
    ):
        label = f"{name} (n={len(values)})"
        ax.hist(values, bins=edges, density=True, alpha=0.5, color=color, label=label)
    ax.set_xlabel(MEASURE_LABELS[measure])
    ax.set_ylabel("Density")
    ax.legend(fontsize="small")


def _roc(ax: Axes, in_scores: np.ndarray, out_scores: np.ndarray, measure: str) -> None:
    scores = ood_detection(in_scores, out_scores)
    positive = np.r_[np.zeros(len(in_scores), bool), np.ones(len(out_scores), bool)]
    fpr, tpr, _ = roc_curve(positive, np.r_[in_scores, out_scores])
    label = (
        f"{measure}\nAUROC = {scores.auroc:.3f}, "
        f"FPR@95%TPR = {scores.fpr_at_95_tpr:.3f}"
    )
    ax.plot(fpr, tpr, label=label)


def _style_roc(ax: Axes) -> None:
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="chance")
    ax.axhline(0.95, color="gray", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate (in-distribution flagged)")
    ax.set_ylabel("True positive rate (OOD flagged)")
    ax.legend(fontsize="x-small", loc="lower right")


def ood_histograms(
    in_prediction: ClassificationPrediction,
    out_prediction: ClassificationPrediction,
    measures: str | Sequence[str] = OOD_MEASURES,
    *,
    bins: int = 30,
    fig: Figure | None = None,
) -> Figure:
    """Out-of-distribution detection: score histograms and ROC curves.

    One panel per measure shows its distribution on in-distribution and on
    out-of-distribution inputs; the last panel holds one ROC curve per
    measure, flagging an input as out of distribution when its uncertainty
    score exceeds a threshold (``1 - confidence`` for ``"confidence"``).
    The legend gives each measure's AUROC and its false positive rate at a
    true positive rate of 95% (dotted line), from
    :func:`mcdropout.metrics.ood_detection`.

    Parameters
    ----------
    in_prediction : ClassificationPrediction
        Prediction on in-distribution inputs (the test set).
    out_prediction : ClassificationPrediction
        Prediction of the same model on out-of-distribution inputs.
    measures : str or sequence of str, default ("confidence", "predictive_entropy", \
"mutual_information")
        Any of the measures of
        :func:`mcdropout.plots.uncertainty_distributions`.
    bins : int, default 30
        Number of histogram bins, shared by both groups of a panel.
    fig : Figure, optional
        An empty figure to draw into; None creates a new pyplot figure.

    Returns
    -------
    Figure
        ``fig.axes[j]`` is the histogram panel of ``measures[j]`` (its
        ``containers`` hold the in-, then the out-of-distribution density
        bars); ``fig.axes[-1]`` is the ROC panel, whose ``lines`` start
        with one curve per measure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from mcdropout.predictions import (
    ...     ClassificationPrediction, ClassificationStatistics
    ... )
    >>> def predict(scale):
    ...     log_probs = (scale * torch.randn(10, 20, 3)).log_softmax(-1)
    ...     stats = ClassificationStatistics.of(log_probs)
    ...     return ClassificationPrediction.from_statistics(stats)
    >>> fig = ood_histograms(predict(5.0), predict(0.1), "predictive_entropy")
    >>> len(fig.axes)
    2
    """
    in_prediction = check_classification("in_prediction", in_prediction)
    out_prediction = check_classification("out_prediction", out_prediction)
    measures = check_measures(measures)
    bins = check_positive_int("bins", bins)

    n = len(measures)
    fig = figure_or_new(fig, (3.6 * n + 4.6, 3.6))
    # The ROC panel is wider: its legend names every measure.
    axes = fig.subplots(1, n + 1, width_ratios=[1.0] * n + [1.3])
    for ax, measure in zip(axes[:-1], measures, strict=True):
        in_values = measure_values(in_prediction, measure)
        out_values = measure_values(out_prediction, measure)
        _histograms(ax, in_values, out_values, bins, measure)
        in_scores = uncertainty_scores(in_prediction, measure)
        out_scores = uncertainty_scores(out_prediction, measure)
        _roc(axes[-1], in_scores, out_scores, measure)
    _style_roc(axes[-1])
    return fig
