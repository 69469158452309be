"""Plot tests draw under Agg and close every pyplot figure they open."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from mcdropout.predictions import ClassificationPrediction
from tests.plots.helpers import classification


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def prediction(generator) -> ClassificationPrediction:
    """40 inputs, 4 classes, 12 passes; mostly right, samples kept."""
    targets = torch.randint(0, 4, (40,), generator=generator)
    logits = 2.0 * torch.randn(12, 40, 4, generator=generator, dtype=torch.float64)
    logits[:, torch.arange(40), targets] += 1.5
    return classification(logits, targets, keep_samples=True)
