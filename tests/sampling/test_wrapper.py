import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mcdropout import (
    ClassificationPrediction,
    MCDropout,
    ModelOutputError,
    NoDropoutError,
    RegressionPrediction,
)
from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropoutWarning,
)
from mcdropout.dropout import enable_dropout
from tests.conftest import FunctionalDropoutNet, assert_unchanged, snapshot


def naive_passes(model: nn.Module, x: torch.Tensor, n_passes: int) -> torch.Tensor:
    """The reference: T separate forwards with dropout on, softmax, stack."""
    with torch.no_grad(), enable_dropout(model):
        return torch.stack([F.softmax(model(x).double(), -1) for _ in range(n_passes)])


def entropy(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * probs.log()).sum(-1)


def test_loop_strategy_equals_a_naive_loop_exactly(mlp, inputs):
    torch.manual_seed(3)
    samples = naive_passes(mlp, inputs, 12)
    torch.manual_seed(3)
    prediction = MCDropout(mlp, 12, strategy="loop").predict(inputs)

    mean = samples.mean(0)
    torch.testing.assert_close(prediction.probs, mean)
    torch.testing.assert_close(prediction.variance, samples.var(0, unbiased=False))
    torch.testing.assert_close(prediction.predictive_entropy, entropy(mean))
    torch.testing.assert_close(prediction.expected_entropy, entropy(samples).mean(0))
    votes = F.one_hot(samples.argmax(-1), 3).sum(0)
    modal = votes.max(-1).values.double()
    torch.testing.assert_close(prediction.variation_ratio, 1 - modal / 12)


def test_stacked_passes_match_the_naive_loop_within_monte_carlo_error(mlp, inputs):
    n_passes = 2000
    torch.manual_seed(0)
    reference = naive_passes(mlp, inputs, n_passes)
    prediction = MCDropout(mlp, n_passes, strategy="stacked", seed=1).predict(inputs)

    # Two independent means of n_passes draws: difference has std
    # sqrt(2 var / n_passes); allow five of them.
    tolerance = 5 * (2 * reference.var(0) / n_passes).sqrt() + 1e-9
    assert ((prediction.probs - reference.mean(0)).abs() <= tolerance).all()
    ratio = prediction.variance / reference.var(0, unbiased=False)
    assert ((ratio - 1).abs() < 0.2).all()


