import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from mcdropout import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropout,
    MCDropoutWarning,
    RegressionPrediction,
)
from mcdropout.calibration import (
    NoisePrecisionFit,
    VarianceScaleFit,
    fit_noise_precision,
    fit_variance_scale,
)
from mcdropout.metrics import gaussian_nll


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def prediction_of(mean, epistemic, aleatoric, targets=None) -> RegressionPrediction:
    return RegressionPrediction(
        torch.as_tensor(mean, dtype=torch.float64),
        torch.as_tensor(epistemic, dtype=torch.float64),
        torch.as_tensor(aleatoric, dtype=torch.float64),
        n_passes=10,
        targets=None if targets is None else torch.as_tensor(targets),
    )


@pytest.fixture(params=[(200,), (80, 2)], ids=["1d", "2d"])
def overconfident(request, rng):
    # Predicted variance a third of the true one.
    shape = request.param
    mean = rng.normal(size=shape)
    epistemic = rng.uniform(0.1, 0.5, size=shape)
    aleatoric = np.full(shape, 0.2)
    targets = mean + np.sqrt(3 * (epistemic + aleatoric)) * rng.normal(size=shape)
    return prediction_of(mean, epistemic, aleatoric, targets)


def nll_with_variance(prediction: RegressionPrediction, variance) -> float:
    return gaussian_nll(prediction.mean, np.sqrt(variance), prediction.targets)


def test_scale_closed_form_minimises_the_nll(overconfident):
    fit = fit_variance_scale(overconfident)
    variance = overconfident.variance.numpy()
    residuals = overconfident.targets.numpy() - overconfident.mean.numpy()
    assert fit.scale == pytest.approx(np.mean(residuals**2 / variance), rel=1e-12)
    assert fit.scale == pytest.approx(3.0, rel=0.3)

    # The closed form against a numeric minimisation over a fine grid.
    grid = np.geomspace(fit.scale / 2, fit.scale * 2, 4001)
    values = [nll_with_variance(overconfident, s * variance) for s in grid]
    assert fit.scale == pytest.approx(grid[int(np.argmin(values))], rel=1e-3)
    assert fit.nll_after == pytest.approx(min(values), abs=1e-9)
    assert fit.nll_before == pytest.approx(nll_with_variance(overconfident, variance))
    assert fit.n_values == variance.size


def test_applied_scale_reproduces_the_nll(overconfident):
    fit = fit_variance_scale(overconfident)
    scaled = fit.apply(overconfident)
    assert torch.allclose(scaled.variance, overconfident.variance * fit.scale)
    assert torch.equal(scaled.mean, overconfident.mean)
    assert gaussian_nll(scaled.mean, scaled.std, scaled.targets) == pytest.approx(
        fit.nll_after, abs=1e-12
    )
    # The original is unchanged.
    assert fit_variance_scale(overconfident) == fit


def test_without_epistemic_variance_the_noise_precision_has_a_closed_form(rng):
    mean = rng.normal(size=300)
    targets = mean + 0.7 * rng.normal(size=300)
    prediction = prediction_of(mean, np.zeros(300), np.zeros(300), targets)
    fit = fit_noise_precision(prediction)
    assert fit.noise_precision == pytest.approx(
        1 / np.mean((targets - mean) ** 2), rel=1e-6
    )
    assert math.isnan(fit.nll_before)


def test_noise_precision_minimises_the_nll(overconfident):
    fit = fit_noise_precision(overconfident)
    epistemic = overconfident.epistemic_variance.numpy()

    noise = 1 / fit.noise_precision
    grid = np.geomspace(noise / 3, noise * 3, 4001)
    values = [nll_with_variance(overconfident, epistemic + a) for a in grid]
    assert noise == pytest.approx(grid[int(np.argmin(values))], rel=1e-3)
    assert fit.nll_after == pytest.approx(min(values), abs=1e-9)
    assert fit.nll_after < fit.nll_before

    refitted = fit.apply(overconfident)
    assert torch.allclose(
        refitted.aleatoric_variance, torch.full_like(refitted.mean, noise)
    )
    assert nll_with_variance(refitted, refitted.variance.numpy()) == pytest.approx(
        fit.nll_after, abs=1e-12
    )


def test_float32_predictions_are_fitted_in_float64():
    prediction = RegressionPrediction(
        torch.zeros(2), torch.zeros(2), torch.zeros(2), n_passes=1
    )
    fit = fit_noise_precision(prediction, targets=torch.tensor([2.0, -2.0]))
    assert fit.noise_precision == pytest.approx(0.25, rel=1e-9)


