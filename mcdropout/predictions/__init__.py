"""Where passes are aggregated: streaming statistics and prediction objects."""

from mcdropout.predictions._prediction import (
    ClassificationPrediction,
    RegressionPrediction,
)
from mcdropout.predictions._statistics import (
    ClassificationStatistics,
    Moments,
    RegressionStatistics,
    log_probs_from_logits,
)

__all__ = [
    "ClassificationPrediction",
    "ClassificationStatistics",
    "Moments",
    "RegressionPrediction",
    "RegressionStatistics",
    "log_probs_from_logits",
]
