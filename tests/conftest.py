"""Shared fixtures: small seeded models of the kinds users wrap."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn


def snapshot(model: nn.Module) -> tuple[dict, list[bool]]:
    """Everything of a model that must come back unchanged: tensors and flags."""
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    return state, [module.training for module in model.modules()]


def assert_unchanged(model: nn.Module, before: tuple[dict, list[bool]]) -> None:
    state, flags = snapshot(model)
    assert flags == before[1]
    assert state.keys() == before[0].keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, before[0][name]), name


class FunctionalDropoutNet(nn.Module):
    """Applies dropout through F.dropout, as many published models do."""

    def __init__(self, n_features: int = 6, n_classes: int = 3) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_features, 32)
        self.out = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.hidden(x))
        return self.out(F.dropout(x, 0.5, self.training))


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 32),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(32, 3),
    ).eval()


@pytest.fixture
def cnn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout2d(0.2),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 16),
        nn.ReLU(),
        nn.Dropout(0.4),
        nn.Linear(16, 4),
    )
    # Non-trivial running statistics, so using them is visible.
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def inputs() -> torch.Tensor:
    return torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
