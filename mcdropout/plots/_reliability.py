"""Reliability diagrams: accuracy against confidence, bin by bin."""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from mcdropout.metrics import accuracy, expected_calibration_error, reliability_bins
from mcdropout.metrics._classification import checked_probs_targets
from mcdropout.plots._common import axes_or_new, figure_or_new, probs_and_targets

__all__ = ["ReliabilityAxes", "reliability_diagram", "reliability_diagrams"]

ACCURACY_COLOR = "tab:blue"
GAP_COLOR = "tab:red"


class ReliabilityAxes(NamedTuple):
    """The two panels of a reliability diagram.

    Attributes
    ----------
    diagram : Axes
        Accuracy against confidence, with the diagonal.
    histogram : Axes or None
        Share of inputs per confidence bin, beneath; None when not drawn.
    """

    diagram: Axes
    histogram: Axes | None


class _Binned(NamedTuple):
    """One prediction's reliability table, ECE and confidences."""

    table: pd.DataFrame
    ece: float
    confidence: np.ndarray
    accuracy: float


def _binned(probs: object, targets: object, n_bins: int, binning: str) -> _Binned:
    probs, targets = checked_probs_targets(probs, targets)
    return _Binned(
        table=reliability_bins(probs, targets, n_bins, binning),
        ece=expected_calibration_error(probs, targets, n_bins, binning),
        confidence=probs.max(axis=1),
        accuracy=accuracy(probs, targets),
    )


def _hist_edges(table: pd.DataFrame, binning: str) -> np.ndarray:
    """Histogram edges: the uniform bins themselves, or as many uniform bins
    for quantile binning, whose own bins all hold the same number of inputs
    and would make a flat, uninformative histogram."""
    if binning == "uniform":
        return np.r_[table["lower"].to_numpy(), table["upper"].to_numpy()[-1]]
    return np.linspace(0.0, 1.0, len(table) + 1)


def _draw_bars(ax: Axes, table: pd.DataFrame) -> None:
    # Empty bins get no bar at all: an empty bin has no accuracy to show.
    filled = table[table["count"] > 0]
    lower, width = filled["lower"], filled["upper"] - filled["lower"]
    ax.bar(
        lower,
        filled["accuracy"],
        width=width,
        align="edge",
        color=ACCURACY_COLOR,
        edgecolor="black",
        linewidth=0.6,
        label="Accuracy",
    )
    # From the accuracy up (or down) to the mean confidence of the bin.
    ax.bar(
        lower,
        -filled["gap"],
        bottom=filled["accuracy"],
        width=width,
        align="edge",
        color=GAP_COLOR,
        alpha=0.3,
        edgecolor=GAP_COLOR,
        hatch="//",
        linewidth=0.6,
        label="Gap to confidence",
    )


def _draw_points(
    ax: Axes, table: pd.DataFrame, label: str, color: str | None, gaps: bool
) -> None:
    filled = table[table["count"] > 0]
    ax.plot(
        filled["confidence"],
        filled["accuracy"],
        marker="o",
        markersize=4,
        color=color,
        label=label,
    )
    if gaps:
        ax.vlines(
            filled["confidence"],
            filled["accuracy"],
            filled["confidence"],
            color=GAP_COLOR,
            linewidth=2,
            alpha=0.6,
            label="Gap to confidence",
        )


def _style_diagram(ax: Axes, title: str | None) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Accuracy")
    if title is not None:
        ax.set_title(title)


