import math

import numpy as np
import pytest
import torch

from mcdropout import ArgumentTypeError, ArgumentValueError
from mcdropout.metrics import expected_calibration_error
from mcdropout.plots import convergence, running_metrics
from tests.plots.helpers import classification


def test_hand_worked_two_passes():
    # Pass 1 says (0.8, 0.2), pass 2 says (0.2, 0.8); the target is class 1.
    samples = torch.tensor([[[0.8, 0.2]], [[0.2, 0.8]]])
    table = running_metrics(samples, torch.tensor([1]), n_bins=2)

    assert table["n_passes"].tolist() == [1, 2]
    # Mean of both is (0.5, 0.5): argmax is class 0, still wrong.
    assert table["accuracy"].tolist() == [0.0, 0.0]
    assert table["nll"].tolist() == pytest.approx([-math.log(0.2), math.log(2)])
    # One input, wrong, at confidence 0.8 then 0.5.
    assert table["ece"].tolist() == pytest.approx([0.8, 0.5])


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_running_metrics_equal_recomputing_every_prefix(prediction, binning):
    samples, targets = prediction.samples, prediction.targets
    table = running_metrics(samples, targets, n_bins=5, binning=binning)

    for t in range(1, len(samples) + 1):
        mean = samples[:t].double().mean(dim=0)
        row = table.iloc[t - 1]
        target_probs = mean[torch.arange(len(targets)), targets]
        assert row["accuracy"] == pytest.approx(
            (mean.argmax(1) == targets).double().mean().item()
        )
        assert row["nll"] == pytest.approx(-target_probs.log().mean().item())
        assert row["ece"] == pytest.approx(
            expected_calibration_error(mean, targets, 5, binning), abs=1e-12
        )


def test_plot_draws_the_running_curves_final_and_baseline(prediction, generator):
    baseline = classification(
        torch.randn(1, 40, 4, generator=generator, dtype=torch.float64),
        prediction.targets,
    )
    fig = convergence(prediction, n_bins=5, baseline=baseline)
    table = running_metrics(prediction.samples, prediction.targets, n_bins=5)

    assert [ax.get_ylabel() for ax in fig.axes] == ["Accuracy", "NLL (nats)", "ECE"]
    for ax, column in zip(fig.axes, ["accuracy", "nll", "ece"], strict=True):
        curve, final, _ = ax.lines
        np.testing.assert_array_equal(curve.get_xdata(), np.arange(1, 13))
        np.testing.assert_allclose(curve.get_ydata(), table[column])
        assert final.get_ydata()[0] == pytest.approx(table[column].iloc[-1])
    accuracy = (baseline.predicted == baseline.targets).double().mean().item()
    assert fig.axes[0].lines[2].get_ydata()[0] == pytest.approx(accuracy)


def test_needs_samples_and_a_classification(prediction):
    without = type(prediction)(**{**prediction.__dict__, "samples": None})
    with pytest.raises(ArgumentValueError, match="keep_samples=True"):
        convergence(without)
    with pytest.raises(ArgumentTypeError, match="ClassificationPrediction"):
        convergence(prediction.samples)
    with pytest.raises(ArgumentValueError, match=r"shape \(n_passes, n_inputs"):
        running_metrics(prediction.probs, prediction.targets)
