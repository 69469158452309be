"""The figures of a report, drawn on pyplot-free Figures.

A :class:`matplotlib.figure.Figure` made directly belongs to no global
registry: it needs no GUI, leaks nothing between reports and is freed as
soon as the report lets go of it.
"""

from collections.abc import Mapping

from matplotlib.figure import Figure

from mcdropout.plots import (
    convergence,
    dataset_shift,
    ood_histograms,
    regression_calibration,
    regression_intervals,
    reliability_diagrams,
    risk_coverage,
    uncertainty_distributions,
)
from mcdropout.plots._ood import OOD_MEASURES
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction

__all__ = ["CAPTIONS", "classification_figures", "regression_figures"]

CAPTIONS = {
    "reliability": "Reliability diagrams: accuracy against confidence per "
    "confidence bin, with the gap to the diagonal hatched in red (above the "
    "bar: overconfident). Beneath, the share of inputs per bin.",
    "reliability_overlay": "The same bins overlaid: one line per prediction "
    "through its bins' (mean confidence, accuracy) points.",
    "uncertainty_distributions": "Distribution of each uncertainty measure "
    "on correct (green) and wrong (red) MC dropout predictions; the less they "
    "overlap, the better the measure flags errors.",
    "risk_coverage": "Risk-coverage curves: the error rate among the inputs "
    "kept when only the least uncertain share is kept, for each measure; the "
    "oracle ranks every correct prediction first.",
    "ood": "Out-of-distribution detection: each measure on in- and "
    "out-of-distribution inputs, and the ROC curve of flagging an input as "
    "out of distribution when its uncertainty exceeds a threshold.",
    "convergence": "Accuracy, NLL and ECE of the mean of the first t passes, "
    "for t = 1 to the number of passes run; where the curves flatten, more "
    "passes buy nothing.",
    "shift": "Accuracy, ECE, mean confidence (left) and mean uncertainty "
    "(right) as the test data shift.",
    "calibration": "Regression calibration: the share of targets inside each "
    "central prediction interval against the share expected; below the "
    "diagonal the intervals are too narrow.",
    "intervals": "Predicted means with their 95% intervals against the "
    "targets; red intervals miss their target.",
}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def classification_figures(
    compared: Mapping[str, ClassificationPrediction],
    mc: ClassificationPrediction,
    *,
    deterministic: ClassificationPrediction | None,
    ood: ClassificationPrediction | None,
    shifted: Mapping[str, ClassificationPrediction] | None,
    n_bins: int,
) -> dict[str, Figure]:
    """Every figure a classification report shows, by name."""
    k = len(compared)
    figures = {"reliability": _figure(4.0 * k, 5.0)}
    reliability_diagrams(compared, n_bins=n_bins, fig=figures["reliability"])
    if k > 1:
        figures["reliability_overlay"] = _figure(5.0, 5.5)
        reliability_diagrams(
            compared, n_bins=n_bins, overlay=True, fig=figures["reliability_overlay"]
        )

    figures["uncertainty_distributions"] = _figure(18.0, 3.2)
    uncertainty_distributions(mc, fig=figures["uncertainty_distributions"])
    figures["risk_coverage"] = _figure(6.0, 4.5)
    risk_coverage(mc, ax=figures["risk_coverage"].add_subplot())

    if ood is not None:
        figures["ood"] = _figure(3.6 * len(OOD_MEASURES) + 4.6, 3.6)
        ood_histograms(mc, ood, fig=figures["ood"])
    if mc.samples is not None:
        figures["convergence"] = _figure(11.0, 3.2)
        convergence(
            mc, n_bins=n_bins, baseline=deterministic, fig=figures["convergence"]
        )
    if shifted:
        figures["shift"] = _figure(10.0, 3.8)
        dataset_shift(shifted, n_bins=n_bins, fig=figures["shift"])
    return figures


def regression_figures(
    compared: Mapping[str, RegressionPrediction], mc: RegressionPrediction
) -> dict[str, Figure]:
    """Every figure a regression report shows, by name.

    Predictions with a zero standard deviation somewhere have no
    calibration curve and are left out of that figure.
    """
    figures = {"calibration": _figure(5.0, 5.0)}
    ax = figures["calibration"].add_subplot()
    for name, prediction in compared.items():
        if float(prediction.std.min()) > 0:
            regression_calibration(prediction, ax=ax, label=name)
    figures["intervals"] = _figure(5.0, 5.0)
    regression_intervals(mc, ax=figures["intervals"].add_subplot())
    return figures
