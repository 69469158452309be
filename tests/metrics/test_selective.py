import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from mcdropout import ArgumentValueError, UndefinedMetricWarning
from mcdropout.metrics import (
    DetectionScores,
    aurc,
    misclassification_detection,
    ood_detection,
    risk_coverage_curve,
)


def naive_risks(correct_in_order):
    """Risk after keeping the first k inputs of a given order, k = 1..N."""
    risks, errors = [], 0
    for k, right in enumerate(correct_in_order, start=1):
        errors += 0 if right else 1
        risks.append(errors / k)
    return risks


def test_hand_worked_curve_with_ties():
    # Sorted: 0.1 right | 0.4 right, 0.4 wrong | 0.9 wrong. The tied pair
    # enters together: no point at k = 2.
    coverage, risk = risk_coverage_curve(
        np.array([0.4, 0.9, 0.1, 0.4]), np.array([True, False, True, False])
    )
    assert coverage.tolist() == [0.25, 0.75, 1.0]
    assert risk.tolist() == pytest.approx([0.0, 1 / 3, 0.5])


def test_curve_without_ties_equals_a_naive_loop(rng):
    uncertainty = rng.random(50)
    correct = rng.random(50) < 0.7
    coverage, risk = risk_coverage_curve(uncertainty, correct)
    order = sorted(range(50), key=lambda i: uncertainty[i])
    assert coverage.tolist() == pytest.approx([k / 50 for k in range(1, 51)])
    assert risk.tolist() == pytest.approx(naive_risks(correct[order].tolist()))


def test_hand_worked_aurc():
    # Risks 0, 1/2, 1/3 at k = 1, 2, 3.
    got = aurc(np.array([0.1, 0.2, 0.3]), np.array([True, False, True]))
    assert got == pytest.approx((0 + 1 / 2 + 1 / 3) / 3, abs=1e-15)


def test_aurc_without_ties_is_the_mean_naive_risk(rng):
    uncertainty = rng.random(40)
    correct = rng.random(40) < 0.6
    order = np.argsort(uncertainty)
    expected = np.mean(naive_risks(correct[order].tolist()))
    assert aurc(uncertainty, correct) == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aurc_with_ties_is_the_mean_over_orderings_of_tied_inputs(seed):
    rng = np.random.default_rng(seed)
    uncertainty = np.array([0.2, 0.5, 0.5, 0.5, 0.9, 0.2, 0.5])
    correct = rng.random(7) < 0.5
    groups = [np.flatnonzero(uncertainty == u) for u in np.unique(uncertainty)]

    values = []
    for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [i for group in orders for i in group]
        values.append(np.mean(naive_risks(correct[order].tolist())))
    assert aurc(uncertainty, correct) == pytest.approx(np.mean(values), abs=1e-14)


def test_aurc_does_not_depend_on_input_order(rng):
    uncertainty = rng.integers(0, 5, 30).astype(float)
    correct = rng.random(30) < 0.5
    permutation = rng.permutation(30)
    assert aurc(uncertainty, correct) == pytest.approx(
        aurc(uncertainty[permutation], correct[permutation]), abs=1e-14
    )


def test_perfect_and_constant_rankings():
    correct = np.array([True, True, True, False])
    # Wrong input ranked last: risks 0, 0, 0, 1/4.
    assert aurc(np.array([0.1, 0.2, 0.3, 0.9]), correct) == pytest.approx(1 / 16)
    # All tied: every k has expected risk 1/4.
    assert aurc(np.zeros(4), correct) == pytest.approx(0.25)


def naive_fpr_at_95_tpr(positive, scores):
    best = math.inf
    for threshold in sorted(set(scores.tolist())):
        flagged = scores >= threshold
        tpr = flagged[positive].mean()
        if tpr >= 0.95:
            best = min(best, flagged[~positive].mean())
    return best