def test_entropy_identity_and_ranges(cnn):
    x = torch.randn(40, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    prediction = MCDropout(cnn, 30, seed=0).predict(x)
    torch.testing.assert_close(
        prediction.predictive_entropy,
        prediction.expected_entropy + prediction.mutual_information,
    )
    assert (prediction.mutual_information >= 0).all()
    assert (prediction.mutual_information > 0).any()
    n_classes = prediction.n_classes
    assert (prediction.variation_ratio >= 0).all()
    assert (prediction.variation_ratio <= 1 - 1 / n_classes + 1e-12).all()
    assert (prediction.predictive_entropy <= math.log(n_classes) + 1e-12).all()


@pytest.mark.parametrize("max_batch_size", [1, 3, 7, 10, 1000])
def test_statistics_are_exact_for_any_chunk_size(mlp, inputs, max_batch_size):
    prediction = MCDropout(
        mlp, 9, seed=0, keep_samples=True, max_batch_size=max_batch_size
    ).predict(inputs)
    samples = prediction.samples.double()
    assert samples.shape == (9, 10, 3)
    # Samples are stored in float32; statistics are accumulated in float64.
    torch.testing.assert_close(prediction.probs, samples.mean(0), atol=1e-7, rtol=0)
    torch.testing.assert_close(
        prediction.variance, samples.var(0, unbiased=False), atol=1e-7, rtol=0
    )


@pytest.mark.parametrize("max_batch_size", [10, 30, 70, 1000])
def test_chunking_does_not_change_looped_results(mlp, inputs, max_batch_size):
    # Looped passes draw masks in the same order however they are chunked, so
    # the merged statistics must agree to rounding.
    reference = MCDropout(mlp, 9, seed=0, strategy="loop", max_batch_size=10)
    expected = reference.predict(inputs)
    actual = MCDropout(
        mlp, 9, seed=0, strategy="loop", max_batch_size=max_batch_size
    ).predict(inputs)
    torch.testing.assert_close(actual.probs, expected.probs, rtol=0, atol=1e-15)
    torch.testing.assert_close(actual.variance, expected.variance, rtol=0, atol=1e-15)
    torch.testing.assert_close(actual.expected_entropy, expected.expected_entropy)


def test_seed_repeats_results_and_leaves_the_global_rng_alone(mlp, inputs):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = MCDropout(mlp, 20, seed=7).predict(inputs)
    assert torch.equal(torch.get_rng_state(), state)
    second = MCDropout(mlp, 20, seed=7).predict(inputs)
    other = MCDropout(mlp, 20, seed=8).predict(inputs)
    assert torch.equal(first.probs, second.probs)
    assert not torch.equal(first.probs, other.probs)


def test_model_comes_back_exactly_as_it_was(cnn):
    cnn.train()  # even a model left in train mode must not have BN updated
    cnn[5].eval()
    before = snapshot(cnn)
    x = torch.randn(16, 1, 5, 5)
    MCDropout(cnn, 10).predict(x)
    MCDropout(cnn, 10, mode="train_except_norm").predict(x)
    MCDropout(cnn, 10).predict(x, deterministic=True)
    assert_unchanged(cnn, before)


def test_deterministic_prediction_is_the_eval_model(cnn):
    x = torch.randn(16, 1, 5, 5)
    with torch.no_grad():
        expected = F.softmax(cnn.eval()(x).double(), -1)
    cnn.train()
    prediction = MCDropout(cnn, 10).predict(x, deterministic=True)
    assert isinstance(prediction, ClassificationPrediction)
    assert prediction.n_passes == 1
    torch.testing.assert_close(prediction.probs, expected)
    assert prediction.mutual_information.abs().max() < 1e-12
    assert (prediction.variance == 0).all()


def test_batchnorm_uses_running_statistics_under_mc(cnn):
    # With p = 0 every pass is the eval model, so MC equals deterministic.
    for module in cnn.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
    x = torch.randn(16, 1, 5, 5)
    mc = MCDropout(cnn, 5)
    with pytest.warns(MCDropoutWarning, match="identical outputs"):
        mc_probs = mc.predict(x).probs
    torch.testing.assert_close(mc_probs, mc.predict(x, deterministic=True).probs)


def test_functional_dropout_model_needs_train_except_norm():
    model = FunctionalDropoutNet().eval()
    with pytest.raises(NoDropoutError, match="train_except_norm"):
        MCDropout(model)
    prediction = MCDropout(model, 20, mode="train_except_norm", seed=0).predict(
        torch.randn(8, 6)
    )
    assert (prediction.variance.sum(-1) > 0).all()
    assert model.training is False


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 8)
        self.b = nn.Linear(2, 8)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 2)

    def forward(self, first, second, scale=1.0):
        return self.head(self.drop(self.a(first) + self.b(second))) * scale


def test_tuple_and_dict_inputs_are_unpacked():
    torch.manual_seed(0)
    model = TwoInputs()
    first, second = torch.randn(5, 3), torch.randn(5, 2)
    mc = MCDropout(model, 8, seed=0)
    from_tuple = mc.predict((first, second))
    from_dict = mc.predict({"first": first, "second": second})
    from_call = mc(first, second)
    assert torch.equal(from_tuple.probs, from_dict.probs)
    assert torch.equal(from_tuple.probs, from_call.probs)
    # A non-tensor argument is passed through, not repeated.
    with pytest.warns(MCDropoutWarning, match="identical outputs"):
        scaled = mc.predict({"first": first, "second": second, "scale": 0.0})
    torch.testing.assert_close(
        scaled.probs, torch.full((5, 2), 0.5, dtype=torch.float64)
    )


def test_loader_of_input_target_pairs_collects_targets(mlp):
    x = torch.randn(23, 6)
    y = torch.randint(0, 3, (23,))
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    streamed = MCDropout(mlp, 6, seed=0, strategy="loop", progress=True).predict(loader)
    assert torch.equal(streamed.targets, y)
    assert len(streamed) == 23
    frame = streamed.to_frame()
    assert frame.shape[0] == 23
    assert frame["target"].tolist() == y.tolist()

    only_inputs = MCDropout(mlp, 6).predict(DataLoader(TensorDataset(x), batch_size=5))
    assert only_inputs.targets is None and len(only_inputs) == 23


