import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_squared_error

from benchmarks import uci
from benchmarks._batched_mlp import AdamSettings, BatchedMLP, weight_decay
from benchmarks._uci_data import Standardizer, read_uci_folder
from mcdropout import ArgumentValueError, MCDropout

N_ROWS, N_FEATURES, N_HIDDEN = 48, 3, 8


def write_folder(path: Path, table: np.ndarray, **overrides: str) -> Path:
    """A dataset folder in the split format: target in column 1, two splits."""
    path.mkdir()
    # Mixed tabs and spaces, as the shipped files have.
    lines = ["\t".join(f"{value:.6f}" for value in row) + " " for row in table]
    files = {
        "data.txt": "\n".join(lines) + "\n",
        "index_features.txt": "0\n2\n3\n",
        "index_target.txt": "1\n",
        "n_splits.txt": "2\n",
        "n_hidden.txt": f"{N_HIDDEN}\n",
        "n_epochs.txt": "5\n",
        "dropout_rates.txt": "0.01\n0.1\n",
        "tau_values.txt": "2.0 10.0\n",
    }
    order = np.random.default_rng(3).permutation(len(table))
    for split in range(2):
        rolled = np.roll(order, 10 * split)
        files[f"index_train_{split}.txt"] = "\n".join(map(str, rolled[:40]))
        files[f"index_test_{split}.txt"] = "\n".join(map(str, rolled[40:]))
    files.update(overrides)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


@pytest.fixture
def table() -> np.ndarray:
    # y = x . w + small noise, in column 1 between the features.
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(N_ROWS, N_FEATURES)) * [1.0, 5.0, 0.1] + [0, 10, 3]
    targets = inputs @ np.array([1.0, 0.2, -4.0]) + 0.1 * rng.normal(size=N_ROWS)
    return np.round(np.column_stack([inputs[:, 0], targets, inputs[:, 1:]]), 6)


@pytest.fixture
def folder(tmp_path: Path, table: np.ndarray) -> Path:
    return write_folder(tmp_path / "toy", table)


# --- the format reader -------------------------------------------------------


def test_reader_selects_columns_rows_and_settings(folder, table):
    dataset = read_uci_folder(folder)

    assert dataset.name == "toy"
    assert (dataset.n_splits, dataset.n_hidden, dataset.n_epochs) == (2, N_HIDDEN, 5)
    assert dataset.dropout_rates == (0.01, 0.1)
    assert dataset.tau_values == (2.0, 10.0)
    np.testing.assert_array_equal(dataset.inputs, table[:, [0, 2, 3]])
    np.testing.assert_array_equal(dataset.targets, table[:, 1])

    split = dataset.split(1)
    train = np.loadtxt(folder / "index_train_1.txt", dtype=int)
    test = np.loadtxt(folder / "index_test_1.txt", dtype=int)
    np.testing.assert_array_equal(split.x_train, table[train][:, [0, 2, 3]])
    np.testing.assert_array_equal(split.y_train, table[train, 1])
    np.testing.assert_array_equal(split.x_test, table[test][:, [0, 2, 3]])
    np.testing.assert_array_equal(split.y_test, table[test, 1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_hidden.txt": "0\n"}, r"n_hidden\.txt to hold one positive integer"),
        ({"index_target.txt": "1\n2\n"}, r"one column index in .*index_target"),
        ({"index_features.txt": "0\n7\n"}, r"index_features\.txt to hold .* \[0, 4\)"),
        (
            {"dropout_rates.txt": "0.1\n1.0\n"},
            r"dropout_rates\.txt .* in \(0\.0, 1\.0\)",
        ),
        ({"tau_values.txt": "abc\n"}, r"tau_values\.txt to hold whitespace-separated"),
        ({"n_epochs.txt": "2.5\n"}, r"expected integers in .*n_epochs\.txt"),
    ],
)
def test_reader_rejects_malformed_folders(tmp_path, table, overrides, message):
    path = write_folder(tmp_path / "bad", table, **overrides)
    with pytest.raises(ArgumentValueError, match=message):
        read_uci_folder(path)


