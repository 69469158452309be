import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import mean_absolute_error, mean_squared_error

from mcdropout import ArgumentTypeError, ArgumentValueError, RegressionPrediction
from mcdropout.metrics import (
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
from mcdropout.metrics._regression import _area_to_diagonal


@pytest.fixture(params=[(60,), (30, 3)], ids=["1d", "2d"])
def gaussian_data(request, rng):
    shape = request.param
    mean = rng.normal(size=shape)
    std = rng.uniform(0.5, 2.0, size=shape)
    targets = mean + std * rng.normal(size=shape)
    return mean, std, targets


def test_errors_equal_scikit_learn(gaussian_data):
    mean, _, targets = gaussian_data
    assert rmse(mean, targets) == pytest.approx(
        math.sqrt(mean_squared_error(targets, mean)), abs=1e-6
    )
    assert mae(mean, targets) == pytest.approx(
        mean_absolute_error(targets, mean), abs=1e-6
    )


def test_gaussian_nll_equals_torch_and_a_naive_loop(gaussian_data):
    mean, std, targets = gaussian_data
    naive = [
        0.5 * math.log(2 * math.pi * s * s) + (y - m) ** 2 / (2 * s * s)
        for m, s, y in zip(mean.ravel(), std.ravel(), targets.ravel(), strict=True)
    ]
    reference = F.gaussian_nll_loss(
        torch.from_numpy(mean),
        torch.from_numpy(targets),
        torch.from_numpy(std**2),
        full=True,
    )
    got = gaussian_nll(torch.from_numpy(mean), std, targets)
    assert got == pytest.approx(sum(naive) / len(naive), abs=1e-12)
    assert got == pytest.approx(reference.item(), abs=1e-12)


def test_hand_worked_interval_metrics():
    mean, std = np.zeros(4), np.ones(4)
    targets = np.array([0.5, -1.9, 2.0, 3.0])
    # |r| <= 1.959964: 0.5 and -1.9 inside, 2.0 and 3.0 outside.
    assert interval_coverage(mean, std, targets) == 0.5
    assert interval_coverage(mean, std, targets, level=0.99) == 0.75
    assert interval_width(mean, std) == pytest.approx(2 * 1.959963984540054)
    assert sharpness(np.array([1.0, 7.0])) == pytest.approx(5.0)


@pytest.mark.parametrize("level", [0.0, 0.5, 0.9, 0.95])
def test_interval_metrics_agree_with_prediction_intervals(gaussian_data, level):
    mean, std, targets = gaussian_data
    prediction = RegressionPrediction(
        torch.from_numpy(mean),
        torch.from_numpy(std**2),
        torch.zeros(mean.shape, dtype=torch.float64),
        n_passes=10,
    )
    lower, upper = (bound.numpy() for bound in prediction.interval(level))
    inside = (lower <= targets) & (targets <= upper)
    assert interval_coverage(mean, std, targets, level) == pytest.approx(inside.mean())
    assert interval_width(mean, std, level) == pytest.approx(np.mean(upper - lower))


def naive_mc_log_likelihood(samples, targets, tau):
    n_passes = len(samples)
    total = []
    for i, y in enumerate(targets.ravel()):
        draws = [samples[t].ravel()[i] for t in range(n_passes)]
        density = sum(math.exp(-tau / 2 * (y - d) ** 2) for d in draws) / n_passes
        total.append(
            math.log(density) - 0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau)
        )
    return sum(total) / len(total)


@pytest.mark.parametrize("shape", [(8, 20), (5, 10, 3)])
@pytest.mark.parametrize("tau", [0.5, 4.0])
def test_mc_log_likelihood_equals_a_naive_loop(rng, shape, tau):
    samples = rng.normal(size=shape)
    targets = rng.normal(size=shape[1:])
    expected = naive_mc_log_likelihood(samples, targets, tau)
    got = mc_log_likelihood(torch.from_numpy(samples), targets, tau)
    assert got == pytest.approx(expected, abs=1e-12)


