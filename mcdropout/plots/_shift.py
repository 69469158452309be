"""How accuracy, calibration and uncertainty move as the data shifts."""

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcdropout._exceptions import ArgumentValueError
from mcdropout.metrics import accuracy, expected_calibration_error
from mcdropout.plots._common import (
    check_classification,
    figure_or_new,
    probs_and_targets,
)
from mcdropout.predictions import ClassificationPrediction

__all__ = ["dataset_shift", "shift_table"]

SHARE_COLUMNS = (
    ("accuracy", "Accuracy"),
    ("ece", "ECE"),
    ("mean_confidence", "Mean confidence"),
)
NATS_COLUMNS = (
    ("mean_predictive_entropy", "Mean predictive entropy"),
    ("mean_mutual_information", "Mean mutual information"),
)


def _row(
    prediction: ClassificationPrediction, n_bins: int, binning: str
) -> dict[str, float]:
    probs, targets = probs_and_targets(prediction, None, "predictions")
    return {
        "accuracy": accuracy(probs, targets),
        "ece": expected_calibration_error(probs, targets, n_bins, binning),
        "mean_confidence": float(prediction.confidence.mean()),
        "mean_predictive_entropy": float(prediction.predictive_entropy.mean()),
        "mean_mutual_information": float(prediction.mutual_information.mean()),
    }


def shift_table(
    predictions: Mapping[str, ClassificationPrediction],
    n_bins: int = 15,
    binning: str = "uniform",
) -> pd.DataFrame:
    """One row per shift: accuracy, ECE, mean confidence and uncertainties.

    Parameters
    ----------
    predictions : Mapping[str, ClassificationPrediction]
        Shift name (e.g. ``"gaussian_noise=0.5"``) to a prediction that
        carries its targets, in the order to report.
    n_bins, binning
        As in :func:`mcdropout.metrics.expected_calibration_error`.

    Returns
    -------
    pandas.DataFrame
        Indexed by shift name (index name ``"shift"``), with columns
        ``accuracy``, ``ece``, ``mean_confidence``,
        ``mean_predictive_entropy`` and ``mean_mutual_information``.
    """
    if not isinstance(predictions, Mapping) or not predictions:
        raise ArgumentValueError(
            "expected `predictions` to be a non-empty mapping of shift names to "
            f"predictions, got {predictions!r:.80}"
        )
    rows = {
        str(name): _row(check_classification("predictions", p), n_bins, binning)
        for name, p in predictions.items()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "shift"
    return frame


def _kind(name: str) -> str:
    """What a shift name shifts: the text before its first "=" or space."""
    return re.split(r"[=\s]", name.strip(), maxsplit=1)[0]


def _segments(names: list[str]) -> list[list[int]]:
    """Positions to join by a line: runs of names of the same kind.

    A first name unlike the next one (the clean test set, say) is the
    common start of every run, so each kind of shift starts from it.
    """
    runs: list[list[int]] = []
    for position, name in enumerate(names):
        if runs and _kind(names[runs[-1][-1]]) == _kind(name):
            runs[-1].append(position)
        else:
            runs.append([position])
    if len(runs) > 1 and len(runs[0]) == 1:
        start = runs.pop(0)
        runs = [start + run for run in runs]
    return runs


def _draw_segments(
    ax: Axes, values: np.ndarray, segments: list[list[int]], color: str, label: str
) -> None:
    for number, positions in enumerate(segments):
        # One legend entry per measure, not per segment.
        name = label if number == 0 else "_" + label
        if len(positions) > 1 and positions[1] != positions[0] + 1:
            # A run that starts from a far-away shared point: a dotted link,
            # so it does not read as passing through the points between.
            link = positions[:2]
            ax.plot(link, values[link], linestyle=":", color=color, label="_link")
            positions = positions[1:]
        ax.plot(positions, values[positions], marker="o", color=color, label=name)


def dataset_shift(
    predictions: Mapping[str, ClassificationPrediction],
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    fig: Figure | None = None,
) -> Figure:
    """Accuracy, ECE, confidence and uncertainty against dataset shift.

    One point per prediction, in the mapping's order (say the clean test
    set, then each kind of corruption in increasing severity). Lines join
    the points of one kind of shift, the text of a name before its first
    ``"="`` or space (``"gaussian_noise=0.5"``: ``gaussian_noise``); a
    first point of its own kind, such as ``"clean"``, starts every line,
    joined by a dotted link to the kinds that do not follow it directly.
    Left: accuracy, ECE and mean
    confidence, which share the [0, 1] scale; a model whose confidence falls
    with its accuracy keeps its ECE low. Right: mean predictive entropy and
    mean mutual information in nats, which should rise with the shift.

    Parameters
    ----------
    predictions : Mapping[str, ClassificationPrediction]
        Shift name to a prediction that carries its targets.
    n_bins : int, default 15
        Number of confidence bins of the ECE.
    binning : {"uniform", "quantile"}, default "uniform"
        Binning of the ECE.
    fig : Figure, optional
        An empty figure to draw into; None creates a new pyplot figure.

    Returns
    -------
    Figure
        Two Axes; ``fig.axes[0].lines`` holds accuracy, ECE and mean
        confidence, ``fig.axes[1].lines`` mean predictive entropy and mean
        mutual information, as in :func:`shift_table`: for each measure in
        turn, one solid line per kind of shift (x data: positions in the
        mapping), each after its dotted link when it has one.

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
    ...     targets = torch.arange(20) % 3
    ...     return ClassificationPrediction.from_statistics(stats, targets)
    >>> fig = dataset_shift({"clean": predict(5.0), "noise=1": predict(1.0)})
    >>> len(fig.axes[0].lines)
    3
    """
    table = shift_table(predictions, n_bins, binning)
    fig = figure_or_new(fig, (10.0, 3.6))
    segments = _segments(list(table.index))

    for ax, columns in zip(
        fig.subplots(1, 2), (SHARE_COLUMNS, NATS_COLUMNS), strict=True
    ):
        for index, (column, label) in enumerate(columns):
            _draw_segments(ax, table[column].to_numpy(), segments, f"C{index}", label)
        ax.set_xticks(range(len(table)), table.index, rotation=30, ha="right")
        ax.set_xlabel("Shift")
        ax.legend(fontsize="small")
    fig.axes[0].set_ylim(0, 1)
    fig.axes[0].set_ylabel("Share")
    fig.axes[1].set_ylim(bottom=0)
    fig.axes[1].set_ylabel("Nats")
    return fig