def test_reader_names_a_missing_file(folder):
    (folder / "n_epochs.txt").unlink()
    with pytest.raises(ArgumentValueError, match=r"to hold n_epochs\.txt, got no"):
        read_uci_folder(folder)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("0\n1\n48\n", r"index_train_0\.txt to hold at least one index in \[0, 48\)"),
        ("0\n1\n", r"disjoint train and test rows, got 1 shared"),
    ],
)
def test_split_rejects_bad_indices(folder, train, message):
    (folder / "index_train_0.txt").write_text(train)
    (folder / "index_test_0.txt").write_text("1\n2\n")
    dataset = read_uci_folder(folder)
    with pytest.raises(ArgumentValueError, match=message):
        dataset.split(0)
    with pytest.raises(ArgumentValueError, match=r"split index in \[0, 2\), got 2"):
        dataset.split(2)


def test_standardizer_uses_population_std_and_leaves_constants_at_zero():
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = Standardizer.fit(values)
    np.testing.assert_array_equal(scaler.mean, [2.0, 5.0])
    np.testing.assert_array_equal(scaler.std, [1.0, 1.0])
    np.testing.assert_array_equal(scaler.transform(values), [[-1.0, 0.0], [1.0, 0.0]])


# --- the batched networks ----------------------------------------------------


def test_weight_decay_is_the_published_formula():
    # l^2 (1 - p) / (2 N tau) = 1e-4 * 0.9 / (2 * 50 * 0.5)
    assert weight_decay(0.1, tau=0.5, n_rows=50) == pytest.approx(1.8e-6, rel=1e-12)
    assert weight_decay(0.1, 0.5, 50, length_scale=1.0) == pytest.approx(0.018)


def keep(draws: np.ndarray, p: float) -> torch.Tensor:
    """Inverted-dropout mask in float64: kept where the draw is >= p."""
    return torch.from_numpy((draws >= p) / (1 - p))


def reference_training(
    x: np.ndarray,
    y: np.ndarray,
    p: float,
    decay: float,
    seed: int,
    n_epochs: int,
    batch_size: int,
) -> list[torch.Tensor]:
    """One network alone: plain matrices, autograd gradients, Keras' Adam
    written out, and the random draws in the documented order."""
    rng = np.random.Generator(np.random.SFC64(seed))
    n_rows, n_features = x.shape
    weights = []
    for shape in ((n_features, N_HIDDEN), (N_HIDDEN, 1)):
        limit = math.sqrt(6.0 / sum(shape))
        weights.append(2 * limit * (rng.random(shape) - 0.5))
    params = [
        torch.tensor(weights[0], requires_grad=True),
        torch.zeros(N_HIDDEN, dtype=torch.float64, requires_grad=True),
        torch.tensor(weights[1], requires_grad=True),
        torch.zeros(1, dtype=torch.float64, requires_grad=True),
    ]
    adam = AdamSettings()
    moments = [[torch.zeros_like(q), torch.zeros_like(q)] for q in params]
    x, y, t = torch.from_numpy(x), torch.from_numpy(y), 0
    for _ in range(n_epochs):
        order = rng.permutation(n_rows)
        keep_in = keep(rng.random((n_rows, n_features)), p)
        keep_hidden = keep(rng.random((n_rows, N_HIDDEN)), p)
        for start in range(0, n_rows, batch_size):
            rows = slice(start, start + batch_size)
            w1, b1, w2, b2 = params
            hidden = torch.relu((x[order[rows]] * keep_in[rows]) @ w1 + b1)
            outputs = (hidden * keep_hidden[rows]) @ w2 + b2
            loss = torch.mean((outputs[:, 0] - y[order[rows]]) ** 2)
            loss = loss + decay * (w1.square().sum() + w2.square().sum())
            grads = torch.autograd.grad(loss, params)
            t += 1
            with torch.no_grad():
                for q, g, (m, v) in zip(params, grads, moments, strict=True):
                    m.copy_(adam.beta1 * m + (1 - adam.beta1) * g)
                    v.copy_(adam.beta2 * v + (1 - adam.beta2) * g * g)
                    step = adam.lr * math.sqrt(1 - adam.beta2**t) / (1 - adam.beta1**t)
                    q -= step * m / (v.sqrt() + adam.eps)
    return [q.detach() for q in params]


