import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from mcdropout import (
    ArgumentTypeError,
    ArgumentValueError,
    RegressionPrediction,
    UndefinedMetricWarning,
)
from mcdropout.metrics import (
    aurc,
    classwise_calibration_error,
    expected_calibration_error,
)
from mcdropout.report import CalibrationReport
from tests.report.conftest import CLASS_NAMES

COMPARED = {
    "deterministic": "deterministic",
    "mc_dropout": "mc",
    "mc_dropout_temperature_scaled": "calibrated",
}
CLASSIFICATION_KEYS = [
    "accuracy",
    "nll",
    "brier",
    "ece",
    "adaptive_ece",
    "mce",
    "classwise_ece",
    "aurc",
]


@pytest.mark.parametrize("name", list(COMPARED))
def test_classification_metrics_against_references(report, predictions, name):
    prediction = predictions[COMPARED[name]]
    probs, targets = prediction.probs.numpy(), prediction.targets.numpy()
    metrics = report.metrics[name]

    assert list(metrics) == CLASSIFICATION_KEYS
    assert metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == targets))
    assert metrics["nll"] == pytest.approx(log_loss(targets, probs, labels=[0, 1, 2]))
    onehot = np.eye(3)[targets]
    assert metrics["brier"] == pytest.approx(np.mean(((probs - onehot) ** 2).sum(1)))
    # The report passes its n_bins, and quantile bins for the adaptive ECE.
    assert metrics["ece"] == expected_calibration_error(probs, targets, 5)
    adaptive = expected_calibration_error(probs, targets, 5, "quantile")
    assert metrics["adaptive_ece"] == adaptive
    assert metrics["mce"] == expected_calibration_error(probs, targets, 5, norm="max")
    assert metrics["classwise_ece"] == classwise_calibration_error(probs, targets, 5)
    correct = probs.argmax(1) == targets
    assert metrics["aurc"] == aurc(prediction.predictive_entropy, correct)


def test_ood_metrics_against_scikit_learn(report, predictions):
    mc, ood = predictions["mc"], predictions["ood"]
    positive = np.r_[np.zeros(len(mc)), np.ones(len(ood))]

    assert list(report.metrics["ood"]) == [
        "confidence",
        "predictive_entropy",
        "mutual_information",
    ]
    for measure, scores in report.metrics["ood"].items():
        values = np.r_[getattr(mc, measure).numpy(), getattr(ood, measure).numpy()]
        values = -values if measure == "confidence" else values
        assert scores["auroc"] == pytest.approx(roc_auc_score(positive, values))
        assert set(scores) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr"}


def test_shift_metrics_start_from_the_clean_test_set(report):
    shift = report.metrics["shift"]
    assert list(shift) == ["clean", "gaussian_noise=0.5", "gaussian_noise=2.0"]
    assert shift["clean"]["accuracy"] == report.metrics["mc_dropout"]["accuracy"]
    assert shift["clean"]["ece"] == report.metrics["mc_dropout"]["ece"]
    assert report.tables["shift"].index.tolist() == list(shift)


def test_tables(report, predictions):
    metrics = report.tables["metrics"]
    assert metrics.index.tolist() == list(COMPARED)
    for name in COMPARED:
        assert metrics.loc[name].to_dict() == report.metrics[name]

    classes = report.tables["classes"]
    targets = predictions["mc"].targets.numpy()
    assert classes.index.tolist() == CLASS_NAMES
    assert classes["support"].tolist() == np.bincount(targets, minlength=3).tolist()
    correct = predictions["mc"].correct.numpy()
    for k in range(3):
        assert classes["accuracy"].iloc[k] == pytest.approx(
            correct[targets == k].mean()
        )

    run = report.tables["run"]["value"]
    assert run["model"] == "<b>MLP</b>" and run["time_taken"] == "1.5"
    assert run["n_passes"] == "8" and run["n_inputs"] == "48"
    assert run["version: torch"] == torch.__version__.split("+")[0]
    assert {"version: python", "version: numpy", "version: scikit-learn"} <= set(
        run.index
    )


def test_predictions_frame_names_the_classes(report, predictions):
    frame = report.predictions
    mc = predictions["mc"]
    assert len(frame) == len(mc)
    assert frame["target_name"].tolist() == [CLASS_NAMES[t] for t in mc.targets]
    assert frame["predicted_name"].tolist() == [CLASS_NAMES[k] for k in mc.predicted]
    assert {"confidence", "mutual_information", "variation_ratio"} <= set(frame)