def test_misclassification_detection_equals_references(rng):
    correct = rng.random(300) < 0.7
    uncertainty = rng.normal(size=300) + 1.0 * ~correct
    scores = misclassification_detection(uncertainty, correct)

    assert isinstance(scores, DetectionScores)
    wrong = ~correct
    assert scores.auroc == pytest.approx(roc_auc_score(wrong, uncertainty), abs=1e-6)
    assert scores.aupr_out == pytest.approx(
        average_precision_score(wrong, uncertainty), abs=1e-6
    )
    assert scores.aupr_in == pytest.approx(
        average_precision_score(correct, -uncertainty), abs=1e-6
    )
    assert scores.fpr_at_95_tpr == pytest.approx(
        naive_fpr_at_95_tpr(wrong, uncertainty)
    )
    assert set(scores.to_dict()) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr"}


def test_hand_worked_detection():
    # In 0.1 0.2 0.3, out 0.25 0.9: out beats in in 5 of 6 pairs; flagging
    # both out inputs needs threshold 0.25, which also flags 0.3.
    scores = ood_detection(np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.9]))
    assert scores.auroc == pytest.approx(5 / 6)
    assert scores.fpr_at_95_tpr == pytest.approx(1 / 3)
    # Ranked by score: 0.9 out, 0.3 in, 0.25 out: precision 1 at recall 1/2,
    # 2/3 at recall 1.
    assert scores.aupr_out == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_ood_detection_equals_references_and_mirrors(rng):
    in_scores = rng.normal(size=200)
    out_scores = rng.normal(loc=1.5, size=80)
    scores = ood_detection(torch.from_numpy(in_scores), out_scores)

    labels = np.r_[np.zeros(200), np.ones(80)]
    joined = np.r_[in_scores, out_scores]
    assert scores.auroc == pytest.approx(roc_auc_score(labels, joined), abs=1e-6)
    assert scores.aupr_out == pytest.approx(
        average_precision_score(labels, joined), abs=1e-6
    )
    assert scores.fpr_at_95_tpr == pytest.approx(
        naive_fpr_at_95_tpr(labels.astype(bool), joined)
    )
    # Swapping the groups and negating the scores swaps in and out.
    mirrored = ood_detection(-out_scores, -in_scores)
    assert mirrored.aupr_out == pytest.approx(scores.aupr_in)
    assert mirrored.aupr_in == pytest.approx(scores.aupr_out)
    assert mirrored.auroc == pytest.approx(scores.auroc)


@pytest.mark.parametrize(("value", "word"), [(True, "right"), (False, "wrong")])
def test_one_class_present_warns_and_returns_nan(value, word):
    with pytest.warns(UndefinedMetricWarning, match=f"every prediction is {word}"):
        scores = misclassification_detection(np.arange(4.0), np.full(4, value))
    assert all(math.isnan(v) for v in scores.to_dict().values())


@pytest.mark.parametrize(
    "function", [risk_coverage_curve, aurc, misclassification_detection]
)
@pytest.mark.parametrize(
    ("uncertainty", "correct", "match"),
    [
        (np.ones(3), np.ones(4, bool), r"`correct` of shape \(3,\)"),
        (
            np.ones(3),
            np.array([0, 1, 2]),
            "booleans \\(or 0 and 1\\), got values other than 0 and 1 such as 2",
        ),
        (np.array([0.1, np.nan, 0.2]), np.ones(3, bool), "`uncertainty` to be finite"),
        (np.ones((3, 1)), np.ones(3, bool), r"`uncertainty` of shape \(n_inputs,\)"),
        (np.ones(0), np.ones(0, bool), "`uncertainty` to hold inputs, got 0"),
    ],
)
def test_bad_selective_input(function, uncertainty, correct, match):
    with pytest.raises(ArgumentValueError, match=match):
        function(uncertainty, correct)


def test_integer_correct_is_accepted():
    assert aurc(np.array([0.1, 0.2]), np.array([1, 0])) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("in_scores", "out_scores", "match"),
    [
        (np.ones(0), np.ones(3), "`in_scores` to hold inputs, got 0"),
        (np.ones(3), np.array([np.inf]), "`out_scores` to be finite"),
    ],
)
def test_bad_ood_input(in_scores, out_scores, match):
    with pytest.raises(ArgumentValueError, match=match):
        ood_detection(in_scores, out_scores)