CONFIGS = [(0.05, 1e-3, 11), (0.2, 1e-2, 12), (0.0, 0.0, 13)]


@pytest.fixture
def regression_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(45, N_FEATURES))
    return x, np.sin(x[:, 0]) + x[:, 1] * x[:, 2]


def batched(configs: list[tuple[float, float, int]], **kwargs) -> BatchedMLP:
    rates, decays, seeds = zip(*configs, strict=True)
    return BatchedMLP(N_FEATURES, N_HIDDEN, rates, decays, seeds, **kwargs)


def test_batched_training_equals_each_network_trained_alone(regression_rows):
    x, y = map(torch.from_numpy, regression_rows)
    together = batched(CONFIGS, dtype=torch.float64)
    # 45 rows in batches of 16: 16, 16, 13, crossing an epoch chunk of 8.
    together.fit(x, y, n_epochs=10, batch_size=16)

    for config, spec in enumerate(CONFIGS):
        alone = batched([spec], dtype=torch.float64)
        alone.fit(x, y, n_epochs=10, batch_size=16)
        for name in ("w1", "b1", "w2", "b2"):
            torch.testing.assert_close(
                getattr(together, name)[config],
                getattr(alone, name)[0],
                rtol=1e-12,
                atol=1e-14,
            )


@pytest.mark.parametrize("config", range(len(CONFIGS)))
def test_batched_training_equals_an_autograd_reference(regression_rows, config):
    x, y = regression_rows
    together = batched(CONFIGS, dtype=torch.float64)
    together.fit(torch.from_numpy(x), torch.from_numpy(y), n_epochs=10, batch_size=16)

    p, decay, seed = CONFIGS[config]
    w1, b1, w2, b2 = reference_training(x, y, p, decay, seed, 10, 16)
    close = {"rtol": 1e-9, "atol": 1e-11}
    torch.testing.assert_close(together.w1[config], w1, **close)
    torch.testing.assert_close(together.b1[config, 0], b1, **close)
    torch.testing.assert_close(together.w2[config, 0], w2[:, 0], **close)
    torch.testing.assert_close(together.b2[config, 0], b2, **close)
    # The weights moved: the comparison is not between initial values.
    assert not torch.equal(together.b1[config], torch.zeros(1, N_HIDDEN))


def test_float32_batched_training_stays_close_to_training_alone(regression_rows):
    # float32, as the runner trains: the batched products may round
    # differently from a single network's, never more than that.
    x, y = map(torch.from_numpy, regression_rows)
    together = batched(CONFIGS)
    together.fit(x, y, n_epochs=3, batch_size=16)
    alone = batched(CONFIGS[1:2])
    alone.fit(x, y, n_epochs=3, batch_size=16)
    torch.testing.assert_close(together.w1[1], alone.w1[0], rtol=1e-5, atol=1e-6)


def test_sampled_outputs_follow_the_documented_masks(regression_rows):
    x = torch.from_numpy(regression_rows[0][:7])
    networks = batched(CONFIGS, dtype=torch.float64)
    outputs = networks.sample_outputs(x, n_passes=5)

    assert outputs.shape == (3, 5, 7)
    for config, (p, _, seed) in enumerate(CONFIGS):
        rng = np.random.Generator(np.random.SFC64(seed))
        rng.random((N_FEATURES, N_HIDDEN)), rng.random((N_HIDDEN, 1))  # weights
        keep_in = keep(rng.random((5, 7, N_FEATURES)), p)
        keep_hidden = keep(rng.random((5, 7, N_HIDDEN)), p)
        w1, b1 = networks.w1[config], networks.b1[config]
        hidden = torch.relu((x * keep_in) @ w1 + b1) * keep_hidden
        expected = hidden @ networks.w2[config, 0] + networks.b2[config, 0]
        torch.testing.assert_close(outputs[config], expected, rtol=1e-12, atol=1e-12)


