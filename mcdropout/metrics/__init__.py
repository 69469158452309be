"""Where predictions are scored: calibration, proper scores, selective
prediction, detection and regression metrics.

Plain functions over torch tensors or NumPy arrays, computed in float64,
each with its definition in its docstring.
"""

from mcdropout.metrics._binning import (
    ReliabilityAccumulator,
    classwise_calibration_error,
    expected_calibration_error,
    reliability_bins,
)
from mcdropout.metrics._classification import (
    accuracy,
    brier_score,
    negative_log_likelihood,
)
from mcdropout.metrics._regression import (
    gaussian_nll,
    interval_coverage,
    interval_width,
    mae,
    mc_log_likelihood,
    miscalibration_area,
    regression_calibration_curve,
    regression_calibration_error,
    rmse,
    sharpness,
)
from mcdropout.metrics._selective import (
    DetectionScores,
    aurc,
    misclassification_detection,
    ood_detection,
    risk_coverage_curve,
)

__all__ = [
    "DetectionScores",
    "ReliabilityAccumulator",
    "accuracy",
    "aurc",
    "brier_score",
    "classwise_calibration_error",
    "expected_calibration_error",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "mae",
    "mc_log_likelihood",
    "miscalibration_area",
    "misclassification_detection",
    "negative_log_likelihood",
    "ood_detection",
    "regression_calibration_curve",
    "regression_calibration_error",
    "reliability_bins",
    "risk_coverage_curve",
    "rmse",
    "sharpness",
]
