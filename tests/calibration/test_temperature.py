import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mcdropout import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropout,
    MCDropoutWarning,
)
from mcdropout.calibration import (
    TemperatureFit,
    fit_temperature,
    fit_temperature_from_logits,
)
from mcdropout.metrics import negative_log_likelihood


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def mc_average_nll(logits: torch.Tensor, targets: torch.Tensor, t: float) -> float:
    """NLL of the mean softmax, through the metrics module."""
    probs = torch.softmax(logits.double() / t, dim=-1).mean(dim=0)
    return negative_log_likelihood(probs, targets)


@pytest.mark.parametrize("n_passes", [1, 4])
def test_recovers_a_known_temperature(generator, n_passes):
    # Targets drawn from the MC average of softmax(logits / 2): the NLL is
    # smallest near T = 2 for a large sample.
    logits = 2.5 * torch.randn(5000, 4, generator=generator, dtype=torch.float64)
    noise = 0.7 * torch.randn(n_passes, 5000, 4, generator=generator).double()
    per_pass = logits + noise if n_passes > 1 else logits[None]
    probs = torch.softmax(per_pass / 2, dim=-1).mean(dim=0)
    targets = torch.multinomial(probs, 1, generator=generator).squeeze(1)

    fit = fit_temperature_from_logits(per_pass, targets)
    assert isinstance(fit, TemperatureFit)
    assert fit.temperature == pytest.approx(2.0, abs=0.15)
    assert (fit.n_passes, fit.n_inputs, fit.initial_temperature) == (n_passes, 5000, 1)
    assert fit.nll_after < fit.nll_before
    assert fit.nll_before == pytest.approx(mc_average_nll(per_pass, targets, 1.0))
    assert fit.nll_after == pytest.approx(
        mc_average_nll(per_pass, targets, fit.temperature)
    )


def test_fit_is_a_local_minimum(generator):
    logits = 3 * torch.randn(3, 400, 5, generator=generator)
    probs = torch.softmax(logits / 1.5, dim=-1).mean(dim=0)
    targets = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    fit = fit_temperature_from_logits(logits, targets)
    for factor in [1 - 1e-3, 1 + 1e-3]:
        nearby = mc_average_nll(logits, targets, fit.temperature * factor)
        assert nearby >= fit.nll_after - 1e-12


def test_two_dimensional_logits_are_one_pass(generator):
    logits = 2 * torch.randn(300, 3, generator=generator)
    probs = torch.softmax(logits, dim=-1)
    targets = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    one_pass = fit_temperature_from_logits(logits.numpy(), targets.numpy())
    assert one_pass == fit_temperature_from_logits(logits[None], targets)
    assert one_pass.n_passes == 1


def test_single_logit_column_is_a_binary_model(generator):
    logit = 3 * torch.randn(2000, generator=generator, dtype=torch.float64)
    targets = torch.bernoulli(torch.sigmoid(logit / 0.5), generator=generator).long()
    fit = fit_temperature_from_logits(logit[:, None], targets)
    assert fit.temperature == pytest.approx(0.5, abs=0.1)


def test_separable_data_warns_at_the_edge_of_the_range():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]] * 10)
    targets = torch.tensor([0, 1] * 10)
    with pytest.warns(MCDropoutWarning, match="edge of the temperature range"):
        fit = fit_temperature_from_logits(logits, targets)
    assert fit.temperature == pytest.approx(0.05)


@pytest.fixture
def validation(mlp, generator):
    inputs = 3 * torch.randn(240, 6, generator=generator)
    with torch.no_grad():
        probs = torch.softmax(mlp(inputs), dim=-1)
    targets = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return inputs, targets


@pytest.mark.parametrize(
    "options",
    [{}, {"strategy": "loop"}, {"strategy": "stacked", "max_batch_size": 100}],
    ids=["auto", "loop", "stacked-blocks"],
)
def test_fitted_wrapper_reproduces_the_reported_nll(mlp, validation, options):
    inputs, targets = validation
    mc = MCDropout(mlp, n_passes=6, seed=3, **options)
    fit = fit_temperature(mc, inputs, targets)

    before = mc.predict(inputs, targets=targets)
    assert fit.nll_before == pytest.approx(
        negative_log_likelihood(before.probs, targets), abs=1e-10
    )
    calibrated = fit.apply(mc)
    after = calibrated.predict(inputs, targets=targets)
    assert fit.nll_after == pytest.approx(
        negative_log_likelihood(after.probs, targets), abs=1e-10
    )
    assert fit.nll_after <= fit.nll_before
    # The user's wrapper is left alone; the copy shares the model.
    assert mc.temperature is None
    assert calibrated.temperature == fit.temperature
    assert calibrated.model is mc.model
    assert (calibrated.n_passes, calibrated.seed) == (6, 3)
    assert calibrated.strategy == mc.strategy


