import math

import numpy as np
import pandas as pd
import pytest
import torch

from mcdropout import ArgumentTypeError, ArgumentValueError, UndefinedMetricWarning
from mcdropout.metrics import (
    ReliabilityAccumulator,
    classwise_calibration_error,
    expected_calibration_error,
    reliability_bins,
)
from mcdropout.metrics._binning import uniform_bin_index
from tests.metrics.conftest import random_probs_targets

# Five inputs, three classes. Confidence, prediction, target, correct:
#   1.0   0 0 yes  (exactly 1.0: the last bin, closed on the right)
#   0.5   1 1 yes  (exactly on the inner edge 0.5: the bin above it)
#   0.75  0 2 no   (exactly on the inner edge 0.75: the bin above it)
#   0.4   0 0 yes
#   0.4   2 1 no
HAND_PROBS = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.25, 0.5, 0.25],
        [0.75, 0.125, 0.125],
        [0.4, 0.35, 0.25],
        [0.3, 0.3, 0.4],
    ]
)
HAND_TARGETS = np.array([0, 1, 2, 0, 1])


def test_hand_worked_uniform_bins():
    # Four bins [0, .25) [.25, .5) [.5, .75) [.75, 1]:
    #   bin 0: empty
    #   bin 1: 0.4, 0.4      conf 0.4,   acc 0.5, gap  0.1
    #   bin 2: 0.5           conf 0.5,   acc 1.0, gap  0.5
    #   bin 3: 1.0, 0.75     conf 0.875, acc 0.5, gap -0.375
    table = reliability_bins(HAND_PROBS, HAND_TARGETS, n_bins=4)
    assert list(table.columns) == [
        "lower",
        "upper",
        "count",
        "confidence",
        "accuracy",
        "gap",
    ]
    assert table["lower"].tolist() == [0.0, 0.25, 0.5, 0.75]
    assert table["upper"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert table["count"].tolist() == [0, 2, 1, 2]
    assert table["confidence"].iloc[1:].tolist() == pytest.approx([0.4, 0.5, 0.875])
    assert table["accuracy"].iloc[1:].tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert table["gap"].iloc[1:].tolist() == pytest.approx([0.1, 0.5, -0.375])
    assert table.iloc[0][["confidence", "accuracy", "gap"]].isna().all()


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        # 2/5 * 0.1 + 1/5 * 0.5 + 2/5 * 0.375
        ("l1", 0.29),
        # sqrt(2/5 * 0.01 + 1/5 * 0.25 + 2/5 * 0.140625)
        ("l2", math.sqrt(0.11025)),
        ("max", 0.5),
    ],
)
def test_hand_worked_ece(norm, expected):
    got = expected_calibration_error(HAND_PROBS, HAND_TARGETS, n_bins=4, norm=norm)
    assert got == pytest.approx(expected, abs=1e-15)


def test_hand_worked_quantile_bins():
    # Stable sort by confidence: 0.4 (input 3), 0.4 (input 4), 0.5, 0.75, 1.0.
    # Two groups of 3 and 2: conf 1.3/3, acc 2/3; conf 0.875, acc 0.5.
    table = reliability_bins(HAND_PROBS, HAND_TARGETS, n_bins=2, binning="quantile")
    assert table["count"].tolist() == [3, 2]
    assert table["lower"].tolist() == [0.4, 0.75]
    assert table["upper"].tolist() == [0.5, 1.0]
    assert table["confidence"].tolist() == pytest.approx([1.3 / 3, 0.875])
    assert table["accuracy"].tolist() == pytest.approx([2 / 3, 0.5])
    ece = 3 / 5 * (2 / 3 - 1.3 / 3) + 2 / 5 * 0.375
    assert expected_calibration_error(
        HAND_PROBS, HAND_TARGETS, n_bins=2, binning="quantile"
    ) == pytest.approx(ece, abs=1e-15)


def test_more_quantile_bins_than_inputs_leaves_trailing_bins_empty():
    # One input per bin, then empty bins that contribute nothing: the ECE is
    # the mean of |correct - confidence|.
    table = reliability_bins(HAND_PROBS, HAND_TARGETS, n_bins=8, binning="quantile")
    assert table["count"].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert (
        table.iloc[5:][["lower", "upper", "confidence", "accuracy"]]
        .isna()
        .all(axis=None)
    )
    per_input = np.abs(np.array([1, 1, 0, 1, 0]) - np.array([1.0, 0.5, 0.75, 0.4, 0.4]))
    for norm, expected in [
        ("l1", per_input.mean()),
        ("l2", np.sqrt(np.mean(per_input**2))),
        ("max", per_input.max()),
    ]:
        got = expected_calibration_error(
            HAND_PROBS, HAND_TARGETS, n_bins=8, binning="quantile", norm=norm
        )
        assert got == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_one_bin_is_the_overall_confidence_gap(binning):
    # Mean confidence 3.05 / 5 = 0.61 against accuracy 3 / 5 = 0.6.
    got = expected_calibration_error(
        HAND_PROBS, HAND_TARGETS, n_bins=1, binning=binning
    )
    assert got == pytest.approx(0.01, abs=1e-15)


