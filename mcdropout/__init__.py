"""mcdropout: Monte Carlo dropout uncertainty for trained PyTorch models.

Wrap a trained model with :class:`MCDropout`, call ``predict`` and read the
predictive mean, variance, entropy and mutual information of every input.
"""

from importlib.metadata import PackageNotFoundError, version

from mcdropout import calibration, metrics
from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropoutError,
    MCDropoutWarning,
    ModelOutputError,
    NoDropoutError,
    UndefinedMetricWarning,
)
from mcdropout.dropout import (
    add_dropout,
    dropout_modules,
    enable_dropout,
    set_dropout_rate,
)
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction
from mcdropout.sampling import MCDropout

try:
    __version__ = version("mcdropout")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "ClassificationPrediction",
    "MCDropout",
    "MCDropoutError",
    "MCDropoutWarning",
    "ModelOutputError",
    "NoDropoutError",
    "RegressionPrediction",
    "UndefinedMetricWarning",
    "__version__",
    "add_dropout",
    "calibration",
    "dropout_modules",
    "enable_dropout",
    "metrics",
    "set_dropout_rate",
]
