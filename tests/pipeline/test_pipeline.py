"""Runs from a config: model caching, calibration wiring, shifts, output files."""

import logging
import os
import sys

import pandas as pd
import pytest
import torch

from mcdropout.calibration import fit_temperature
from mcdropout.config import ConfigError, load_config
from mcdropout.data import load_splits, make_loader
from mcdropout.models import TargetScale
from mcdropout.pipeline import (
    CACHE_ENV,
    OutputExistsError,
    UsageError,
    cache_key,
    evaluate,
    make_mc,
    prepare_model,
    run_predict,
    run_report,
    run_train,
    train_from_config,
    write_atomic,
)

FAST = ["model.train.epochs=2", "mc.n_passes=4", "model.args.hidden_sizes=[32]"]


@pytest.fixture(autouse=True)
def one_thread():
    # Small models run fastest on one thread, above all on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def digits():
    config = load_config(overrides=FAST)
    return config, load_splits(config.data)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_trained_model_is_cached_and_reused(digits, cache):
    config, splits = digits
    first = prepare_model(config, splits)
    assert first.origin == "trained"
    assert len(first.training.train_loss) == 2
    assert [p.name for p in cache.iterdir()] == [f"digits-{cache_key(config)}.pt"]

    second = prepare_model(config, splits)
    assert second.origin == "cache"
    assert _same_weights(first.model, second.model)


def test_a_broken_cache_file_is_retrained(digits, cache, caplog):
    config, splits = digits
    cache.mkdir()
    (cache / f"digits-{cache_key(config)}.pt").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="mcdropout"):
        prepared = prepare_model(config, splits)
    assert prepared.origin == "trained"
    assert "ignoring the cached model" in caplog.text


@pytest.mark.parametrize(
    "override",
    ["model.args.dropout=0.2", "model.train.seed=1", "data.split.seed=3"],
)
def test_cache_key_follows_model_and_data(override):
    assert cache_key(load_config()) != cache_key(load_config(overrides=[override]))


def test_cache_key_ignores_the_run_settings():
    base = cache_key(load_config())
    assert (
        cache_key(load_config(overrides=["mc.n_passes=3", "report.n_bins=5"])) == base
    )


def test_training_is_seeded_and_leaves_the_global_rng_alone(digits):
    config, splits = digits
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first, _ = train_from_config(config, splits)
    assert torch.equal(torch.get_rng_state(), state)
    second, _ = train_from_config(config, splits)
    assert _same_weights(first, second)


def test_regression_model_carries_the_target_scale():
    config = load_config("configs/diabetes.yaml", ["model.train.epochs=1"])
    splits = load_splits(config.data)
    model, _ = train_from_config(config, splits)
    targets = torch.cat([y for _, y in splits.train]).double()
    scale = next(m for m in model.modules() if isinstance(m, TargetScale))
    assert float(scale.shift) == pytest.approx(float(targets.mean()), rel=1e-5)
    assert float(scale.scale) == pytest.approx(float(targets.std()), rel=1e-5)


def test_evaluation_matches_the_calibration_api(digits):
    config, splits = digits
    model = prepare_model(config, splits).model
    result = evaluate(config, splits, model)
    assert list(result.shifted) == [
        "gaussian_noise 0.1",
        "gaussian_noise 0.25",
        "gaussian_noise 0.5",
        "rotation 10",
        "rotation 20",
        "rotation 30",
    ]
    mc = make_mc(config, model, "classification", progress=False)
    test = make_loader(splits.test, 256)
    fit = fit_temperature(mc, make_loader(splits.val, 256))
    assert result.calibration["temperature"] == fit.temperature
    torch.testing.assert_close(
        result.calibrated.probs, fit.apply(mc).predict(test).probs
    )
    torch.testing.assert_close(result.mc.probs, mc.predict(test).probs)
    assert result.deterministic.n_passes == 1
    assert all(len(p) == len(splits.test) for p in result.shifted.values())


def test_regression_calibration_scales_the_variance():
    config = load_config(
        "configs/diabetes.yaml", ["model.train.epochs=2", "mc.n_passes=4"]
    )
    splits = load_splits(config.data)
    result = evaluate(config, splits, prepare_model(config, splits).model)
    scale = result.calibration["variance_scale"]
    torch.testing.assert_close(result.calibrated.variance, result.mc.variance * scale)
    torch.testing.assert_close(result.calibrated.mean, result.mc.mean)


def test_rotation_of_plain_features_is_refused_before_training(monkeypatch, tmp_path):
    config = load_config(
        overrides=[
            *FAST,
            "data.name=iris",
            "calibration.enabled=false",
            "ood.shifts=[{kind: rotation, severities: [10]}]",
        ]
    )
    trained = []
    monkeypatch.setattr(
        "mcdropout.pipeline._run.prepare_model", lambda *a, **k: trained.append(1)
    )
    with pytest.raises(
        ConfigError, match=r"^ood\.shifts\[0\]\.kind: rotation needs image"
    ):
        run_report(config, tmp_path / "r")
    assert trained == []  # refused before any training


def test_predict_writes_one_row_per_test_input(tmp_path):
    config = load_config(overrides=FAST)
    path = run_predict(config, tmp_path / "p.csv")
    frame = pd.read_csv(path)
    assert len(frame) == 450
    assert {"target", "predicted", "confidence", "mutual_information"} <= set(frame)
    assert [name for name in frame if name.startswith("prob_")] == [
        f"prob_{k}" for k in range(10)
    ]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("p.txt", UsageError, r"--out: expected a file ending in \.csv or \.parquet"),
        ("exists.csv", OutputExistsError, r"already exists; pass --overwrite"),
    ],
)
def test_predict_output_checks(tmp_path, name, error, message):
    (tmp_path / "exists.csv").write_text("keep")
    with pytest.raises(error, match=message):
        run_predict(load_config(overrides=FAST), tmp_path / name)
    assert (tmp_path / "exists.csv").read_text() == "keep"


def test_train_refuses_a_config_with_a_checkpoint(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    config = load_config(overrides=[f"model.checkpoint={weights}"])
    with pytest.raises(ConfigError, match=r"^model\.checkpoint: `train` trains"):
        run_train(config, tmp_path / "out.pt")


def test_write_atomic_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    path = tmp_path / "out.csv"

    def write(partial):
        partial.write_text("new")
        path.write_text("someone else's")  # appears between check and publish

    with pytest.raises(OutputExistsError, match="appeared while this ran"):
        write_atomic(path, write, overwrite=False)
    assert path.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]

    write_atomic(path, lambda partial: partial.write_text("new"), overwrite=True)
    assert path.read_text() == "new"


def test_cache_key_follows_the_image_folder_and_the_factory_code(tmp_path):
    (tmp_path / "images" / "ants").mkdir(parents=True)
    root = tmp_path / "images"
    data = f"data={{source: image_folder, root: '{root}', image_size: [4, 4]}}"
    config = load_config(overrides=[data])
    before = cache_key(config)
    (tmp_path / "images" / "ants" / "new.png").write_bytes(b"")
    # A new file in a class folder changes that folder's modification time.
    os.utime(tmp_path / "images" / "ants", ns=(1, 1))
    assert cache_key(config) != before

    module = tmp_path / "my_factories.py"
    module.write_text("def net():\n    return None\n")
    sys.path.insert(0, str(tmp_path))
    try:
        spec = "model.architecture=my_factories:net"
        config = load_config(overrides=[spec])
        before = cache_key(config)
        module.write_text("def net():\n    return 1\n")
        os.utime(module, ns=(2, 2))
        assert cache_key(config) != before
    finally:
        sys.path.remove(str(tmp_path))
