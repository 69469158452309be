"""Small real predictions, from MC dropout on a tiny seeded classifier."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from mcdropout import MCDropout
from mcdropout.report import CalibrationReport

CLASS_NAMES = ["<script>alert(1)</script>", "b|c", "c&d"]


@pytest.fixture(scope="module")
def predictions() -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)
    )
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(48, 5, generator=generator)
    targets = torch.randint(0, 3, (48,), generator=generator)
    mc = MCDropout(model.eval(), n_passes=8, seed=0, keep_samples=True)
    scaled = MCDropout(model, n_passes=8, seed=0, temperature=2.0)

    def noisy(scale: float) -> torch.Tensor:
        return inputs + scale * torch.randn(48, 5, generator=generator)

    return {
        "mc": mc.predict(inputs, targets=targets),
        "deterministic": mc.predict(inputs, targets=targets, deterministic=True),
        "calibrated": scaled.predict(inputs, targets=targets),
        "ood": mc.predict(4 * torch.randn(20, 5, generator=generator)),
        "shifted": {
            f"gaussian_noise={s}": mc.predict(noisy(s), targets=targets)
            for s in (0.5, 2.0)
        },
    }


@pytest.fixture(scope="module")
def report(predictions) -> CalibrationReport:
    return CalibrationReport(
        **predictions,
        class_names=CLASS_NAMES,
        n_bins=5,
        metadata={"model": "<b>MLP</b>", "data": "toy", "seed": 0, "time_taken": 1.5},
        dpi=50,
    )


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    return report.write(tmp_path_factory.mktemp("written") / "report")