def test_only_the_given_parts_are_reported(predictions):
    report = CalibrationReport(predictions["mc"], n_bins=5)
    assert list(report.metrics) == ["mc_dropout"]
    assert set(report.tables) == {"metrics", "classes", "run"}
    # Without class names the csv keeps the indices alone.
    assert "target_name" not in report.predictions


def regression(generator, std_scale: float) -> RegressionPrediction:
    mean = torch.randn(30, 1, generator=generator, dtype=torch.float64)
    variance = torch.full((30, 1), std_scale**2, dtype=torch.float64)
    targets = mean[:, 0] + torch.randn(30, generator=generator, dtype=torch.float64)
    return RegressionPrediction(
        mean, variance, torch.zeros_like(variance), n_passes=8, targets=targets
    )


def test_regression_metrics_and_an_undefined_baseline():
    generator = torch.Generator().manual_seed(0)
    mc = regression(generator, 1.0)
    flat = RegressionPrediction(
        mc.mean, torch.zeros_like(mc.mean), torch.zeros_like(mc.mean), n_passes=1
    )
    with pytest.warns(
        UndefinedMetricWarning, match="`deterministic` predicts a"
    ) as record:
        report = CalibrationReport(mc, deterministic=flat)
    assert record[0].filename == __file__  # blames the caller

    metrics = report.metrics["mc_dropout"]
    errors = mc.targets.numpy() - mc.mean[:, 0].numpy()
    assert metrics["rmse"] == pytest.approx(math.sqrt(np.mean(errors**2)))
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert metrics["coverage_95"] == pytest.approx(np.mean(np.abs(errors) <= 1.959964))
    assert metrics["interval_width_95"] == pytest.approx(2 * 1.959963985)
    gaussian = 0.5 * math.log(2 * math.pi) + errors**2 / 2
    assert metrics["nll"] == pytest.approx(gaussian.mean())
    assert math.isnan(report.metrics["deterministic"]["nll"])
    assert report.metrics["deterministic"]["rmse"] == metrics["rmse"]
    # The deterministic baseline borrowed the targets of `mc`.
    assert report.metrics["deterministic"]["coverage_95"] == pytest.approx(
        np.mean(errors == 0)
    )


def without_targets(mc):
    return type(mc)(**{**mc.__dict__, "targets": None})


def first_ten(mc):
    return type(mc)(
        **{
            k: v[:10] if k != "samples" and torch.is_tensor(v) else v
            for k, v in mc.__dict__.items()
        }
        | {"samples": None}
    )


def other_targets(mc):
    return type(mc)(**{**mc.__dict__, "targets": (mc.targets + 1) % 3})


@pytest.mark.parametrize(
    ("error", "message", "arguments"),
    [
        (ArgumentTypeError, "expected `mc` to be a", lambda mc: {"mc": mc.probs}),
        (
            ArgumentValueError,
            "`mc` to carry its targets",
            lambda mc: {"mc": without_targets(mc)},
        ),
        (
            ArgumentValueError,
            "predict the 48 inputs",
            lambda mc: {"deterministic": first_ten(mc)},
        ),
        (
            ArgumentValueError,
            "the targets of `mc`",
            lambda mc: {"deterministic": other_targets(mc)},
        ),
        (
            ArgumentTypeError,
            "`calibrated` to be a",
            lambda mc: {"calibrated": 1},
        ),
        (
            ArgumentValueError,
            "to name the 3 classes",
            lambda mc: {"class_names": ["a", "b"]},
        ),
        (
            ArgumentTypeError,
            "`class_names` to be a sequence",
            lambda mc: {"class_names": "abc"},
        ),
        (ArgumentTypeError, "`metadata` to be a mapping", lambda mc: {"metadata": [1]}),
        (ArgumentTypeError, "`shifted` to be a non-empty", lambda mc: {"shifted": {}}),
        (ArgumentValueError, "`n_bins`", lambda mc: {"n_bins": 0}),
    ],
)
def test_argument_errors(predictions, error, message, arguments):
    mc = predictions["mc"]
    with pytest.raises(error, match=message):
        CalibrationReport(**({"mc": mc} | arguments(mc)))


def test_classification_only_options_are_refused_for_regression(predictions):
    mc = regression(torch.Generator().manual_seed(0), 1.0)
    with pytest.raises(ArgumentValueError, match="no `ood` for a regression report"):
        CalibrationReport(mc, ood=predictions["ood"])
