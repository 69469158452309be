import numpy as np
import pytest
import torch

from mcdropout import ArgumentTypeError, ArgumentValueError
from mcdropout.metrics import expected_calibration_error
from mcdropout.plots import dataset_shift, shift_table
from tests.plots.helpers import classification


@pytest.fixture
def shifted(prediction, generator):
    noisier = {}
    for scale in (1.0, 3.0):
        noise = scale * torch.randn(12, 40, 4, generator=generator, dtype=torch.float64)
        logits = prediction.samples.double().log() + noise
        noisier[f"noise={scale}"] = classification(logits, prediction.targets)
    return {"clean": prediction} | noisier


def test_table_rows_follow_the_mapping_with_their_metrics(shifted):
    table = shift_table(shifted, n_bins=5)

    assert table.index.tolist() == ["clean", "noise=1.0", "noise=3.0"]
    for name, prediction in shifted.items():
        row = table.loc[name]
        right = (prediction.probs.argmax(1) == prediction.targets).double().mean()
        assert row["accuracy"] == pytest.approx(right.item())
        ece = expected_calibration_error(prediction.probs, prediction.targets, 5)
        assert row["ece"] == pytest.approx(ece)
        assert row["mean_confidence"] == pytest.approx(
            prediction.probs.max(1).values.mean().item()
        )
        assert row["mean_mutual_information"] == pytest.approx(
            prediction.mutual_information.mean().item()
        )


def test_plot_draws_the_table_against_the_shift_names(shifted):
    fig = dataset_shift(shifted, n_bins=5)
    table = shift_table(shifted, n_bins=5)
    columns = [
        ["accuracy", "ece", "mean_confidence"],
        ["mean_predictive_entropy", "mean_mutual_information"],
    ]
    for ax, names in zip(fig.axes, columns, strict=True):
        assert len(ax.lines) == len(names)
        for line, column in zip(ax.lines, names, strict=True):
            np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
            np.testing.assert_allclose(line.get_ydata(), table[column])
        ticks = [label.get_text() for label in ax.get_xticklabels()]
        assert ticks == ["clean", "noise=1.0", "noise=3.0"]


def test_errors(prediction):
    with pytest.raises(ArgumentValueError, match="non-empty mapping"):
        shift_table({})
    with pytest.raises(ArgumentTypeError, match="expected `predictions` to be a"):
        shift_table({"clean": prediction.probs})
    no_targets = type(prediction)(**{**prediction.__dict__, "targets": None})
    with pytest.raises(ArgumentValueError, match="expected `targets`"):
        dataset_shift({"clean": no_targets})


def test_each_kind_of_shift_is_its_own_line_from_the_clean_point(shifted):
    predictions = {
        "clean": shifted["clean"],
        "noise=1.0": shifted["noise=1.0"],
        "noise=3.0": shifted["noise=3.0"],
        "rotation 10": shifted["noise=1.0"],
    }
    fig = dataset_shift(predictions, n_bins=5)
    table = shift_table(predictions, n_bins=5)

    noise, link, rotation, *_ = fig.axes[0].lines
    assert list(noise.get_xdata()) == [0, 1, 2]
    # Rotation starts from the clean point too, through a dotted link.
    assert list(link.get_xdata()) == [0, 3] and link.get_linestyle() == ":"
    assert list(rotation.get_xdata()) == [3]
    np.testing.assert_allclose(link.get_ydata(), table["accuracy"].iloc[[0, 3]])
    assert rotation.get_color() == link.get_color() == noise.get_color()
    assert len(fig.axes[0].lines) == 9
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Accuracy", "ECE", "Mean confidence"]