def test_extracted_network_computes_the_stacked_weights(regression_rows):
    x = torch.from_numpy(regression_rows[0]).float()
    networks = batched(CONFIGS)
    networks.fit(x, torch.from_numpy(regression_rows[1]), n_epochs=2)
    network = networks.network(1).eval()

    assert network[0].p == network[3].p == 0.2
    expected = torch.relu(x @ networks.w1[1] + networks.b1[1]) @ networks.w2[1].T
    with torch.no_grad():
        torch.testing.assert_close(network(x), expected + networks.b2[1, 0])


def test_training_fits_a_learnable_function(regression_rows):
    x = torch.from_numpy(regression_rows[0])
    y = x @ torch.tensor([1.0, -0.5, 0.3], dtype=torch.float64)
    networks = batched([(0.01, 1e-6, 0)])
    networks.fit(x, y, n_epochs=300, batch_size=16)
    mean = networks.sample_outputs(x, n_passes=50)[0].mean(dim=0).double()
    # A constant predictor's RMSE is the std of y; this one is three times
    # better (plain torch training from the same start gets the same).
    assert mean_squared_error(y, mean) ** 0.5 < 0.4 * y.std().item()


def test_batched_mlp_rejects_mismatched_grids():
    with pytest.raises(ArgumentValueError, match=r"equal, non-zero length, got 2, 1"):
        BatchedMLP(3, 4, [0.1, 0.2], [1e-3], [0, 1])


# --- the runner --------------------------------------------------------------


TINY = uci.Settings(epochs_multiplier=4, n_passes=200, validation_passes=30, seed=7)


def test_split_scores_equal_a_direct_computation(folder):
    dataset = read_uci_folder(folder)
    result = uci.run_split(dataset, 1, TINY)
    pair = (result.dropout_rate, result.tau)
    assert pair in [(p, t) for p in (0.01, 0.1) for t in (2.0, 10.0)]
    assert len(result.validation_log_likelihood) == 4
    assert (
        max(result.validation_log_likelihood)
        == result.validation_log_likelihood[
            [(p, t) for p in (0.01, 0.1) for t in (2.0, 10.0)].index(pair)
        ]
    )

    # The same seeded model and passes, scored by hand in float64.
    split = dataset.split(1)
    model = uci.final_model(dataset, split, pair, 1, TINY)
    mc = MCDropout(
        model,
        n_passes=200,
        task="regression",
        keep_samples=True,
        seed=uci._seed(7, 1, 2),
        max_batch_size=uci.MAX_BATCH_SIZE,
    )
    samples = mc.predict(torch.from_numpy(split.x_test).float()).samples.double()
    samples = samples.numpy()
    tau, y = result.tau, split.y_test
    density = np.sqrt(tau / (2 * np.pi)) * np.exp(-0.5 * tau * (y - samples) ** 2)
    assert result.log_likelihood == pytest.approx(
        np.mean(np.log(density.mean(axis=0))), rel=1e-9
    )
    assert result.rmse == pytest.approx(
        math.sqrt(mean_squared_error(y, samples.mean(axis=0))), rel=1e-6
    )


def test_final_model_predicts_in_original_units(folder):
    dataset = read_uci_folder(folder)
    split = dataset.split(0)
    model = uci.final_model(dataset, split, (0.01, 10.0), 0, TINY).eval()
    x = split.x_test
    with torch.no_grad():
        predictions = model(torch.from_numpy(x).float()).double().numpy()

    # The network sees training-standardised inputs and its output is
    # mapped back with the training targets' mean and std (ddof 0).
    standardised = (x - split.x_train.mean(axis=0)) / split.x_train.std(axis=0)
    with torch.no_grad():
        raw = model[1](torch.from_numpy(standardised).float())[:, 0].double().numpy()
    expected = raw * split.y_train.std() + split.y_train.mean()
    assert predictions.shape == (8,)
    np.testing.assert_allclose(predictions, expected, rtol=1e-5)