def test_single_batch_targets(mlp, inputs):
    targets = torch.arange(10) % 3
    prediction = MCDropout(mlp, 4).predict(inputs, targets=targets)
    assert torch.equal(prediction.correct, prediction.predicted == targets)


def test_regression_heteroscedastic_and_noise_precision():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4)
    )
    x = torch.randn(7, 3)
    mc = MCDropout(
        model, 25, task="regression", heteroscedastic=True, noise_precision=10.0,
        keep_samples=True, seed=0,
    )  # fmt: skip
    prediction = mc.predict(x)
    assert isinstance(prediction, RegressionPrediction)
    assert prediction.mean.shape == (7, 2)

    # Reference from the same seeded passes, computed by hand.
    torch.manual_seed(0)
    with torch.no_grad(), enable_dropout(model.eval()):
        outputs = model(x.repeat(25, 1)).double().view(25, 7, 4)
    means, log_vars = outputs[..., :2], outputs[..., 2:]
    torch.testing.assert_close(prediction.mean, means.mean(0))
    torch.testing.assert_close(
        prediction.epistemic_variance, means.var(0, unbiased=False)
    )
    torch.testing.assert_close(
        prediction.aleatoric_variance, log_vars.exp().mean(0) + 0.1
    )
    torch.testing.assert_close(prediction.samples, means.float())


def test_regression_with_one_output_per_input():
    model = nn.Sequential(
        nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 1), nn.Flatten(0)
    )
    prediction = MCDropout(model, 5, task="regression").predict(torch.randn(4, 3))
    assert prediction.mean.shape == (4,)
    assert (prediction.aleatoric_variance == 0).all()


