"""Built-in architectures and safe loading of trained models."""

import logging

import pytest
import torch
from torch import nn

from mcdropout import ArgumentTypeError, ArgumentValueError, MCDropout
from mcdropout.data import DataInfo, InputStatistics
from mcdropout.models import (
    PickleRefusedError,
    Standardize,
    TargetScale,
    build_model,
    load_state_dict,
    load_torchscript,
)

FLAT = DataInfo("classification", (64,), 10, image_shape=(8, 8))
IMAGE = DataInfo("classification", (3, 16, 16), 5, image_shape=(3, 16, 16))
REGRESSION = DataInfo("regression", (7,))


@pytest.fixture
def seeded():
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("architecture", "info", "heteroscedastic", "output"),
    [
        ("mlp", FLAT, False, (4, 10)),
        ("mlp", IMAGE, False, (4, 5)),
        ("mlp", REGRESSION, False, (4, 1)),
        ("mlp", REGRESSION, True, (4, 2)),
        ("small_cnn", FLAT, False, (4, 10)),
        ("small_cnn", IMAGE, False, (4, 5)),
        ("resnet18", IMAGE, False, (4, 5)),
        ("resnet18", FLAT, False, (4, 10)),
    ],
)
def test_output_shapes(seeded, architecture, info, heteroscedastic, output):
    model = build_model(architecture, info, heteroscedastic=heteroscedastic).eval()
    assert model(torch.randn(4, *info.input_shape)).shape == output
    # Every built-in has dropout for MC dropout to switch on.
    prediction = MCDropout(model, 3, task=info.task, seed=0).predict(
        torch.randn(2, *info.input_shape)
    )
    assert len(prediction) == 2


@pytest.mark.parametrize(
    ("architecture", "kinds"),
    [
        ("mlp", {nn.Dropout}),
        ("small_cnn", {nn.Dropout, nn.Dropout2d}),
        ("resnet18", {nn.Dropout}),
    ],
)
def test_dropout_layers(architecture, kinds):
    model = build_model(architecture, IMAGE, {"dropout": 0.25})
    found = {
        type(m) for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
    }
    assert found == kinds
    head = [m for m in model.modules() if type(m) is nn.Dropout]
    assert {m.p for m in head} == {0.25}


def test_resnet18_dropout_head_and_stem():
    model = build_model("resnet18", IMAGE, {"small_input": False})
    net = model[1]
    assert isinstance(net.fc[0], nn.Dropout)
    assert net.conv1.kernel_size == (7, 7)
    small = build_model("resnet18", IMAGE)[1]
    assert small.conv1.kernel_size == (3, 3)
    assert isinstance(small.maxpool, nn.Identity)


def test_small_cnn_needs_images():
    with pytest.raises(ArgumentValueError, match=r"expected image inputs"):
        build_model("small_cnn", REGRESSION)


def test_unknown_architecture():
    with pytest.raises(
        ArgumentValueError, match=r"expected `architecture` to be one of"
    ):
        build_model("vgg", FLAT)


def test_standardize_uses_the_statistics():
    layer = Standardize((3,))
    layer.set_statistics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 0.5]))
    out = layer(torch.tensor([[3.0, 2.0, 2.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, -2.0]]))


def test_build_model_sets_input_statistics(seeded):
    stats = InputStatistics(torch.full((7,), 5.0), torch.full((7,), 2.0), 2.0, (0, 9))
    model = build_model("mlp", REGRESSION, statistics=stats)
    torch.testing.assert_close(
        model[0](torch.full((1, 7), 9.0)), torch.full((1, 7), 2.0)
    )


@pytest.mark.parametrize(
    ("heteroscedastic", "outputs", "expected"),
    [
        # shift 10, scale 2: z -> 10 + 2 z; log-variance s -> s + 2 log 2.
        (False, [[1.0], [-1.0]], [[12.0], [8.0]]),
        (True, [[1.0, 0.0]], [[12.0, 2 * 0.6931471805599453]]),
    ],
)
def test_target_scale(heteroscedastic, outputs, expected):
    layer = TargetScale(heteroscedastic)
    layer.set_statistics(10.0, 2.0)
    torch.testing.assert_close(layer(torch.tensor(outputs)), torch.tensor(expected))


# --- loading ----------------------------------------------------------------


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.2), nn.Linear(4, 2)).eval()


def test_state_dict_round_trip(seeded, tmp_path):
    trained, fresh = _net(), _net()
    path = tmp_path / "w.pt"
    torch.save(trained.state_dict(), path)
    loaded = load_state_dict(fresh, path)
    x = torch.randn(5, 3)
    assert loaded is fresh
    torch.testing.assert_close(loaded(x), trained(x))


def test_nested_state_dict(seeded, tmp_path):
    trained = _net()
    path = tmp_path / "w.pt"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, path)
    torch.testing.assert_close(
        load_state_dict(_net(), path)[0].weight, trained[0].weight
    )


def test_a_pickled_model_needs_the_opt_in(seeded, tmp_path, caplog):
    trained = _net()
    path = tmp_path / "model.pt"
    torch.save(trained, path)
    with pytest.raises(PickleRefusedError, match=r"set `model\.allow_pickle: true`"):
        load_state_dict(_net(), path)

    with caplog.at_level(logging.WARNING, logger="mcdropout"):
        loaded = load_state_dict(_net(), path, allow_pickle=True)
    assert "can run arbitrary code" in caplog.text
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded(x), trained(x))


def test_weights_that_do_not_fit(seeded, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(nn.Linear(5, 4).state_dict(), path)
    with pytest.raises(ArgumentValueError, match=r"do not fit the model"):
        load_state_dict(_net(), path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "w.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ArgumentTypeError, match=r"to hold a state dict .*got list"):
        load_state_dict(_net(), path)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_round_trip(seeded, tmp_path):
    net = _net()
    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(net), path)
    loaded = load_torchscript(path)
    x = torch.randn(3, 3)
    torch.testing.assert_close(loaded(x), net(x))


def test_torchscript_bad_file(tmp_path):
    path = tmp_path / "net.ts"
    path.write_bytes(b"not a model")
    with pytest.raises(ArgumentValueError, match=r"cannot load TorchScript"):
        load_torchscript(path)