def test_mc_log_likelihood_of_one_pass_is_minus_the_gaussian_nll(rng):
    samples = rng.normal(size=(1, 25))
    targets = rng.normal(size=25)
    tau = 2.5
    expected = -gaussian_nll(samples[0], np.full(25, 1 / math.sqrt(tau)), targets)
    assert mc_log_likelihood(samples, targets, tau) == pytest.approx(expected)


def test_mc_log_likelihood_is_stable_far_from_the_samples():
    # exp(-tau / 2 * 1e4) underflows; logsumexp keeps the exact value.
    samples = np.zeros((3, 1))
    got = mc_log_likelihood(samples, np.array([100.0]), 1.0)
    assert got == pytest.approx(-5000 - 0.5 * math.log(2 * math.pi))


def naive_curve(mean, std, targets, kind, n_points):
    residuals = ((targets - mean) / std).ravel()
    observed = []
    for p in np.linspace(0, 1, n_points):
        if p in (0.0, 1.0):
            # The bounds are -inf and inf (and 0 for a zero-mass interval).
            z = {0.0: 0.0 if kind == "interval" else -math.inf, 1.0: math.inf}[p]
        elif kind == "interval":
            z = NormalDist().inv_cdf((1 + p) / 2)
        else:
            z = NormalDist().inv_cdf(p)
        score = np.abs(residuals) if kind == "interval" else residuals
        observed.append(sum(1 for r in score if r <= z) / len(residuals))
    return observed


@pytest.mark.parametrize("kind", ["interval", "quantile"])
@pytest.mark.parametrize("n_points", [2, 11, 100])
def test_calibration_curve_equals_a_naive_loop(gaussian_data, kind, n_points):
    mean, std, targets = gaussian_data
    expected, observed = regression_calibration_curve(
        mean, std, targets, kind, n_points
    )
    assert expected.tolist() == pytest.approx(np.linspace(0, 1, n_points).tolist())
    assert observed.tolist() == naive_curve(mean, std, targets, kind, n_points)


def test_hand_worked_calibration_curve():
    mean, std = np.zeros(4), np.ones(4)
    targets = np.array([-2.0, -0.1, 0.3, 1.0])
    # Central 50% interval: |r| <= 0.674, holding -0.1 and 0.3.
    _, observed = regression_calibration_curve(mean, std, targets, n_points=3)
    assert observed.tolist() == [0.0, 0.5, 1.0]
    # Median: r <= 0, holding -2.0 and -0.1.
    _, observed = regression_calibration_curve(
        mean, std, targets, "quantile", n_points=3
    )
    assert observed.tolist() == [0.0, 0.5, 1.0]


@pytest.fixture
def large_sample(rng):
    mean = rng.normal(size=20000)
    std = rng.uniform(0.5, 2.0, size=20000)
    return mean, std, mean + std * rng.normal(size=20000)


def test_calibrated_curve_is_near_the_diagonal(large_sample):
    for kind in ["interval", "quantile"]:
        expected, observed = regression_calibration_curve(*large_sample, kind=kind)
        assert np.abs(observed - expected).max() < 0.015
        assert miscalibration_area(*large_sample, kind=kind) < 0.005


def test_curve_orientation_is_observed_against_expected(large_sample):
    mean, std, targets = large_sample
    # Predicting half the true spread: r ~ N(0, 4), and the central 50%
    # interval |r| <= 0.674 holds 2 Phi(0.337) - 1 = 0.264 of the targets,
    # under the diagonal (not mirrored above it).
    expected, observed = regression_calibration_curve(
        mean, std / 2, targets, n_points=3
    )
    assert expected[1] == 0.5
    assert observed[1] == pytest.approx(2 * NormalDist().cdf(0.6745 / 2) - 1, abs=0.01)
    # Predicting a mean one std too high puts the targets below the predicted
    # median: Phi(1) = 0.841 of them.
    _, observed = regression_calibration_curve(
        mean + std, std, targets, "quantile", n_points=3
    )
    assert observed[1] == pytest.approx(NormalDist().cdf(1.0), abs=0.01)


