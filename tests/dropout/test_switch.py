import warnings

import pytest
import torch
from torch import nn

from mcdropout import NoDropoutError, dropout_modules, enable_dropout, set_dropout_rate
from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from tests.conftest import FunctionalDropoutNet, assert_unchanged, snapshot

DROPOUT_TYPES = [
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
]


@pytest.mark.parametrize("dropout_type", DROPOUT_TYPES)
def test_modules_mode_switches_every_dropout_type_and_nothing_else(dropout_type):
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), dropout_type(0.5))
    model.eval()
    model[0].train()  # a flag the user set on purpose must survive
    before = snapshot(model)

    with enable_dropout(model) as entered:
        assert entered is model
        assert [m.training for m in model] == [True, False, True]
        assert model.training is False

    assert_unchanged(model, before)


def test_flags_are_restored_after_an_exception(cnn):
    before = snapshot(cnn)
    with pytest.raises(RuntimeError, match="boom"), enable_dropout(cnn):
        raise RuntimeError("boom")
    assert_unchanged(cnn, before)


def test_batchnorm_statistics_never_change_in_either_mode(cnn):
    before = snapshot(cnn)
    x = torch.randn(8, 1, 5, 5)
    for mode in ("modules", "train_except_norm"):
        with enable_dropout(cnn, mode):
            assert cnn[1].training is False
            cnn(x)
    assert_unchanged(cnn, before)


def test_train_except_norm_trains_all_but_norm_layers():
    model = nn.Sequential(
        nn.Linear(3, 3),
        nn.BatchNorm1d(3),
        nn.InstanceNorm1d(3, track_running_stats=True),
        nn.SyncBatchNorm(3),
        nn.Dropout(0.1),
    ).eval()
    with enable_dropout(model, "train_except_norm"):
        assert [m.training for m in model.modules()] == [
            True, True, False, False, False, True
        ]  # fmt: skip
    assert not any(m.training for m in model.modules())


def test_train_except_norm_reaches_functional_dropout():
    model = FunctionalDropoutNet().eval()
    x = torch.randn(64, 6)
    with torch.no_grad():
        reference = model(x)
        with enable_dropout(model, "train_except_norm"):
            dropped = model(x)
    assert not torch.allclose(reference, dropped)
    assert model.training is False


def test_modules_mode_refuses_functional_dropout_naming_remedies():
    with (
        pytest.raises(NoDropoutError, match=r"add_dropout.*train_except_norm"),
        enable_dropout(FunctionalDropoutNet()),
    ):
        pass


def test_train_except_norm_refuses_a_model_without_any_dropout():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    before = snapshot(model)
    with (
        pytest.raises(NoDropoutError, match="calls no functional dropout"),
        enable_dropout(model, "train_except_norm"),
    ):
        pass
    assert_unchanged(model, before)


def test_unknown_mode_is_refused(mlp):
    with (
        pytest.raises(ArgumentValueError, match=r"`mode`.*'modules'.*got 'all'"),
        enable_dropout(mlp, "all"),
    ):
        pass


def test_dropout_modules_lists_qualified_names(cnn):
    assert [name for name, _ in dropout_modules(cnn)] == ["3", "7"]


def test_set_dropout_rate_changes_every_rate(cnn):
    assert set_dropout_rate(cnn, 0.05) is cnn
    assert [module.p for _, module in dropout_modules(cnn)] == [0.05, 0.05]


@pytest.mark.parametrize(
    ("p", "error", "match"),
    [
        (1.0, ArgumentValueError, r"`p` to be a number in \[0, 1\), got 1.0"),
        (-0.1, ArgumentValueError, r"`p`.*got -0.1"),
        ("0.1", ArgumentTypeError, r"`p`.*of type str"),
    ],
)
def test_set_dropout_rate_refuses_bad_rates(mlp, p, error, match):
    with pytest.raises(error, match=match):
        set_dropout_rate(mlp, p)


def test_set_dropout_rate_refuses_a_model_without_dropout():
    with pytest.raises(NoDropoutError, match="no dropout module"):
        set_dropout_rate(nn.Linear(2, 2), 0.1)


@pytest.fixture
def scripted(cnn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.script is deprecated
        return torch.jit.script(cnn)


def test_torchscript_models_switch_by_scripted_class(scripted):
    before = snapshot(scripted)
    assert [name for name, _ in dropout_modules(scripted)] == ["3", "7"]
    for mode in ("modules", "train_except_norm"):
        with enable_dropout(scripted, mode):
            flags = {name: m.training for name, m in scripted.named_modules()}
            assert flags["3"] and flags["7"] and not flags["1"]
            outputs = torch.stack([scripted(torch.ones(2, 1, 5, 5)) for _ in range(5)])
            assert outputs.std(dim=0).sum() > 0
    assert_unchanged(scripted, before)


def test_torchscript_rates_are_fixed(scripted):
    with pytest.raises(ArgumentTypeError, match=r"TorchScript model.*'3'"):
        set_dropout_rate(scripted, 0.1)