def _draw_histogram(
    ax: Axes,
    binned: _Binned,
    edges: np.ndarray,
    *,
    color: str | None = None,
    label: str | None = None,
    overlay: bool = False,
) -> None:
    weights = np.full(len(binned.confidence), 1.0 / len(binned.confidence))
    ax.hist(
        binned.confidence,
        bins=edges,
        weights=weights,
        histtype="step" if overlay else "bar",
        color=color or "gray",
        edgecolor="black" if not overlay else None,
        linewidth=1.5 if overlay else 0.6,
        label=label,
    )
    if not overlay:
        # As in Guo et al. (2017): the gap between these two lines is the
        # overall over- or underconfidence.
        ax.axvline(binned.accuracy, color=ACCURACY_COLOR, label="Accuracy")
        ax.axvline(
            binned.confidence.mean(),
            color=GAP_COLOR,
            linestyle="--",
            label="Mean confidence",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Share of inputs")


def _legend_title(label: str | None, ece: float) -> str:
    return f"ECE = {ece:.4f}" if label is None else f"{label}\nECE = {ece:.4f}"


def _check_hist_ax(hist_ax: object, ax: object) -> None:
    if hist_ax is not None and not isinstance(hist_ax, Axes):
        raise ArgumentTypeError(
            f"expected `hist_ax` to be a matplotlib Axes or None, got "
            f"{type(hist_ax).__name__}"
        )
    if hist_ax is not None and ax is None:
        raise ArgumentValueError(
            "expected `ax` with `hist_ax`: the histogram goes beneath a diagram "
            "you place, got ax=None"
        )


def _two_panels(fig: Figure, n_columns: int) -> np.ndarray:
    """``(2, n_columns)`` Axes: diagrams above, histograms beneath."""
    return fig.subplots(
        2, n_columns, height_ratios=(3, 1), sharex=True, sharey="row", squeeze=False
    )


def _diagram(
    axes: ReliabilityAxes, binned: _Binned, binning: str, label: str | None
) -> None:
    """A single prediction: bars for uniform bins, points for quantile ones."""
    if binning == "uniform":
        _draw_bars(axes.diagram, binned.table)
    else:
        _draw_points(axes.diagram, binned.table, "Accuracy", ACCURACY_COLOR, True)
    _style_diagram(axes.diagram, None)
    axes.diagram.legend(title=_legend_title(label, binned.ece), loc="upper left")
    if axes.histogram is None:
        axes.diagram.set_xlabel("Confidence")
        return
    _draw_histogram(axes.histogram, binned, _hist_edges(binned.table, binning))
    axes.histogram.legend(loc="upper left", fontsize="small")


def reliability_diagram(
    prediction_or_probs: object,
    targets: object = None,
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    ax: Axes | None = None,
    hist_ax: Axes | None = None,
    label: str | None = None,
) -> ReliabilityAxes:
    """Reliability diagram with a confidence histogram beneath.

    Inputs are binned by confidence (their largest probability) as in
    :func:`mcdropout.metrics.reliability_bins`. Each bin's accuracy is drawn
    as a bar (uniform bins) or a point at the bin's mean confidence
    (quantile bins); the hatched red part runs from the accuracy to the
    bin's mean confidence, its gap to the diagonal: above the bar the model
    is overconfident, inside it underconfident. The expected calibration
    error,

    .. math:: \\mathrm{ECE} = \\sum_b \\frac{n_b}{N}
       |\\mathrm{acc}_b - \\mathrm{conf}_b|,

    is in the legend. The histogram beneath shows the share of inputs per
    confidence bin, with the overall accuracy and mean confidence marked.

    Parameters
    ----------
    prediction_or_probs : ClassificationPrediction or Tensor or ndarray
        A prediction, or ``(n_inputs, n_classes)`` probabilities.
    targets : Tensor or ndarray, optional
        ``(n_inputs,)`` class indices; by default the prediction's own.
    n_bins : int, default 15
        Number of confidence bins.
    binning : {"uniform", "quantile"}, default "uniform"
        As in :func:`mcdropout.metrics.reliability_bins`.
    ax : Axes, optional
        Where to draw the diagram. None creates a new pyplot figure holding
        the diagram and the histogram.
    hist_ax : Axes, optional
        Where to draw the histogram when ``ax`` is given; without it no
        histogram is drawn.
    label : str, optional
        Name of the prediction, shown above the ECE in the legend.

    Returns
    -------
    ReliabilityAxes
        ``(diagram, histogram)``. Uniform bins: ``diagram.containers`` holds
        the accuracy bars then the gap bars, one bar per non-empty bin
        (empty bins have no bar). Quantile bins: ``diagram.lines[0]`` runs
        through the (confidence, accuracy) points.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> diagram, histogram = reliability_diagram(
    ...     probs, np.array([0, 1, 1, 0]), n_bins=5
    ... )
    >>> [float(bar.get_height()) for bar in diagram.containers[0]]
    [0.5, 0.5]
    """
    _check_hist_ax(hist_ax, ax)
    probs, targets = probs_and_targets(prediction_or_probs, targets)
    binned = _binned(probs, targets, n_bins, binning)

    if ax is None:
        diagram, histogram = _two_panels(figure_or_new(None, (5.0, 5.5)), 1)[:, 0]
        axes = ReliabilityAxes(diagram, histogram)
    else:
        axes = ReliabilityAxes(axes_or_new(ax), hist_ax)
    _diagram(axes, binned, binning, label)
    return axes


def _check_predictions(predictions: object) -> Mapping[str, object]:
    if not isinstance(predictions, Mapping) or not predictions:
        raise ArgumentValueError(
            "expected `predictions` to be a non-empty mapping of names to "
            f"predictions, got {predictions!r:.80}"
        )
    return predictions


def _overlay(fig: Figure, everything: dict[str, _Binned], binning: str) -> None:
    diagram, histogram = _two_panels(fig, 1)[:, 0]
    for index, (name, binned) in enumerate(everything.items()):
        color = f"C{index}"
        label = f"{name} (ECE = {binned.ece:.4f})"
        _draw_points(diagram, binned.table, label, color, gaps=False)
        edges = _hist_edges(binned.table, binning)
        _draw_histogram(histogram, binned, edges, color=color, overlay=True)
    _style_diagram(diagram, None)
    diagram.legend(loc="upper left", fontsize="small")


def reliability_diagrams(
    predictions: Mapping[str, object],
    targets: object = None,
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    overlay: bool = False,
    fig: Figure | None = None,
) -> Figure:
    """Reliability diagrams of several predictions of the same inputs.

    Side by side, one :func:`reliability_diagram` per prediction (same
    axes, so bars compare at a glance), or overlaid: one line per
    prediction through its bins' (mean confidence, accuracy) points, and
    one step histogram each beneath. The ECE of each is in its title or
    legend entry. Typical use: the plain model, MC dropout, and MC dropout
    with temperature scaling.

    Parameters
    ----------
    predictions : Mapping[str, ClassificationPrediction or probabilities]
        Name to prediction, drawn in the mapping's order.
    targets : Tensor or ndarray, optional
        ``(n_inputs,)`` class indices, for every prediction that does not
        carry its own.
    n_bins : int, default 15
        Number of confidence bins.
    binning : {"uniform", "quantile"}, default "uniform"
        As in :func:`mcdropout.metrics.reliability_bins`.
    overlay : bool, default False
        Draw all predictions on one diagram instead of side by side.
    fig : Figure, optional
        An empty figure to draw into; None creates a new pyplot figure.

    Returns
    -------
    Figure
        Side by side: ``fig.axes`` holds the ``k`` diagrams then the ``k``
        histograms. Overlaid: the diagram, whose ``lines`` start with one
        line per prediction, then the histogram.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> targets = np.array([0, 1, 1, 0])
    >>> sharp = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> flat = np.full((4, 2), 0.5)
    >>> fig = reliability_diagrams({"sharp": sharp, "flat": flat}, targets)
    >>> len(fig.axes)
    4
    """
    predictions = _check_predictions(predictions)
    everything = {}
    for name, prediction in predictions.items():
        probs, own_targets = probs_and_targets(prediction, targets, "predictions")
        everything[str(name)] = _binned(probs, own_targets, n_bins, binning)

    k = len(everything)
    size = (5.0, 5.5) if overlay else (4.0 * k, 5.0)
    fig = figure_or_new(fig, size)
    if overlay:
        _overlay(fig, everything, binning)
        return fig

    for column, (name, binned) in zip(
        _two_panels(fig, k).T, everything.items(), strict=True
    ):
        axes = ReliabilityAxes(*column)
        _diagram(axes, binned, binning, None)
        axes.diagram.set_title(name)
    return fig