def test_summary_mean_and_standard_error_by_hand():
    results = [
        uci.SplitResult(i, 0.1, 1.0, rmse, ll, 2.0)
        for i, (rmse, ll) in enumerate([(1.0, -1.0), (2.0, -2.0), (6.0, -3.0)])
    ]
    summary = uci.summarize("x", results, TINY)
    # std(ddof=1) of (1, 2, 6) is sqrt(7); of (-1, -2, -3) is 1.
    assert summary["rmse"] == {"mean": 3.0, "se": pytest.approx(math.sqrt(7 / 3))}
    assert summary["log_likelihood"] == {"mean": -2.0, "se": pytest.approx(3**-0.5)}
    assert uci.summarize("x", results[:1], TINY)["rmse"] == {"mean": 1.0, "se": None}


def test_markdown_row_sets_ours_beside_the_published_numbers():
    summary = {
        "dataset": "yacht",
        "n_splits": 20,
        "rmse": {"mean": 0.7012, "se": 0.051},
        "log_likelihood": {"mean": -1.2, "se": None},
    }
    row = uci.markdown_row(summary).splitlines()[2]
    assert row == (
        "| yacht | 20 | 0.70 ± 0.05 | 1.11 ± 0.09 | 0.67 ± 0.05 "
        "| -1.20 | -1.55 ± 0.03 | -1.25 ± 0.02 |"
    )
    summary["dataset"] = "unknown"
    assert uci.markdown_row(summary).splitlines()[2].count("| - ") == 4


def test_runner_end_to_end_on_one_split(tmp_path, table, capsys):
    data = write_folder(tmp_path / "yacht", table)
    out = tmp_path / "results"
    argv = [
        f"--data={data}",
        f"--out={out}",
        "--splits=1",
        "--epochs-multiplier=2",
        "--n-passes=100",
        "--validation-passes=20",
        "--seed=3",
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        summary = uci.main(argv)
        # The run used one thread and gave the caller's setting back.
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)

    frame = pd.read_csv(out / "splits.csv")
    assert list(frame.columns) == [
        "split",
        "dropout_rate",
        "tau",
        "rmse",
        "log_likelihood",
        "seconds",
        "validation_log_likelihood",
    ]
    assert frame.shape[0] == 1
    written = json.loads((out / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["dataset"] == "yacht"
    assert written["n_splits"] == 1
    assert written["rmse"] == {"mean": pytest.approx(frame["rmse"][0]), "se": None}
    assert written["settings"]["n_passes"] == 100
    printed = capsys.readouterr().out
    assert "| yacht | 1 |" in printed
    assert "0.67 ± 0.05" in printed

    # Same seed, same numbers; results are never replaced silently.
    with pytest.raises(SystemExit, match=r"^2$"):
        uci.main(argv)
    assert "pass --overwrite to replace them" in capsys.readouterr().err
    again = uci.main([*argv, "--overwrite"])
    assert again["rmse"] == summary["rmse"]


def test_runner_without_grid_trains_the_given_pair(tmp_path, folder):
    out = tmp_path / "fixed"
    uci.main(
        [
            f"--data={folder}",
            f"--out={out}",
            "--splits=2",
            "--epochs-multiplier=1",
            "--n-passes=20",
            "--no-grid",
            "--tau=3.5",
        ]
    )
    frame = pd.read_csv(out / "splits.csv")
    assert frame["dropout_rate"].tolist() == [0.1, 0.1]  # the middle of (0.01, 0.1)
    assert frame["tau"].tolist() == [3.5, 3.5]
    assert frame["validation_log_likelihood"].isna().all()
    assert json.loads((out / "summary.json").read_text())["n_splits"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--splits=3"], r"--splits in \[1, 2\], got 3"),
        (["--epochs-multiplier=0.1"], r"at least one epoch, got 0.1 \* 5 = 0"),
        (["--tau=2"], r"--dropout-rate and --tau only with --no-grid"),
        (["--no-grid", "--dropout-rate=1.5"], r"`--dropout-rate` to be a number in"),
        (["--n-passes=0"], r"--n-passes >= 1, got 0"),
    ],
)
def test_runner_rejects_bad_arguments(tmp_path, folder, capsys, extra, message):
    # argparse reports the error on stderr and exits with status 2.
    with pytest.raises(SystemExit, match=r"^2$"):
        uci.main([f"--data={folder}", f"--out={tmp_path / 'out'}", *extra])
    err = capsys.readouterr().err
    assert re.search(message, err), err