def test_data_loader_input_carries_its_targets(mlp, validation):
    inputs, targets = validation
    mc = MCDropout(mlp, n_passes=4, seed=1)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=64)
    fit = fit_temperature(mc, loader)
    assert fit.n_inputs == 240
    after = fit.apply(mc).predict(loader)
    assert torch.equal(after.targets, targets)
    assert fit.nll_after == pytest.approx(
        negative_log_likelihood(after.probs, targets), abs=1e-10
    )


def test_deterministic_baseline_is_plain_temperature_scaling(mlp, validation):
    inputs, targets = validation
    mc = MCDropout(mlp, n_passes=5, seed=0)
    fit = fit_temperature(mc, inputs, targets, deterministic=True)
    with torch.no_grad():
        logits = mlp.eval()(inputs)
    assert fit == fit_temperature_from_logits(logits, targets)

    baseline = fit.apply(mc).predict(inputs, deterministic=True)
    assert fit.nll_after == pytest.approx(
        negative_log_likelihood(baseline.probs, targets), abs=1e-10
    )


def test_an_existing_temperature_is_replaced_not_multiplied(mlp, validation):
    inputs, targets = validation
    plain = fit_temperature(MCDropout(mlp, n_passes=4, seed=2), inputs, targets)
    warm = MCDropout(mlp, n_passes=4, seed=2, temperature=3.0)
    fit = fit_temperature(warm, inputs, targets)

    assert fit.initial_temperature == 3.0
    assert fit.nll_before == pytest.approx(
        negative_log_likelihood(warm.predict(inputs).probs, targets), abs=1e-10
    )
    assert fit.temperature == pytest.approx(plain.temperature, rel=1e-9)


def test_fit_leaves_the_rng_and_model_state_alone(mlp, validation):
    inputs, targets = validation
    mc = MCDropout(mlp, n_passes=3, seed=0)
    flags = [module.training for module in mlp.modules()]
    state = torch.random.get_rng_state()
    fit_temperature(mc, inputs, targets)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert [module.training for module in mlp.modules()] == flags


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda mc, x, y: fit_temperature(mc.model, x, y),
            ArgumentTypeError,
            "`mc` to be an mcdropout.MCDropout, got Sequential",
        ),
        (
            lambda mc, x, y: fit_temperature(
                MCDropout(mc.model, task="regression"), x, y
            ),
            ArgumentValueError,
            "`mc` with task='classification', got task='regression'",
        ),
        (
            lambda mc, x, y: fit_temperature(mc, x),
            ArgumentValueError,
            "expected targets to fit on",
        ),
        (
            lambda mc, x, y: fit_temperature(mc, x, y + 5),
            ArgumentValueError,
            r"`targets` in \[0, 3\)",
        ),
        (
            lambda mc, x, y: fit_temperature(mc, x, y[:-1]),
            ArgumentValueError,
            r"`targets` of batch 0 to have 240 rows.*got shape \(239,\)",
        ),
        (
            lambda mc, x, y: fit_temperature_from_logits(torch.ones(5), y),
            ArgumentValueError,
            r"`logits` of shape \(n_passes, n_inputs, n_classes\)",
        ),
        (
            lambda mc, x, y: fit_temperature_from_logits(
                torch.full((240, 3), math.nan), y
            ),
            ArgumentValueError,
            "`logits` to be finite",
        ),
        (
            lambda mc, x, y: TemperatureFit(2.0, 1.0, 0.5, 1.0, 1, 1).apply(mc.model),
            ArgumentTypeError,
            "`mc` to be an mcdropout.MCDropout",
        ),
    ],
)
def test_bad_input(mlp, validation, call, error, match):
    mc = MCDropout(mlp, n_passes=2, seed=0)
    with pytest.raises(error, match=match):
        call(mc, *validation)


def test_models_returning_non_logits_are_refused(validation):
    model = nn.Sequential(nn.Linear(6, 4), nn.Dropout(0.5), nn.Flatten(0))
    with pytest.raises(ArgumentValueError, match="logits of shape"):
        fit_temperature(MCDropout(model, n_passes=2), *validation)
