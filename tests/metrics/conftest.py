"""Seeded random predictions for the metric tests."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def random_probs_targets(
    rng: np.random.Generator, n_inputs: int = 200, n_classes: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet probabilities and targets drawn from them (roughly calibrated)."""
    probs = rng.dirichlet(np.full(n_classes, 0.5), size=n_inputs)
    targets = np.array([rng.choice(n_classes, p=row) for row in probs])
    return probs, targets
