"""What a report says: the metrics of each prediction and the tables."""

import math
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from mcdropout.metrics import (
    accuracy,
    aurc,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    gaussian_nll,
    interval_coverage,
    interval_width,
    mae,
    miscalibration_area,
    ood_detection,
    regression_calibration_error,
    rmse,
    sharpness,
)
from mcdropout.metrics import negative_log_likelihood as nll
from mcdropout.plots._common import uncertainty_scores
from mcdropout.plots._ood import OOD_MEASURES
from mcdropout.plots._regression import regression_arrays
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "class_table",
    "classification_metrics",
    "ood_table",
    "regression_metrics",
    "run_table",
]

# Each metric's key in metrics.json, and what it means, for the glossary.
CLASSIFICATION_METRICS = {
    "accuracy": "Share of inputs whose most probable class is the target.",
    "nll": "Mean negative log probability of the target class (nats); lower is better.",
    "brier": "Mean squared distance between the probabilities and the one-hot "
    "target, summed over classes (0 to 2); lower is better.",
    "ece": "Expected calibration error: mean |accuracy - confidence| over "
    "uniform confidence bins, weighted by bin size; lower is better.",
    "adaptive_ece": "The same with bins holding equal numbers of inputs "
    "(quantile binning).",
    "mce": "Maximum calibration error: the largest |accuracy - confidence| of "
    "any non-empty uniform bin.",
    "classwise_ece": "Calibration error of each class's probability, averaged "
    "over classes.",
    "aurc": "Area under the risk-coverage curve, ranking inputs by predictive "
    "entropy: the mean error rate over every share of most-certain inputs "
    "kept; lower is better.",
}

REGRESSION_METRICS = {
    "rmse": "Root mean squared error of the predicted mean.",
    "mae": "Mean absolute error of the predicted mean.",
    "nll": "Mean Gaussian negative log density of the targets (nats); lower is better.",
    "coverage_95": "Share of targets inside the central 95% interval; 0.95 "
    "when calibrated.",
    "interval_width_95": "Mean width of the central 95% intervals.",
    "sharpness": "Root mean predicted variance; smaller is sharper.",
    "miscalibration_area": "Area between the interval calibration curve and "
    "the diagonal (0 to 0.5); lower is better.",
    "calibration_error": "Root mean squared gap between the interval "
    "calibration curve and the diagonal; lower is better.",
}

OOD_COLUMNS = {
    "auroc": "Area under the ROC curve of out-of-distribution (positive) "
    "against in-distribution inputs; 0.5 is chance, 1 perfect.",
    "aupr_in": "Average precision with in-distribution inputs as positives.",
    "aupr_out": "Average precision with out-of-distribution inputs as positives.",
    "fpr_at_95_tpr": "Share of in-distribution inputs flagged at the threshold "
    "that flags 95% of the out-of-distribution ones; lower is better.",
}


def classification_metrics(
    prediction: ClassificationPrediction, n_bins: int
) -> dict[str, float]:
    """Every classification metric of one prediction, keyed as in metrics.json."""
    probs, targets = prediction.probs, prediction.targets
    return {
        "accuracy": accuracy(probs, targets),
        "nll": nll(probs, targets),
        "brier": brier_score(probs, targets),
        "ece": expected_calibration_error(probs, targets, n_bins),
        "adaptive_ece": expected_calibration_error(probs, targets, n_bins, "quantile"),
        "mce": expected_calibration_error(probs, targets, n_bins, norm="max"),
        "classwise_ece": classwise_calibration_error(probs, targets, n_bins),
        "aurc": aurc(prediction.predictive_entropy, prediction.correct),
    }


def regression_metrics(prediction: RegressionPrediction, name: str) -> dict[str, float]:
    """Every regression metric of one prediction, keyed as in metrics.json.

    The likelihood and calibration metrics need a spread: for a prediction
    with a zero standard deviation somewhere (a deterministic model without
    a noise precision) they are NaN.
    """
    mean, std, targets = regression_arrays(prediction, name)
    undefined = std.min() == 0
    return {
        "rmse": rmse(mean, targets),
        "mae": mae(mean, targets),
        "nll": math.nan if undefined else gaussian_nll(mean, std, targets),
        "coverage_95": interval_coverage(mean, std, targets, 0.95),
        "interval_width_95": interval_width(mean, std, 0.95),
        "sharpness": sharpness(std),
        "miscalibration_area": (
            math.nan if undefined else miscalibration_area(mean, std, targets)
        ),
        "calibration_error": (
            math.nan if undefined else regression_calibration_error(mean, std, targets)
        ),
    }


def ood_table(
    in_prediction: ClassificationPrediction, out_prediction: ClassificationPrediction
) -> pd.DataFrame:
    """One row per uncertainty measure: how well it flags the OOD inputs."""
    rows = {
        measure: ood_detection(
            uncertainty_scores(in_prediction, measure),
            uncertainty_scores(out_prediction, measure),
        ).to_dict()
        for measure in OOD_MEASURES
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "measure"
    return frame


def class_table(
    prediction: ClassificationPrediction, class_names: Sequence[str]
) -> pd.DataFrame:
    """One row per class: how many inputs it has, how well they are predicted."""
    targets = prediction.targets.numpy()
    correct = prediction.correct.numpy()
    columns = {
        "support": np.bincount(targets, minlength=prediction.n_classes),
        "accuracy": _class_means(targets, correct, prediction.n_classes),
        "mean_confidence": _class_means(
            targets, prediction.confidence.numpy(), prediction.n_classes
        ),
        "mean_mutual_information": _class_means(
            targets, prediction.mutual_information.numpy(), prediction.n_classes
        ),
    }
    frame = pd.DataFrame(columns, index=pd.Index(list(class_names), name="class"))
    return frame


def _class_means(targets: np.ndarray, values: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean of ``values`` over the inputs of each target class; NaN if none."""
    counts = np.bincount(targets, minlength=n_classes)
    sums = np.bincount(targets, weights=values.astype(np.float64), minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a report depends on."""
    names = ("mcdropout", "torch", "numpy", "scikit-learn", "pandas", "matplotlib")
    return {"python": platform.python_version()} | {n: _version(n) for n in names}


def run_table(
    metadata: Mapping[str, object], facts: Mapping[str, object]
) -> pd.DataFrame:
    """ "What was run": the caller's metadata, facts from the predictions, and
    the library versions, as one column of text indexed by item."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    items = {
        **{str(key): value for key, value in metadata.items()},
        **{key: value for key, value in facts.items() if key not in metadata},
        **{f"version: {name}": v for name, v in library_versions().items()},
        "report created (UTC)": created,
    }
    values = [format_value(value) for value in items.values()]
    return pd.DataFrame({"value": values}, index=pd.Index(list(items), name="item"))


def format_value(value: object) -> str:
    """A metadata value as text: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    return str(value)