@pytest.mark.parametrize("n_bins", [5, 10, 15, 20, 25, 30])
def test_confidence_on_an_inner_edge_goes_to_the_bin_above(n_bins):
    # k / n_bins written as a decimal literal is the same double, so 0.6 with
    # five bins sits on an edge (np.linspace puts that edge at
    # 0.6000000000000001 and 0.6 in the bin below).
    edges = [float(f"{k / n_bins!r}") for k in range(1, n_bins)]
    assert uniform_bin_index(np.array(edges), n_bins).tolist() == list(range(1, n_bins))
    below = np.nextafter(np.array(edges), 0.0)
    assert uniform_bin_index(below, n_bins).tolist() == list(range(n_bins - 1))


def test_public_table_puts_0_6_in_the_bin_starting_at_0_6():
    probs = np.array([[0.6, 0.4], [0.4, 0.6]])
    table = reliability_bins(probs, np.array([0, 0]), n_bins=5)
    assert table["count"].tolist() == [0, 0, 0, 2, 0]
    assert table["lower"].iloc[3] == 0.6


@pytest.mark.parametrize("n_bins", [1, 2, 10, 15])
def test_confidence_one_is_in_the_last_bin(n_bins):
    table = reliability_bins(np.eye(3), np.array([0, 1, 2]), n_bins=n_bins)
    assert table["count"].iloc[-1] == 3
    assert table["count"].sum() == 3
    assert expected_calibration_error(np.eye(3), np.array([0, 1, 2]), n_bins) == 0.0


def naive_uniform_members(confidence, n_bins):
    """Bins from the written definition, by a plain loop."""
    members = [[] for _ in range(n_bins)]
    for i, c in enumerate(confidence):
        for b in range(n_bins):
            lower, upper = b / n_bins, (b + 1) / n_bins
            if lower <= c < upper or (b == n_bins - 1 and c == 1.0):
                members[b].append(i)
    return members


def naive_quantile_members(confidence, n_bins):
    order = sorted(range(len(confidence)), key=lambda i: confidence[i])
    size, extra = divmod(len(order), n_bins)
    members, start = [], 0
    for b in range(n_bins):
        stop = start + size + (1 if b < extra else 0)
        members.append(order[start:stop])
        start = stop
    return members


def naive_error(confidence, hits, members, norm):
    gaps, weights = [], []
    for bin_members in members:
        if bin_members:
            conf = sum(confidence[i] for i in bin_members) / len(bin_members)
            acc = sum(hits[i] for i in bin_members) / len(bin_members)
            gaps.append(acc - conf)
            weights.append(len(bin_members) / len(confidence))
    if norm == "l1":
        return sum(w * abs(g) for w, g in zip(weights, gaps, strict=True))
    if norm == "l2":
        return math.sqrt(sum(w * g * g for w, g in zip(weights, gaps, strict=True)))
    return max(abs(g) for g in gaps)


def naive_members(confidence, n_bins, binning):
    if binning == "uniform":
        return naive_uniform_members(confidence, n_bins)
    return naive_quantile_members(confidence, n_bins)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 3, 15, 40, 250])
def test_ece_equals_a_naive_loop(rng, binning, norm, n_bins):
    probs, targets = random_probs_targets(rng, 200, 4)
    # Put some confidences exactly on edges and at 1.
    probs[:4] = [[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25] * 4, [0.6, 0.2, 0.1, 0.1]]
    confidence = probs.max(axis=1).tolist()
    hits = (probs.argmax(axis=1) == targets).tolist()
    expected = naive_error(
        confidence, hits, naive_members(confidence, n_bins, binning), norm
    )
    got = expected_calibration_error(probs, targets, n_bins, binning, norm)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_classwise_error_equals_a_naive_loop(rng, binning, norm):
    probs, targets = random_probs_targets(rng, 150, 3)
    n_bins = 7
    per_class = []
    for k in range(3):
        scores = probs[:, k].tolist()
        hits = (targets == k).tolist()
        members = naive_members(scores, n_bins, binning)
        per_class.append(naive_error(scores, hits, members, norm))
    got = classwise_calibration_error(probs, targets, n_bins, binning, norm)
    assert got == pytest.approx(sum(per_class) / 3, rel=1e-12)


