"""The ``mcdropout`` command: end to end, exit codes, errors, outputs."""

import json
import logging
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mcdropout.cli import main
from mcdropout.config import load_config
from mcdropout.data import load_splits
from mcdropout.pipeline import CACHE_ENV, train_from_config

CONFIGS = Path(__file__).parents[2] / "configs"
FAST = [
    "--set", "model.train.epochs=3",
    "--set", "mc.n_passes=5",
    "--set", "model.args.hidden_sizes=[32]",
]  # fmt: skip
NO_FIGURES = ["--set", "report.formats=[json,csv]"]


@pytest.fixture(autouse=True)
def one_thread():
    # As the command does by default: small models run fastest on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _command() -> list[str]:
    script = Path(sys.executable).with_name("mcdropout")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mcdropout.cli"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mcdropout: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_default_report_end_to_end_in_a_subprocess(tmp_path, cache):
    out = tmp_path / "report"
    env = os.environ | {CACHE_ENV: str(cache)}
    done = subprocess.run(
        [*_command(), "report", "--out", str(out), *FAST],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    names = {"index.html", "report.md", "metrics.json", "predictions.csv"}
    assert names <= {path.name for path in out.iterdir()}
    assert (out / "figures" / "reliability.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {
        "deterministic",
        "mc_dropout",
        "mc_dropout_temperature_scaled",
        "shift",
    }
    assert list(metrics["shift"]) == [
        "clean",
        *(f"gaussian_noise {s}" for s in ("0.1", "0.25", "0.5")),
        *(f"rotation {s}" for s in (10, 20, 30)),
    ]

    # As many rows as test inputs, and the MC metrics recomputed from them.
    frame = pd.read_csv(out / "predictions.csv")
    assert len(frame) == 450
    probs = frame[[f"prob_{k}" for k in range(10)]].to_numpy()
    targets = frame["target"].to_numpy()
    mc = metrics["mc_dropout"]
    assert mc["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == targets))
    nll = -np.mean(np.log(probs[np.arange(len(targets)), targets]))
    assert mc["nll"] == pytest.approx(nll, rel=1e-6)

    lines = done.stdout.splitlines()
    assert lines[0].split() == ["accuracy", "nll", "ece"]
    assert lines[1].split()[0] == "deterministic"
    assert lines[2].startswith("MC dropout (T=5)")
    assert float(lines[2].split()[-3]) == pytest.approx(mc["accuracy"], abs=5e-5)
    assert lines[-1] == f"report: {out / 'index.html'}"
    # The second run reuses the cached model.
    assert len(list(cache.iterdir())) == 1


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("mcdropout ")

    with pytest.raises(SystemExit) as caught:
        main(["report", "--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert "--set KEY=VALUE" in text


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["report", "--bogus"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--set", "mc.n_passes=-3"],
            "mc.n_passes: expected a positive integer, got -3",
        ),
        (
            ["--set", "mc.n_pases=3"],
            "mc.n_pases: unknown key; did you mean 'n_passes'?",
        ),
        (
            ["--set", "mc.mode=7"],
            "mc.mode: expected one of 'modules', 'train_except_norm', got 7",
        ),
        (["--set", "nonsense"], "--set 'nonsense': expected KEY=VALUE"),
        (["--config", "missing.yaml"], "--config: file not found: "),
        (
            ["--set", "model.checkpoint=missing.pt"],
            "model.checkpoint: file not found: ",
        ),
        (["--config", CONFIGS / "csv_template.yaml"], "data.path: file not found: "),
    ],
)
def test_config_errors_exit_2_naming_the_key(capsys, argv, message):
    code, out, err = run(capsys, "report", *argv)
    assert code == 2
    assert out == ""
    assert _error_line(err).startswith(f"mcdropout: error: {message}")
    assert "Traceback" not in err


def test_missing_torchvision_dataset(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "report",
        "--config",
        CONFIGS / "mnist.yaml",
        "--set",
        f"data.root={tmp_path}",
    )
    assert code == 2
    line = _error_line(err)
    assert f"data.root: MNIST not found under {tmp_path}" in line
    assert "--set data.download=true" in line


def test_failure_while_running_exits_1(capsys, tmp_path):
    argv = [
        "report", "--out", tmp_path / "r", *FAST,
        "--set", "model.architecture=tests.cli._factories:broken_model",
        "--set", "model.args={}",
    ]  # fmt: skip
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert _error_line(err) == "mcdropout: error: RuntimeError: boom in forward"
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()

    code, _, err = run(capsys, *argv, "--debug")
    assert code == 1
    assert "Traceback (most recent call last)" in err


def test_overrides_change_the_run(capsys, tmp_path):
    out = tmp_path / "p.csv"
    code, stdout, _ = run(
        capsys, "predict", "--config", CONFIGS / "digits.yaml", "--out", out, *FAST,
        "--set", "data.split.test=0.5",
    )  # fmt: skip
    assert code == 0
    assert stdout.strip() == f"predictions: {out}"
    # ceil(0.5 * 1797) test inputs.
    assert len(pd.read_csv(out)) == 899


def test_predict_parquet(capsys, tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "p.parquet"
    code, _, _ = run(
        capsys, "predict", "--config", CONFIGS / "digits.yaml", "--out", out, *FAST
    )
    assert code == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 450
    assert np.allclose(frame[[f"prob_{k}" for k in range(10)]].sum(axis=1), 1.0)


def test_checkpoint_round_trip(capsys, tmp_path):
    weights = tmp_path / "model.pt"
    digits = CONFIGS / "digits.yaml"
    code, stdout, _ = run(capsys, "train", "--config", digits, "--out", weights, *FAST)
    assert code == 0
    assert stdout.startswith("trained 3 epochs")

    # The saved weights are those a training run in Python gets.
    config = load_config(
        digits, ["model.train.epochs=3", "model.args.hidden_sizes=[32]"]
    )
    model, _ = train_from_config(config, load_splits(config.data))
    saved = torch.load(weights, weights_only=True)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(saved[name], tensor)

    from_checkpoint, trained = tmp_path / "a.csv", tmp_path / "b.csv"
    code, _, _ = run(
        capsys, "predict", "--config", digits, "--out", from_checkpoint, *FAST,
        "--set", f"model.checkpoint={weights}",
    )  # fmt: skip
    assert code == 0
    code, _, _ = run(
        capsys, "predict", "--config", digits, "--out", trained, *FAST,
        "--set", "model.cache=false",
    )  # fmt: skip
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_csv(from_checkpoint), pd.read_csv(trained))

    code, stdout, _ = run(
        capsys, "report", "--out", tmp_path / "r", *FAST, *NO_FIGURES,
        "--set", f"model.checkpoint={weights}",
    )  # fmt: skip
    assert code == 0
    assert stdout.splitlines()[-1] == f"report: {tmp_path / 'r'}"


def test_pickled_checkpoint_needs_the_opt_in(capsys, tmp_path):
    config = load_config(
        overrides=["model.train.epochs=1", "model.args.hidden_sizes=[32]"]
    )
    model, _ = train_from_config(config, load_splits(config.data))
    pickled = tmp_path / "whole_model.pt"
    torch.save(model, pickled)
    argv = ["report", "--out", tmp_path / "r", *FAST, *NO_FIGURES,
            "--set", f"model.checkpoint={pickled}"]  # fmt: skip

    code, _, err = run(capsys, *argv)
    assert code == 2
    line = _error_line(err)
    assert line.startswith("mcdropout: error: model.allow_pickle: ")
    assert "set `model.allow_pickle: true`" in line
    assert not (tmp_path / "r").exists()

    code, _, err = run(capsys, *argv, "--set", "model.allow_pickle=true")
    assert code == 0
    assert "can run arbitrary code" in err


def test_torchscript_model(capsys, tmp_path):
    config = load_config(
        overrides=["model.train.epochs=1", "model.args.hidden_sizes=[32]"]
    )
    model, _ = train_from_config(config, load_splits(config.data))
    path = tmp_path / "model.ts"
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(model), path)
    argv = ["predict", "--out", tmp_path / "p.csv", *FAST,
            "--config", CONFIGS / "digits.yaml", "--set", "model.architecture=null",
            "--set", f"model.torchscript={path}"]  # fmt: skip

    for mode in ("modules", "train_except_norm"):
        code, _, err = run(capsys, *argv, "--set", f"mc.mode={mode}", "--overwrite")
        assert code == 0, err
        frame = pd.read_csv(tmp_path / "p.csv")
        assert len(frame) == 450
        assert (frame["mutual_information"] > 0).all()


def test_overwrite_semantics(capsys, tmp_path):
    out = tmp_path / "r"
    argv = ["report", "--out", out, *FAST, *NO_FIGURES]
    assert run(capsys, *argv)[0] == 0
    before = (out / "metrics.json").stat().st_mtime_ns
    (out / "note.txt").write_text("mine")

    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "already holds files; pass --overwrite" in _error_line(err)
    assert (out / "metrics.json").stat().st_mtime_ns == before
    assert (out / "note.txt").exists()

    code, _, _ = run(capsys, *argv, "--overwrite")
    assert code == 0
    assert not (out / "note.txt").exists()
    assert (out / "metrics.json").exists()

    weights = tmp_path / "w.pt"
    weights.write_text("keep")
    train = ["train", "--config", CONFIGS / "digits.yaml", "--out", weights, *FAST]
    code, _, err = run(capsys, *train)
    assert code == 2
    assert "already exists; pass --overwrite" in _error_line(err)
    assert weights.read_text() == "keep"
    assert run(capsys, *train, "--overwrite")[0] == 0
    assert isinstance(torch.load(weights, weights_only=True), dict)


def test_default_out_dir_is_reports_slash_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run(capsys, "report", *FAST, *NO_FIGURES)
    assert code == 0
    assert (tmp_path / "reports" / "digits" / "metrics.json").exists()
    assert stdout.splitlines()[-1] == f"report: {tmp_path / 'reports' / 'digits'}"


def test_regression_report(capsys, tmp_path):
    code, stdout, err = run(
        capsys, "report", "--config", CONFIGS / "diabetes.yaml",
        "--out", tmp_path / "r", *NO_FIGURES,
        "--set", "model.train.epochs=5", "--set", "mc.n_passes=5",
    )  # fmt: skip
    assert code == 0, err
    assert stdout.splitlines()[0].split() == ["rmse", "nll", "calibration_error"]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert set(metrics["mc_dropout_variance_scaled"]) >= {
        "rmse",
        "nll",
        "coverage_95",
    }
    frame = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert len(frame) == 111
    assert list(frame.columns) == [
        "target",
        "mean",
        "std",
        "epistemic_variance",
        "aleatoric_variance",
    ]
    np.testing.assert_allclose(
        frame["std"] ** 2, frame["epistemic_variance"] + frame["aleatoric_variance"]
    )


def test_csv_template(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    code, _, err = run(
        capsys, "report", "--config", CONFIGS / "csv_template.yaml",
        "--out", tmp_path / "r", *FAST, *NO_FIGURES, "--set", f"data.path={path}",
    )  # fmt: skip
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert len(predictions) == 30
    assert set(predictions["target_name"]) == {"yes", "no"}


FAKE_MNIST = "{size: 120, image_size: [1, 28, 28], num_classes: 10}"


def test_mnist_config_with_fake_data(capsys, tmp_path):
    code, _, err = run(
        capsys, "report", "--config", CONFIGS / "mnist.yaml", "--out", tmp_path / "r",
        *NO_FIGURES, "--set", "model.train.epochs=1", "--set", "mc.n_passes=3",
        "--set", "data.name=FakeData", "--set", f"data.args={FAKE_MNIST}",
        "--set", "ood.dataset.name=FakeData",
        "--set", "ood.dataset.args={size: 30, image_size: [1, 28, 28]}",
        "--set", "ood.dataset.split.seed=7", "--set", "calibration.enabled=false",
        "--set", "ood.shifts=[{kind: rotation, severities: [30]}]",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert {"ood", "shift"} <= set(metrics)
    assert list(metrics["shift"]) == ["clean", "rotation 30"]
    assert len(pd.read_csv(tmp_path / "r" / "predictions.csv")) == 30


def test_cifar10_config_with_fake_data(capsys, tmp_path):
    code, stdout, err = run(
        capsys, "report", "--config", CONFIGS / "cifar10.yaml", "--out", tmp_path / "r",
        *NO_FIGURES, "--set", "model.train.epochs=1", "--set", "mc.n_passes=2",
        "--set", "device=cpu", "--set", "data.num_workers=0",
        "--set", "data.name=FakeData", "--set", "calibration.enabled=false",
        "--set", "data.args={size: 40, image_size: [3, 16, 16], num_classes: 4}",
        "--set", "ood.shifts=[{kind: gaussian_noise, severities: [0.5]}]",
    )  # fmt: skip
    assert code == 0, err
    assert math.isfinite(json.loads((tmp_path / "r" / "metrics.json").read_text())
                         ["mc_dropout"]["nll"])  # fmt: skip
    assert "MC dropout (T=2)" in stdout


def test_main_puts_logging_and_warnings_back(capsys):
    logger = logging.getLogger("mcdropout")
    logger.setLevel(logging.ERROR)
    showwarning = warnings.showwarning
    try:
        run(capsys, "predict", "--config", "/no/such.yaml", "--out", "x.csv")
        assert logger.level == logging.ERROR and logger.propagate
        assert warnings.showwarning is showwarning
    finally:
        logger.setLevel(logging.NOTSET)
