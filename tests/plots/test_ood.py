import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from mcdropout import ArgumentTypeError
from mcdropout.plots import ood_histograms
from tests.plots.helpers import classification


@pytest.fixture
def out_prediction(generator):
    """Flatter outputs than the in-distribution fixture: 30 unlabelled inputs."""
    logits = 0.7 * torch.randn(12, 30, 4, generator=generator, dtype=torch.float64)
    return classification(logits, None)


def test_histograms_and_roc_curves_against_scikit_learn(prediction, out_prediction):
    measures = ["confidence", "mutual_information"]
    fig = ood_histograms(prediction, out_prediction, measures, bins=6)
    *panels, roc = fig.axes
    assert len(panels) == 2

    positive = np.r_[np.zeros(len(prediction)), np.ones(len(out_prediction))]
    for panel, line, measure in zip(panels, roc.lines, measures, strict=False):
        in_values = getattr(prediction, measure).numpy()
        out_values = getattr(out_prediction, measure).numpy()
        edges = np.histogram_bin_edges(np.r_[in_values, out_values], bins=6)
        for container, values in zip(
            panel.containers, (in_values, out_values), strict=True
        ):
            expected, _ = np.histogram(values, edges, density=True)
            np.testing.assert_allclose(
                [bar.get_height() for bar in container], expected
            )

        # Confidence flags OOD when low: its score is its negation.
        sign = -1.0 if measure == "confidence" else 1.0
        scores = sign * np.r_[in_values, out_values]
        fpr, tpr, _ = roc_curve(positive, scores)
        np.testing.assert_allclose(line.get_xdata(), fpr)
        np.testing.assert_allclose(line.get_ydata(), tpr)
        auroc = roc_auc_score(positive, scores)
        assert line.get_label().startswith(f"{measure}\nAUROC = {auroc:.3f}, ")


def test_one_measure_gives_one_histogram_and_the_roc(prediction, out_prediction):
    fig = ood_histograms(prediction, out_prediction, "predictive_entropy")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel() == "Predictive entropy (nats)"
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert labels[0].startswith("predictive_entropy") and labels[1] == "chance"


def test_rejects_a_non_classification_prediction(prediction):
    with pytest.raises(ArgumentTypeError, match="expected `out_prediction`"):
        ood_histograms(prediction, prediction.probs)