def test_classwise_hand_worked():
    # Class 0 column (0.9, 0.6, 0.3, 0.2) against (1, 0, 0, 1), two bins:
    # [0.3, 0.2] mean 0.25 vs 0.5, [0.9, 0.6] mean 0.75 vs 0.5: 0.25. Class 1
    # is the mirror image: 0.25.
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    got = classwise_calibration_error(probs, np.array([0, 1, 1, 0]), n_bins=2)
    assert got == pytest.approx(0.25, abs=1e-15)


def test_calibrated_predictions_have_small_ece(rng):
    probs, targets = random_probs_targets(rng, 4000, 3)
    assert expected_calibration_error(probs, targets, n_bins=10) < 0.03
    overconfident = probs**3 / (probs**3).sum(axis=1, keepdims=True)
    assert expected_calibration_error(overconfident, targets, n_bins=10) > 0.1


@pytest.mark.parametrize("sizes", [[200], [1, 199], [50, 0, 70, 80], [3] * 66 + [2]])
def test_streaming_equals_batch(rng, sizes):
    probs, targets = random_probs_targets(rng, 200, 5)
    accumulator = ReliabilityAccumulator(n_bins=12)
    start = 0
    for size in sizes:
        if size:
            accumulator.update(
                probs[start : start + size], targets[start : start + size]
            )
        start += size

    expected = reliability_bins(probs, targets, n_bins=12)
    pd.testing.assert_frame_equal(accumulator.to_frame(), expected, rtol=1e-12)
    for norm in ["l1", "l2", "max"]:
        assert accumulator.calibration_error(norm) == pytest.approx(
            expected_calibration_error(probs, targets, 12, norm=norm), rel=1e-12
        )


def test_merged_accumulators_equal_batch(rng):
    probs, targets = random_probs_targets(rng, 120, 3)
    left = ReliabilityAccumulator(9).update(probs[:70], targets[:70])
    right = ReliabilityAccumulator(9).update(
        torch.from_numpy(probs[70:]), torch.from_numpy(targets[70:])
    )
    merged = left.merge(right)

    assert merged.n_inputs == 120
    assert left.n_inputs == 70 and right.n_inputs == 50
    pd.testing.assert_frame_equal(
        merged.to_frame(), reliability_bins(probs, targets, 9), rtol=1e-12
    )


def test_accumulator_refuses_mismatched_inputs(rng):
    probs, targets = random_probs_targets(rng, 10, 3)
    accumulator = ReliabilityAccumulator(5).update(probs, targets)
    with pytest.raises(
        ArgumentValueError, match="n_bins=5 like this accumulator, got n_bins=6"
    ):
        accumulator.merge(ReliabilityAccumulator(6))
    with pytest.raises(
        ArgumentValueError, match="3 classes like the inputs added before, got 4"
    ):
        accumulator.update(*random_probs_targets(rng, 10, 4))
    other = ReliabilityAccumulator(5).update(*random_probs_targets(rng, 10, 2))
    with pytest.raises(ArgumentValueError, match="`other` to have 3 classes"):
        accumulator.merge(other)
    with pytest.raises(
        ArgumentTypeError, match="ReliabilityAccumulator, got DataFrame"
    ):
        accumulator.merge(accumulator.to_frame())
    assert accumulator.n_inputs == 10


def test_empty_accumulator_warns_and_returns_nan():
    accumulator = ReliabilityAccumulator()
    assert accumulator.to_frame()["count"].sum() == 0
    with pytest.warns(UndefinedMetricWarning, match="returning NaN"):
        assert math.isnan(accumulator.calibration_error())


@pytest.mark.parametrize(
    "function",
    [expected_calibration_error, classwise_calibration_error, reliability_bins],
)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bins": 0}, ArgumentValueError, "`n_bins` to be a positive integer, got 0"),
        ({"n_bins": 2.5}, ArgumentTypeError, "`n_bins` to be a positive integer"),
        (
            {"binning": "equal"},
            ArgumentValueError,
            "`binning` to be one of 'uniform', 'quantile', got 'equal'",
        ),
    ],
)
def test_bad_binning_arguments(function, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(HAND_PROBS, HAND_TARGETS, **kwargs)


@pytest.mark.parametrize(
    "function", [expected_calibration_error, classwise_calibration_error]
)
def test_bad_norm(function):
    with pytest.raises(
        ArgumentValueError, match="`norm` to be one of 'l1', 'l2', 'max', got 'l3'"
    ):
        function(HAND_PROBS, HAND_TARGETS, norm="l3")
