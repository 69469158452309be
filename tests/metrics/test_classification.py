import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

from mcdropout import ArgumentTypeError, ArgumentValueError
from mcdropout.metrics import (
    accuracy,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from tests.metrics.conftest import random_probs_targets

SCORES = [accuracy, negative_log_likelihood, brier_score]
ALL = [
    *SCORES,
    expected_calibration_error,
    classwise_calibration_error,
    reliability_bins,
]


def test_hand_worked_scores():
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    targets = np.array([0, 2, 2])
    # Argmax 0, 1, 2: right, wrong, right.
    assert accuracy(probs, targets) == pytest.approx(2 / 3, abs=1e-15)
    nll = -(np.log(0.5) + np.log(0.1) + np.log(0.6)) / 3
    assert negative_log_likelihood(probs, targets) == pytest.approx(nll, abs=1e-15)
    # Squared distances to one-hot: 0.25 + 0.0625 + 0.0625; 0.01 + 0.64 + 0.81;
    # 0.04 + 0.04 + 0.16.
    brier = (0.375 + 1.46 + 0.24) / 3
    assert brier_score(probs, targets) == pytest.approx(brier, abs=1e-15)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_scores_equal_scikit_learn(rng, n_classes):
    probs, targets = random_probs_targets(rng, 300, n_classes)
    probs = np.clip(probs, 1e-6, None)
    probs /= probs.sum(axis=1, keepdims=True)
    onehot = np.eye(n_classes)[targets]
    labels = list(range(n_classes))

    assert accuracy(probs, targets) == pytest.approx(
        accuracy_score(targets, probs.argmax(1)), abs=1e-6
    )
    assert negative_log_likelihood(probs, targets) == pytest.approx(
        log_loss(targets, probs, labels=labels), abs=1e-6
    )
    assert brier_score(probs, targets) == pytest.approx(
        n_classes * mean_squared_error(onehot, probs), abs=1e-6
    )


def test_nll_is_clipped_only_at_zero_probability():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    targets = np.array([1, 0])
    expected = (-np.log(1e-12) - np.log(0.5)) / 2
    assert negative_log_likelihood(probs, targets) == pytest.approx(expected)


def test_brier_score_range_ends():
    assert brier_score(np.eye(3), np.array([0, 1, 2])) == 0.0
    assert brier_score(np.eye(3), np.array([1, 2, 0])) == 2.0


def test_binary_case_is_not_guessed_from_targets():
    # Only class 1 appears among the targets; the two columns still define
    # two classes and nothing is inferred from the labels.
    probs = np.array([[0.2, 0.8], [0.4, 0.6]])
    targets = np.array([1, 1])
    assert negative_log_likelihood(probs, targets) == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2
    )
    assert brier_score(probs, targets) == pytest.approx((0.08 + 0.32) / 2)


@pytest.mark.parametrize(
    "convert",
    [np.asarray, torch.from_numpy, lambda a: torch.from_numpy(a).float(), list],
    ids=["numpy", "torch64", "torch32", "list"],
)
@pytest.mark.parametrize("metric", SCORES)
def test_accepts_tensors_arrays_and_lists(rng, metric, convert):
    probs, targets = random_probs_targets(rng, 50, 3)
    reference = metric(probs, targets)
    converted_targets = targets.tolist() if convert is list else convert(targets)
    got = metric(
        convert(probs) if convert is not list else probs.tolist(), converted_targets
    )
    assert got == pytest.approx(reference, rel=1e-6)


def test_float_whole_number_targets_are_accepted():
    probs = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert accuracy(probs, np.array([0.0, 1.0])) == 1.0


GOOD_PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
GOOD_TARGETS = np.array([0, 2, 1])


@pytest.mark.parametrize("metric", ALL)
@pytest.mark.parametrize(
    ("probs", "targets", "error", "match"),
    [
        (
            GOOD_PROBS,
            GOOD_TARGETS[:2],
            ArgumentValueError,
            "`targets` to have 3 entries",
        ),
        (
            GOOD_PROBS * 3 - 1,
            GOOD_TARGETS,
            ArgumentValueError,
            "look like logits; apply softmax first",
        ),
        (
            GOOD_PROBS * 0.5,
            GOOD_TARGETS,
            ArgumentValueError,
            r"to sum to 1 \(within 0.0001\), got row 0 summing to 0.5",
        ),
        (
            np.where(GOOD_PROBS == 0.8, np.nan, GOOD_PROBS),
            GOOD_TARGETS,
            ArgumentValueError,
            "`probs` to be finite, got 1 NaN",
        ),
        (
            np.zeros((0, 3)),
            np.zeros(0, int),
            ArgumentValueError,
            "`probs` to hold inputs, got 0",
        ),
        (
            GOOD_PROBS,
            np.array([0, 3, 1]),
            ArgumentValueError,
            r"`targets` in \[0, 3\) for 3 classes, got values from 0 to 3",
        ),
        (
            GOOD_PROBS,
            np.array([0, -1, 1]),
            ArgumentValueError,
            r"`targets` in \[0, 3\)",
        ),
        (
            GOOD_PROBS,
            np.array([0.0, 1.5, 1.0]),
            ArgumentValueError,
            "integer class indices, got non-integer values such as 1.5",
        ),
        (
            GOOD_PROBS[0],
            GOOD_TARGETS,
            ArgumentValueError,
            r"`probs` of shape \(n_inputs, n_classes\), got shape \(3,\)",
        ),
        (
            GOOD_PROBS,
            np.eye(3),
            ArgumentValueError,
            "one-hot targets pass targets.argmax",
        ),
        (
            GOOD_PROBS[:, :1],
            GOOD_TARGETS,
            ArgumentValueError,
            r"n_classes >= 2, got shape \(3, 1\)",
        ),
        ("probs", GOOD_TARGETS, ArgumentTypeError, "`probs` to hold numbers"),
        (
            {"a": 1},
            GOOD_TARGETS,
            ArgumentTypeError,
            "`probs` to be a torch Tensor or NumPy array, got dict",
        ),
    ],
)
def test_bad_input_names_the_argument(metric, probs, targets, error, match):
    with pytest.raises(error, match=match):
        metric(probs, targets)


def test_rows_within_tolerance_of_one_are_accepted():
    probs = np.array([[0.5, 0.50005], [0.3, 0.69996]])
    assert accuracy(probs, np.array([1, 1])) == 1.0
