from statistics import NormalDist

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mcdropout import ArgumentTypeError, ArgumentValueError, RegressionPrediction
from mcdropout.metrics import miscalibration_area
from mcdropout.plots import regression_calibration, regression_intervals

Z95 = NormalDist().inv_cdf(0.975)


def regression(mean, std, targets, shape=None) -> RegressionPrediction:
    mean = torch.tensor(mean, dtype=torch.float64)
    shape = mean.shape if shape is None else shape
    return RegressionPrediction(
        mean=mean.reshape(shape),
        epistemic_variance=torch.tensor(std, dtype=torch.float64).reshape(shape) ** 2,
        aleatoric_variance=torch.zeros(shape, dtype=torch.float64),
        n_passes=10,
        targets=torch.tensor(targets, dtype=torch.float64),
    )


@pytest.fixture
def noisy(generator) -> RegressionPrediction:
    mean = torch.randn(50, generator=generator, dtype=torch.float64)
    std = 0.5 + torch.rand(50, generator=generator, dtype=torch.float64)
    targets = mean + 1.5 * std * torch.randn(
        50, generator=generator, dtype=torch.float64
    )
    return regression(mean.tolist(), std.tolist(), targets.tolist())


@pytest.mark.parametrize("kind", ["interval", "quantile"])
def test_calibration_curve_against_a_naive_count(noisy, kind):
    ax = regression_calibration(noisy, kind=kind, n_points=11)
    residuals = ((noisy.targets - noisy.mean) / noisy.std).numpy()

    expected = np.linspace(0, 1, 11)
    naive = []
    for p in expected:
        if kind == "interval":
            bound = NormalDist().inv_cdf((1 + p) / 2) if p < 1 else np.inf
            naive.append(np.mean(np.abs(residuals) <= bound))
        else:
            bound = (
                NormalDist().inv_cdf(p)
                if 0 < p < 1
                else (-np.inf if p == 0 else np.inf)
            )
            naive.append(np.mean(residuals <= bound))
    curve = ax.lines[0]
    np.testing.assert_allclose(curve.get_xdata(), expected)
    np.testing.assert_allclose(curve.get_ydata(), naive)

    # The shaded area between curve and diagonal; its label holds its size.
    assert len(ax.collections) == 1
    area = miscalibration_area(noisy.mean, noisy.std, noisy.targets, kind, 11)
    assert curve.get_label() == f"observed (area = {area:.3f})"


def test_hand_worked_curve_from_arrays():
    ax = regression_calibration(
        np.zeros(4), np.ones(4), np.array([-2.0, -0.1, 0.3, 1.0]), n_points=3
    )
    assert ax.lines[0].get_ydata().tolist() == [0.0, 0.5, 1.0]
    # 0.5 at p = 0.5 sits on the diagonal; 0 and 1 at the ends too.
    assert ax.lines[0].get_label() == "observed (area = 0.000)"


def test_overlaid_curves_share_one_diagonal(noisy):
    ax = Figure().add_subplot()
    regression_calibration(noisy, ax=ax, label="mc")
    regression_calibration(
        noisy.mean, noisy.std * 2, noisy.targets, ax=ax, label="wide"
    )
    labels = [line.get_label() for line in ax.lines]
    assert labels[0].startswith("mc (") and labels[1] == "ideal"
    assert labels[2].startswith("wide (") and len(labels) == 3


def test_intervals_split_covered_and_missed_targets():
    # Mean 0, std 1: targets 0.5 and -1.0 are inside +-1.96, 3.0 is not.
    prediction = regression([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, -1.0, 3.0])
    ax = regression_intervals(prediction)

    inside, outside = ax.containers
    data, _, (bars,) = inside.lines
    assert data.get_xdata().tolist() == [0.5, -1.0]
    assert data.get_ydata().tolist() == [0.0, 0.0]
    for segment in bars.get_segments():
        assert segment[:, 1].tolist() == pytest.approx([-Z95, Z95])
    assert outside.lines[0].get_xdata().tolist() == [3.0]
    title = ax.get_legend().get_title().get_text()
    assert title == "95% intervals cover 66.7% of 3 targets"


def test_intervals_of_a_one_column_model_and_a_point_limit(generator):
    # A model returning (n_inputs, 1) with targets (n_inputs,).
    mean = torch.randn(30, generator=generator, dtype=torch.float64)
    prediction = regression(mean.tolist(), [1.0] * 30, (mean + 0.1).tolist(), (30, 1))
    ax = regression_intervals(prediction, level=0.5, max_points=12)

    (inside,) = ax.containers
    assert len(inside.lines[0].get_xdata()) == 12
    title = ax.get_legend().get_title().get_text()
    assert title == "50% intervals cover 100.0% of 30 targets"


def test_errors(noisy):
    with pytest.raises(ArgumentValueError, match="got no `std` and no `targets`"):
        regression_calibration(np.zeros(3))
    with pytest.raises(ArgumentTypeError, match="RegressionPrediction"):
        regression_intervals(np.zeros(3))
    without = RegressionPrediction(
        noisy.mean, noisy.epistemic_variance, noisy.aleatoric_variance, n_passes=10
    )
    with pytest.raises(ArgumentValueError, match="to carry targets"):
        regression_intervals(without)
    with pytest.raises(ArgumentValueError, match="`level`"):
        regression_intervals(noisy, level=1.0)
    with pytest.raises(ArgumentValueError, match="`max_points`"):
        regression_intervals(noisy, max_points=0)
