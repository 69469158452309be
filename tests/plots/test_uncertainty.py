import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mcdropout import ArgumentTypeError, ArgumentValueError
from mcdropout.metrics import aurc, risk_coverage_curve
from mcdropout.plots import MEASURES, risk_coverage, uncertainty_distributions
from tests.plots.helpers import from_probs


def uncertainty(prediction, measure: str) -> np.ndarray:
    values = getattr(prediction, measure).numpy()
    return 1.0 - values if measure == "confidence" else values


def heights(container) -> np.ndarray:
    return np.array([bar.get_height() for bar in container])


def test_one_panel_per_measure_with_right_and_wrong_densities(prediction):
    fig = uncertainty_distributions(prediction, bins=8)
    correct = prediction.correct.numpy()

    assert len(fig.axes) == len(MEASURES)
    for ax, measure in zip(fig.axes, MEASURES, strict=True):
        values = getattr(prediction, measure).numpy()
        edges = np.histogram_bin_edges(values, bins=8)
        right, wrong = ax.containers
        expected_right, _ = np.histogram(values[correct], edges, density=True)
        expected_wrong, _ = np.histogram(values[~correct], edges, density=True)
        np.testing.assert_allclose(heights(right), expected_right)
        np.testing.assert_allclose(heights(wrong), expected_wrong)
        n_wrong = int((~correct).sum())
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert labels == [
            f"Correct (n={len(correct) - n_wrong})",
            f"Wrong (n={n_wrong})",
        ]


def test_a_group_without_inputs_is_left_out():
    prediction = from_probs([[0.9, 0.1], [0.3, 0.7]], targets=[0, 1])
    fig = uncertainty_distributions(prediction, "confidence", bins=4)
    (right,) = fig.axes[0].containers
    assert len(right) == 4
    assert fig.axes[0].get_xlabel() == "Confidence (max. probability)"


def test_risk_coverage_draws_each_measure_the_oracle_and_the_error_rate(prediction):
    measures = ["confidence", "mutual_information"]
    ax = risk_coverage(prediction, measures)
    correct = prediction.correct.numpy()

    *curves, oracle, error_rate = ax.lines
    for line, measure in zip(curves, measures, strict=True):
        coverage, risk = risk_coverage_curve(uncertainty(prediction, measure), correct)
        np.testing.assert_allclose(line.get_xdata(), coverage)
        np.testing.assert_allclose(line.get_ydata(), risk)
        value = aurc(uncertainty(prediction, measure), correct)
        assert line.get_label() == f"{measure} (AURC = {value:.4f})"
    assert error_rate.get_ydata()[0] == pytest.approx(1 - correct.mean())

    # The oracle keeps every right input first: with r right of n, the risk
    # at coverage k/n is max(0, k - r) / k.
    n, r = len(correct), int(correct.sum())
    naive = [max(0, k - r) / k for k in range(1, n + 1)]
    np.testing.assert_allclose(oracle.get_xdata(), np.arange(1, n + 1) / n)
    np.testing.assert_allclose(oracle.get_ydata(), naive)


def test_hand_worked_risk_coverage():
    # Entropy order: input 0 (0.99, right) < input 2 (0.8, wrong) < input 1.
    prediction = from_probs(
        [[0.99, 0.01], [0.5 + 1e-3, 0.5 - 1e-3], [0.8, 0.2]], targets=[0, 0, 1]
    )
    ax = risk_coverage(prediction, "predictive_entropy", oracle=False)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.0, 0.5, 1 / 3])
    assert ax.lines[0].get_label() == f"predictive_entropy (AURC = {5 / 18:.4f})"


def test_draws_on_a_given_axes_and_rejects_bad_arguments(prediction):
    ax = Figure().add_subplot()
    assert risk_coverage(prediction, "variation_ratio", ax=ax) is ax

    with pytest.raises(ArgumentValueError, match="expected `measures` to be one of"):
        risk_coverage(prediction, ["entropy"])
    with pytest.raises(ArgumentValueError, match="non-empty sequence"):
        uncertainty_distributions(prediction, [])
    no_targets = type(prediction)(**{**prediction.__dict__, "targets": None})
    with pytest.raises(ArgumentValueError, match="to carry targets"):
        uncertainty_distributions(no_targets)
    with pytest.raises(ArgumentTypeError, match="ClassificationPrediction"):
        risk_coverage(torch.zeros(3, 2))
    with pytest.raises(ArgumentValueError, match="`bins`"):
        uncertainty_distributions(prediction, bins=0)
