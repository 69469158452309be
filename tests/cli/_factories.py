"""Model factories named in configs as ``tests.cli._factories:NAME``."""

from torch import Tensor, nn


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(64, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, inputs: Tensor) -> Tensor:
        raise RuntimeError("boom in forward")


def broken_model() -> nn.Module:
    """A model that fails while running (exit code 1)."""
    return _Broken()


def digits_mlp(width: int = 16) -> nn.Module:
    """A plain MLP for the 64 digits features, without standardisation."""
    return nn.Sequential(
        nn.Linear(64, width), nn.ReLU(), nn.Dropout(0.2), nn.Linear(width, 10)
    )
