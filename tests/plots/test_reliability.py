import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mcdropout import ArgumentTypeError, ArgumentValueError, RegressionPrediction
from mcdropout.metrics import expected_calibration_error, reliability_bins
from mcdropout.plots import reliability_diagram, reliability_diagrams

# Confidences 0.9, 0.6, 0.7, 0.8 and exactly 1.0; 0.8 sits on an inner edge
# of 5 uniform bins. Right: 0.9, 0.7, 1.0. Wrong: 0.6, 0.8.
HAND_PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.0, 1.0]])
HAND_TARGETS = np.array([0, 1, 1, 0, 1])


def bars(container) -> dict[str, list[float]]:
    return {
        "x": [bar.get_x() for bar in container],
        "y": [bar.get_y() for bar in container],
        "width": [bar.get_width() for bar in container],
        "height": [bar.get_height() for bar in container],
    }


def test_hand_worked_bars_gaps_histogram_and_ece():
    diagram, histogram = reliability_diagram(HAND_PROBS, HAND_TARGETS, n_bins=5)

    accuracy, gap = diagram.containers
    # Bins [0.6, 0.8): 0.6 wrong, 0.7 right. [0.8, 1]: 0.8 wrong, 0.9 and 1.0
    # right. The three lower bins are empty and get no bar.
    assert bars(accuracy) == {
        "x": pytest.approx([0.6, 0.8]),
        "y": [0.0, 0.0],
        "width": pytest.approx([0.2, 0.2]),
        "height": pytest.approx([0.5, 2 / 3]),
    }
    # The gap runs from the accuracy up to the mean confidence, 0.65 and 0.9.
    assert bars(gap)["y"] == pytest.approx([0.5, 2 / 3])
    assert bars(gap)["height"] == pytest.approx([0.15, 0.9 - 2 / 3])

    # ECE = 2/5 * 0.15 + 3/5 * (0.9 - 2/3) = 0.2
    assert diagram.get_legend().get_title().get_text() == "ECE = 0.2000"

    (counts,) = histogram.containers
    assert bars(counts)["height"] == pytest.approx([0, 0, 0, 0.4, 0.6])
    vertical = [line.get_xdata()[0] for line in histogram.lines]
    assert vertical == pytest.approx([0.6, 0.8])  # accuracy, mean confidence


@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_bars_follow_the_reliability_table(prediction, n_bins):
    diagram, histogram = reliability_diagram(prediction, n_bins=n_bins)
    table = reliability_bins(prediction.probs, prediction.targets, n_bins)
    filled = table[table["count"] > 0]

    accuracy, gap = diagram.containers
    assert len(accuracy) == len(filled)
    assert bars(accuracy)["x"] == pytest.approx(filled["lower"].tolist())
    assert bars(accuracy)["height"] == pytest.approx(filled["accuracy"].tolist())
    assert bars(gap)["height"] == pytest.approx((-filled["gap"]).tolist())

    heights = bars(histogram.containers[0])["height"]
    assert len(heights) == n_bins
    assert np.array(heights) * len(prediction) == pytest.approx(table["count"])


def test_one_class_present_and_single_bin():
    probs = np.array([[0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    diagram, _ = reliability_diagram(probs, np.zeros(3, dtype=int), n_bins=1)
    (bar,) = diagram.containers[0]
    assert (bar.get_x(), bar.get_width(), bar.get_height()) == (0.0, 1.0, 1.0)
    assert diagram.containers[1][0].get_height() == pytest.approx(0.7 - 1.0)


def test_quantile_bins_are_points_with_gap_segments(prediction):
    diagram, _ = reliability_diagram(prediction, n_bins=4, binning="quantile")
    table = reliability_bins(prediction.probs, prediction.targets, 4, "quantile")

    line = diagram.lines[0]
    assert line.get_xdata().tolist() == pytest.approx(table["confidence"].tolist())
    assert line.get_ydata().tolist() == pytest.approx(table["accuracy"].tolist())
    segments = diagram.collections[0].get_segments()
    np.testing.assert_allclose(
        [s[:, 1] for s in segments], table[["accuracy", "confidence"]].to_numpy()
    )


def test_label_and_given_axes(prediction):
    fig = Figure()
    ax = fig.add_subplot()
    axes = reliability_diagram(prediction, ax=ax, label="MC <dropout>")

    assert axes.diagram is ax and axes.histogram is None
    ece = expected_calibration_error(prediction.probs, prediction.targets)
    title = ax.get_legend().get_title().get_text()
    assert title == f"MC <dropout>\nECE = {ece:.4f}"


def test_explicit_targets_win_over_the_predictions_own(prediction):
    flipped = (prediction.targets + 1) % 4
    diagram, _ = reliability_diagram(prediction, flipped, n_bins=5)
    table = reliability_bins(prediction.probs, flipped, 5)
    heights = bars(diagram.containers[0])["height"]
    assert heights == pytest.approx(table.loc[table["count"] > 0, "accuracy"].tolist())


def test_side_by_side_draws_each_prediction_as_alone(prediction):
    uniform = torch.full_like(prediction.probs, 0.25)
    fig = reliability_diagrams({"mc": prediction, "flat": uniform}, prediction.targets)

    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[:2]] == ["mc", "flat"]
    alone = reliability_diagram(prediction).diagram
    assert bars(fig.axes[0].containers[0]) == bars(alone.containers[0])
    # Every input of the flat prediction has confidence 0.25: one bar.
    (bar,) = fig.axes[1].containers[0]
    assert bar.get_x() == pytest.approx(0.2)


def test_overlay_draws_one_line_per_prediction(prediction, generator):
    other = torch.softmax(torch.randn(40, 4, generator=generator), -1)
    predictions = {"mc": prediction, "other": other}
    fig = reliability_diagrams(predictions, prediction.targets, n_bins=5, overlay=True)

    diagram, histogram = fig.axes
    for line, (name, probs) in zip(diagram.lines, predictions.items(), strict=False):
        probs = getattr(probs, "probs", probs)
        table = reliability_bins(probs, prediction.targets, 5)
        filled = table[table["count"] > 0]
        ece = expected_calibration_error(probs, prediction.targets, 5)
        assert line.get_label() == f"{name} (ECE = {ece:.4f})"
        assert line.get_xdata().tolist() == pytest.approx(filled["confidence"].tolist())
        assert line.get_ydata().tolist() == pytest.approx(filled["accuracy"].tolist())
    assert len(histogram.patches) == 2  # one step outline per prediction


def test_errors_name_the_argument(prediction):
    with pytest.raises(ArgumentValueError, match="expected `targets`"):
        reliability_diagram(prediction.probs)
    with pytest.raises(ArgumentTypeError, match="got a RegressionPrediction"):
        regression = RegressionPrediction(
            torch.zeros(2), torch.ones(2), torch.zeros(2), n_passes=2
        )
        reliability_diagram(regression)
    with pytest.raises(ArgumentValueError, match="expected `ax` with `hist_ax`"):
        reliability_diagram(prediction, hist_ax=Figure().add_subplot())
    with pytest.raises(ArgumentTypeError, match="expected `ax` to be a matplotlib"):
        reliability_diagram(prediction, ax="left")
    with pytest.raises(ArgumentValueError, match="`n_bins`"):
        reliability_diagram(prediction, n_bins=0)
    with pytest.raises(ArgumentValueError, match="non-empty mapping"):
        reliability_diagrams({})
    fig = Figure()
    fig.add_subplot()
    with pytest.raises(ArgumentValueError, match="expected `fig` to be an empty"):
        reliability_diagrams({"mc": prediction}, fig=fig)