def test_epistemic_variance_covering_the_errors_warns(rng):
    mean = rng.normal(size=50)
    targets = mean + 0.1 * rng.normal(size=50)
    prediction = prediction_of(mean, np.full(50, 4.0), np.zeros(50), targets)
    with pytest.warns(MCDropoutWarning, match="noise variance goes to 0"):
        fit = fit_noise_precision(prediction)
    assert fit.noise_precision > 1e10


@pytest.fixture
def regression_data(rng):
    inputs = torch.from_numpy(rng.normal(size=(150, 6))).float()
    targets = torch.from_numpy(rng.normal(size=(150, 3)))
    return inputs, targets


def test_fitted_wrapper_reproduces_the_reported_nll(mlp, regression_data):
    inputs, targets = regression_data
    mc = MCDropout(mlp, n_passes=6, task="regression", seed=4)
    fit = fit_noise_precision(mc, inputs, targets)
    assert isinstance(fit, NoisePrecisionFit)

    calibrated = fit.apply(mc)
    assert mc.noise_precision is None
    assert calibrated.noise_precision == fit.noise_precision
    prediction = calibrated.predict(inputs, targets=targets)
    assert gaussian_nll(prediction.mean, prediction.std, targets) == pytest.approx(
        fit.nll_after, abs=1e-10
    )

    # Then a variance scale on top: the fitted noise leaves little to fix.
    scale = fit_variance_scale(calibrated, inputs, targets)
    assert isinstance(scale, VarianceScaleFit)
    assert scale.nll_after <= scale.nll_before
    assert scale.scale == pytest.approx(1.0, abs=0.2)


def test_heteroscedastic_wrapper_is_refused_for_noise_precision(regression_data):
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Linear(8, 6))
    mc = MCDropout(model, n_passes=2, task="regression", heteroscedastic=True)
    with pytest.raises(
        ArgumentValueError, match=r"heteroscedastic=True;.*fit_variance_scale"
    ):
        fit_noise_precision(mc, *regression_data)


P = prediction_of(np.zeros(3), np.ones(3), np.zeros(3), np.array([0.5, -1.0, 2.0]))


@pytest.mark.parametrize("fit", [fit_variance_scale, fit_noise_precision])
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            (dataclasses.replace(P, targets=None),),
            {},
            ArgumentValueError,
            "expected targets to fit on",
        ),
        (
            (P, torch.zeros(3, 2)),
            {},
            ArgumentValueError,
            "`inputs` to be None when `prediction` is a RegressionPrediction",
        ),
        (
            (P.mean,),
            {},
            ArgumentTypeError,
            "RegressionPrediction or an MCDropout with task='regression', got Tensor",
        ),
        (
            (P,),
            {"targets": torch.zeros(4)},
            ArgumentValueError,
            r"`targets` to have the shape of `prediction.mean`, \(3,\), got \(4,\)",
        ),
        (
            (P,),
            {"targets": torch.zeros(3)},
            ArgumentValueError,
            "every target equal to its mean",
        ),
        (
            (P,),
            {"targets": torch.tensor([0.0, math.nan, 1.0])},
            ArgumentValueError,
            "`targets` to be finite",
        ),
    ],
)
def test_bad_input(fit, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(*args, **kwargs)


def test_mc_without_inputs_and_classifier_are_refused(mlp, regression_data):
    with pytest.raises(ArgumentValueError, match="`inputs` to predict on"):
        fit_variance_scale(MCDropout(mlp, task="regression"))
    with pytest.raises(
        ArgumentValueError, match="task='regression', got task='classification'"
    ):
        fit_noise_precision(MCDropout(mlp), *regression_data)


def test_zero_variance_cannot_be_scaled():
    prediction = prediction_of(np.zeros(2), np.zeros(2), np.zeros(2), [1.0, 2.0])
    with pytest.raises(ArgumentValueError, match=r"2 zero value.*fit_noise_precision"):
        fit_variance_scale(prediction)


@pytest.mark.parametrize(
    ("fit", "target", "match"),
    [
        (
            VarianceScaleFit(2.0, 1.0, 0.5, 3),
            "x",
            "`prediction` to be a RegressionPrediction, got str",
        ),
        (
            NoisePrecisionFit(2.0, 1.0, 0.5, 3),
            1.0,
            "MCDropout or a RegressionPrediction, got float",
        ),
    ],
)
def test_apply_refuses_other_types(fit, target, match):
    with pytest.raises(ArgumentTypeError, match=match):
        fit.apply(target)