class FixedBatch(nn.Module):
    """Reshapes with a hard-coded batch size, so stacking breaks it."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.drop(x)).view(10, 3)


def test_auto_falls_back_to_a_loop_when_stacking_breaks_the_model(inputs, caplog):
    model = FixedBatch()
    with caplog.at_level("INFO", logger="mcdropout"):
        auto = MCDropout(model, 6, seed=0, keep_samples=True).predict(inputs)
    assert "cannot stack passes" in caplog.text
    assert auto.samples.shape == (6, 10, 3)
    torch.testing.assert_close(
        auto.probs, auto.samples.double().mean(0), atol=1e-7, rtol=0
    )
    assert (auto.variance.sum(-1) > 0).all()
    with pytest.raises(ModelOutputError, match=r"6 stacked passes.*shape"):
        MCDropout(model, 6, strategy="stacked").predict(inputs)


class Broken(nn.Module):
    def __init__(self, output) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.output = output

    def forward(self, x):
        return self.output(self.drop(x))


@pytest.mark.parametrize(
    ("output", "kwargs", "match"),
    [
        (
            lambda x: x.sum(-1),
            {},
            r"logits of shape \(n_inputs, n_classes\), got shape \(5,\)",
        ),
        (lambda x: x.log(), {}, r"got \d+ NaN or infinite value\(s\)"),
        (lambda x: (x, x), {}, "to return a Tensor, got tuple"),
        (
            lambda x: x[:, :3],
            {"task": "regression", "heteroscedastic": True},
            r"2 \* n_outputs.*got shape \(5, 3\)",
        ),
    ],
)
def test_bad_model_outputs_are_reported_and_the_model_restored(output, kwargs, match):
    model = Broken(output).eval()
    before = snapshot(model)
    x = torch.randn(5, 4) - 10  # negative, so log() gives NaN
    with pytest.raises(ModelOutputError, match=match):
        MCDropout(model, 3, **kwargs).predict(x)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"n_passes": 0},
            ArgumentValueError,
            "`n_passes` to be a positive integer, got 0",
        ),
        ({"n_passes": 2.5}, ArgumentTypeError, "`n_passes`.*got 2.5 of type float"),
        ({"task": "segmentation"}, ArgumentValueError, "`task`.*got 'segmentation'"),
        ({"mode": "everything"}, ArgumentValueError, "`mode`.*got 'everything'"),
        ({"strategy": "fast"}, ArgumentValueError, "`strategy`.*got 'fast'"),
        ({"max_batch_size": -1}, ArgumentValueError, "`max_batch_size`.*got -1"),
        ({"seed": "1"}, ArgumentTypeError, "`seed`.*got '1'"),
        (
            {"heteroscedastic": True},
            ArgumentValueError,
            "`heteroscedastic` applies to task='regression'",
        ),
        (
            {"task": "regression", "temperature": 2.0},
            ArgumentValueError,
            "`temperature` applies",
        ),
        (
            {"task": "regression", "noise_precision": 0.0},
            ArgumentValueError,
            "`noise_precision`.*got 0.0",
        ),
    ],
)
def test_bad_arguments_are_refused(mlp, kwargs, error, match):
    with pytest.raises(error, match=match):
        MCDropout(mlp, **kwargs)


def test_bad_inputs_are_refused(mlp, inputs):
    mc = MCDropout(mlp, 2)
    with pytest.raises(ArgumentValueError, match="empty iterable"):
        mc.predict(iter([]))
    with pytest.raises(
        ArgumentValueError,
        match=r"`targets` of batch 0 to have 10 rows.*got shape \(9,\)",
    ):
        mc.predict(inputs, targets=torch.zeros(9))
    with pytest.raises(ArgumentValueError, match="batch 1 without targets"):
        mc.predict(iter([(inputs, torch.zeros(10)), (inputs,)]))
    with pytest.raises(ArgumentTypeError, match=r"`inputs`.*got int"):
        mc.predict(3)
    with pytest.raises(ArgumentValueError, match="3 elements at item 0"):
        mc.predict(iter([(inputs, inputs, inputs)]))
    with pytest.raises(
        ArgumentValueError, match="batch 0 of `inputs` to have rows, got 0"
    ):
        mc.predict(inputs[:0])
    with pytest.raises(ArgumentTypeError, match=r"`model` to be a torch.nn.Module"):
        MCDropout(lambda x: x)


def test_transformer_in_modules_mode_warns_that_passes_are_identical():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, batch_first=True)
    model = nn.Sequential(
        nn.TransformerEncoder(layer, 1), nn.Flatten(), nn.Linear(32, 3)
    )
    x = torch.randn(6, 4, 8)
    with pytest.warns(MCDropoutWarning, match=r"identical outputs.*train_except_norm"):
        MCDropout(model.eval(), 5).predict(x)
    prediction = MCDropout(model, 5, mode="train_except_norm").predict(x)
    assert (prediction.mutual_information > 0).all()


def test_sample_outputs_are_the_passes_predict_aggregates(mlp, inputs):
    mc = MCDropout(mlp, 7, seed=4, keep_samples=True, max_batch_size=30)
    outputs, targets = mc.sample_outputs(inputs, targets=torch.arange(10) % 3)
    prediction = mc.predict(inputs)
    assert outputs.shape == (7, 10, 3) and outputs.dtype == torch.float32
    assert torch.equal(targets, torch.arange(10) % 3)
    probs = F.softmax(outputs.double(), dim=-1)
    torch.testing.assert_close(probs.mean(0), prediction.probs)
    torch.testing.assert_close(probs.float(), prediction.samples)
    single, _ = mc.sample_outputs(inputs, deterministic=True)
    with torch.no_grad():
        torch.testing.assert_close(single[0], mlp.eval()(inputs))


def test_torchscript_model_gets_uncertainty_and_keeps_batchnorm(cnn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.script is deprecated
        scripted = torch.jit.script(cnn)
    before = snapshot(scripted)
    x = torch.randn(12, 1, 5, 5)
    prediction = MCDropout(scripted, 20, seed=0).predict(x)
    assert (prediction.mutual_information > 0).all()
    # Dropout off, the scripted model is the original one in eval mode.
    baseline = MCDropout(scripted, 20).predict(x, deterministic=True)
    with torch.no_grad():
        torch.testing.assert_close(baseline.probs, F.softmax(cnn(x).double(), -1))
    assert_unchanged(scripted, before)


def test_column_targets_of_a_classifier_become_a_vector(mlp, inputs):
    targets = (torch.arange(10) % 3)[:, None]
    prediction = MCDropout(mlp, 3).predict(inputs, targets=targets)
    assert prediction.targets.shape == (10,)
    assert prediction.correct.shape == (10,)
    with pytest.raises(ArgumentValueError, match=r"one class index per input"):
        MCDropout(mlp, 3).predict(inputs, targets=torch.zeros(10, 3))
