"""What every plot shares: where it draws, what it accepts, what it measures."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from mcdropout._validation import check_choice
from mcdropout.metrics._checks import to_numpy
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction

__all__ = [
    "MEASURES",
    "MEASURE_LABELS",
    "axes_or_new",
    "check_classification",
    "check_measures",
    "check_regression",
    "correct_of",
    "figure_or_new",
    "measure_values",
    "probs_and_targets",
    "uncertainty_scores",
]

# Every per-input uncertainty a classification prediction carries, in the
# order plots draw them. "confidence" is the odd one out: it rises with
# certainty, so its uncertainty score is 1 - confidence.
MEASURES = (
    "confidence",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "variation_ratio",
)

MEASURE_LABELS = {
    "confidence": "Confidence (max. probability)",
    "predictive_entropy": "Predictive entropy (nats)",
    "expected_entropy": "Expected entropy (nats)",
    "mutual_information": "Mutual information (nats)",
    "variation_ratio": "Variation ratio",
}


def axes_or_new(ax: object, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    """``ax`` when given, else the Axes of a new pyplot figure."""
    if ax is None:
        # Imported here so that merely importing mcdropout never selects a
        # GUI backend; a new pyplot figure is what notebooks display.
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained").add_subplot()
    if not isinstance(ax, Axes):
        raise ArgumentTypeError(
            f"expected `ax` to be a matplotlib Axes or None, got {type(ax).__name__}"
        )
    return ax


def figure_or_new(fig: object, figsize: tuple[float, float]) -> Figure:
    """``fig`` when given (and still empty), else a new pyplot figure."""
    if fig is None:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    if not isinstance(fig, Figure):
        raise ArgumentTypeError(
            f"expected `fig` to be a matplotlib Figure or None, got "
            f"{type(fig).__name__}"
        )
    if fig.axes:
        raise ArgumentValueError(
            f"expected `fig` to be an empty Figure to draw into, got one with "
            f"{len(fig.axes)} Axes already"
        )
    return fig


def check_classification(name: str, prediction: object) -> ClassificationPrediction:
    """``prediction`` if it is a :class:`ClassificationPrediction`, else raise."""
    if not isinstance(prediction, ClassificationPrediction):
        raise ArgumentTypeError(
            f"expected `{name}` to be a ClassificationPrediction, got "
            f"{type(prediction).__name__}"
        )
    return prediction


def check_regression(name: str, prediction: object) -> RegressionPrediction:
    """``prediction`` if it is a :class:`RegressionPrediction`, else raise."""
    if not isinstance(prediction, RegressionPrediction):
        raise ArgumentTypeError(
            f"expected `{name}` to be a RegressionPrediction, got "
            f"{type(prediction).__name__}"
        )
    return prediction


def correct_of(name: str, prediction: ClassificationPrediction) -> np.ndarray:
    """``(n_inputs,)`` booleans: which predictions are right; needs targets."""
    if prediction.correct is None:
        raise ArgumentValueError(
            f"expected `{name}` to carry targets (predict(..., targets=...)), "
            "got a prediction without them"
        )
    return prediction.correct.numpy()


def probs_and_targets(
    prediction_or_probs: object, targets: object, name: str = "prediction"
) -> tuple[object, object]:
    """Probabilities and targets from a prediction, or from both arguments.

    Targets given explicitly win over those the prediction carries. Both
    are returned unchecked: the metrics check them.
    """
    if isinstance(prediction_or_probs, RegressionPrediction):
        raise ArgumentTypeError(
            f"expected `{name}` to be a ClassificationPrediction or probabilities "
            "(n_inputs, n_classes), got a RegressionPrediction"
        )
    probs = prediction_or_probs
    if isinstance(prediction_or_probs, ClassificationPrediction):
        probs = prediction_or_probs.probs
        targets = prediction_or_probs.targets if targets is None else targets
    if targets is None:
        raise ArgumentValueError(
            f"expected `targets`, or a `{name}` that carries them, got neither"
        )
    return probs, targets


def check_measures(measures: str | Sequence[str]) -> tuple[str, ...]:
    """``measures`` as a non-empty tuple of names from :data:`MEASURES`."""
    if isinstance(measures, str):
        measures = (measures,)
    if not isinstance(measures, Sequence) or not measures:
        raise ArgumentValueError(
            f"expected `measures` to be a name or a non-empty sequence of names "
            f"from {MEASURES}, got {measures!r}"
        )
    return tuple(check_choice("measures", m, MEASURES) for m in measures)


def measure_values(prediction: ClassificationPrediction, measure: str) -> np.ndarray:
    """``(n_inputs,)`` float64 values of one measure, as the prediction holds it."""
    return to_numpy(measure, getattr(prediction, measure)).astype(np.float64)


def uncertainty_scores(
    prediction: ClassificationPrediction, measure: str
) -> np.ndarray:
    """``(n_inputs,)`` float64 scores that rise with uncertainty."""
    values = measure_values(prediction, measure)
    return 1.0 - values if measure == "confidence" else values