def test_hand_worked_area_with_a_crossing():
    # Gaps 0.5, -0.25, 0: the first segment crosses the diagonal two thirds
    # of the way along, two triangles of 0.5 * (1/3) * 0.5 and
    # 0.5 * (1/6) * 0.25; the second is a triangle of 0.5 * 0.5 * 0.25.
    expected = np.array([0.0, 0.5, 1.0])
    observed = np.array([0.5, 0.25, 1.0])
    area = 0.5 / 3 * 0.5 + 0.5 / 6 * 0.25 + 0.5 * 0.5 * 0.25
    assert _area_to_diagonal(expected, observed) == pytest.approx(area, abs=1e-15)


@pytest.mark.parametrize("kind", ["interval", "quantile"])
def test_area_equals_fine_numerical_integration(rng, kind):
    # A small, badly calibrated sample: a curve that crosses the diagonal.
    mean = rng.normal(size=15)
    std = rng.uniform(0.2, 3.0, size=15)
    targets = rng.normal(size=15)
    expected, observed = regression_calibration_curve(
        mean, std, targets, kind, n_points=20
    )
    grid = np.linspace(0, 1, 2_000_001)
    gaps = np.abs(np.interp(grid, expected, observed) - grid)
    numeric = np.sum((gaps[1:] + gaps[:-1]) / 2 * np.diff(grid))
    area = miscalibration_area(mean, std, targets, kind, n_points=20)
    assert area == pytest.approx(numeric, abs=1e-9)

    rmse_gap = math.sqrt(np.mean((observed - expected) ** 2))
    assert regression_calibration_error(
        mean, std, targets, kind, n_points=20
    ) == pytest.approx(rmse_gap, abs=1e-15)


M, S, Y = np.zeros(3), np.ones(3), np.array([0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: rmse(M, Y[:2]),
            ArgumentValueError,
            r"`targets` to have the shape of `mean`, \(3,\), got \(2,\)",
        ),
        (
            lambda: gaussian_nll(M, np.zeros(3), Y),
            ArgumentValueError,
            "`std` > 0 everywhere, got a smallest value of 0",
        ),
        (
            lambda: interval_coverage(M, -S, Y),
            ArgumentValueError,
            "`std` >= 0 everywhere",
        ),
        (
            lambda: sharpness(np.array([np.nan])),
            ArgumentValueError,
            "`std` to be finite",
        ),
        (
            lambda: mae(np.ones((2, 2, 2)), Y),
            ArgumentValueError,
            r"`mean` of shape \(n_inputs,\) or \(n_inputs, n_outputs\)",
        ),
        (
            lambda: gaussian_nll(M, S, "y"),
            ArgumentTypeError,
            "`targets` to hold numbers",
        ),
        (
            lambda: interval_width(M, S[:2]),
            ArgumentValueError,
            "`std` to have the shape of `mean`",
        ),
        (
            lambda: interval_coverage(M, S, Y, level=1.0),
            ArgumentValueError,
            r"`level` to be a number in \[0, 1\), got 1.0",
        ),
        (
            lambda: regression_calibration_curve(M, S, Y, kind="pit"),
            ArgumentValueError,
            "`kind` to be one of 'interval', 'quantile'",
        ),
        (
            lambda: miscalibration_area(M, S, Y, n_points=1),
            ArgumentValueError,
            "`n_points` >= 2",
        ),
        (
            lambda: regression_calibration_error(M, np.zeros(3), Y),
            ArgumentValueError,
            "`std` > 0",
        ),
        (
            lambda: mc_log_likelihood(np.zeros((4, 3)), Y, 0.0),
            ArgumentValueError,
            "`noise_precision` to be a positive finite number, got 0.0",
        ),
        (
            lambda: mc_log_likelihood(np.zeros((4, 3)), Y[:2], 1.0),
            ArgumentValueError,
            r"`targets` of shape \(3,\), `samples` without its passes dimension",
        ),
        (
            lambda: mc_log_likelihood(np.zeros(3), Y, 1.0),
            ArgumentValueError,
            r"`samples` of shape \(n_passes, n_inputs\)",
        ),
        (
            lambda: rmse(np.zeros(0), np.zeros(0)),
            ArgumentValueError,
            "`mean` to hold inputs, got 0",
        ),
    ],
)
def test_bad_regression_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
