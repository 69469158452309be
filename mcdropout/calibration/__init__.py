"""Where predictions are recalibrated after training, on validation data:
temperature scaling of classifiers, variance scaling and noise precision of
regressors.
"""

from mcdropout.calibration._temperature import (
    TemperatureFit,
    fit_temperature,
    fit_temperature_from_logits,
)
from mcdropout.calibration._variance import (
    NoisePrecisionFit,
    VarianceScaleFit,
    fit_noise_precision,
    fit_variance_scale,
)

__all__ = [
    "NoisePrecisionFit",
    "TemperatureFit",
    "VarianceScaleFit",
    "fit_noise_precision",
    "fit_temperature",
    "fit_temperature_from_logits",
    "fit_variance_scale",
]
