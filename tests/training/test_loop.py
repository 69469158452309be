"""The training loop: losses against naive formulas, early stopping, callbacks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mcdropout import ArgumentValueError
from mcdropout.training import train_model, training_loss


@pytest.fixture(autouse=True)
def one_thread():
    # Small models train fastest on one thread, above all on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def test_classification_loss_is_cross_entropy(generator):
    logits = torch.randn(6, 3, generator=generator)
    targets = torch.tensor([0, 1, 2, 2, 1, 0])
    naive = (
        -sum(
            math.log(math.exp(row[t]) / sum(math.exp(v) for v in row))
            for row, t in zip(logits.tolist(), targets.tolist(), strict=True)
        )
        / 6
    )
    loss = training_loss(logits, targets, task="classification")
    assert float(loss) == pytest.approx(float(naive), rel=1e-6)


def test_regression_loss_is_in_target_units(generator):
    outputs, targets = torch.randn(5, 1, generator=generator), torch.randn(5, 1)
    loss = training_loss(outputs, targets, task="regression", target_scale=3.0)
    expected = float(((outputs - targets) ** 2).mean()) / 9.0
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_heteroscedastic_loss_is_the_gaussian_nll(generator):
    outputs = torch.randn(4, 2, generator=generator)
    targets = torch.randn(4, 1, generator=generator)
    scale = 2.5
    loss = training_loss(
        outputs, targets, task="regression", heteroscedastic=True, target_scale=scale
    )
    # Gaussian NLL in units of the target scale, without the log(2 pi) term.
    total = 0.0
    for (mean, log_var), (y,) in zip(outputs.tolist(), targets.tolist(), strict=True):
        var = math.exp(log_var) / scale**2
        total += 0.5 * (math.log(var) + ((mean - y) / scale) ** 2 / var)
    assert float(loss) == pytest.approx(total / 4, rel=1e-5)


def _problem(n: int, generator: torch.Generator) -> TensorDataset:
    x = torch.randn(n, 2, generator=generator)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())


def test_training_learns_and_reports_each_epoch(generator):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2)
    )
    calls = []
    result = train_model(
        model,
        DataLoader(_problem(128, generator), batch_size=32),
        task="classification",
        epochs=15,
        lr=0.02,
        val_loader=DataLoader(_problem(64, generator), batch_size=64),
        on_epoch=lambda *args: calls.append(args),
    )
    assert [call[:2] for call in calls] == [(e, 15) for e in range(1, 16)]
    assert [call[2] for call in calls] == result.train_loss
    assert [call[4] for call in calls] == [False] * 14 + [True]
    assert result.train_loss[-1] < 0.5 * result.train_loss[0]
    assert result.best_epoch == 15
    assert not model.training


def test_early_stopping_keeps_the_best_weights(generator):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))
    last = []
    # Random labels: the validation loss soon rises as training overfits.
    x = torch.randn(32, 2, generator=generator)
    train = TensorDataset(x, torch.randint(0, 2, (32,), generator=generator))
    val_x = torch.randn(32, 2, generator=generator)
    val = TensorDataset(val_x, torch.randint(0, 2, (32,), generator=generator))
    result = train_model(
        model,
        DataLoader(train, batch_size=32),
        task="classification",
        epochs=300,
        lr=0.05,
        val_loader=DataLoader(val, batch_size=32),
        patience=5,
        on_epoch=lambda *args: last.append(args[4]),
    )
    assert result.stopped_early
    assert last == [False] * (len(last) - 1) + [True]
    assert len(result.val_loss) == result.best_epoch + 5
    with torch.no_grad():
        final = F.cross_entropy(model(val_x), val.tensors[1])
    assert float(final) == pytest.approx(min(result.val_loss), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, r"expected `epochs` to be a positive integer, got 0"),
        ({"task": "ranking"}, r"expected `task` to be one of"),
        ({"patience": -1}, r"expected `patience` to be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, message, generator):
    arguments = {"task": "classification", "epochs": 1} | kwargs
    with pytest.raises(ArgumentValueError, match=message):
        train_model(nn.Linear(2, 2), DataLoader(_problem(4, generator)), **arguments)
