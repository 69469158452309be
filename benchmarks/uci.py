"""Reproduce the MC dropout UCI regression table with mcdropout's public API.

Gal & Ghahramani's protocol (ICML 2016, corrected 2018), per split of a
dataset folder (see ``benchmarks/_uci_data.py`` for the format):

1. standardise inputs and target with the statistics of the rows trained on;
2. grid search: train one network per (dropout rate p, precision tau) pair
   on the first 80% of the training rows, all pairs at once as one batched
   model, and keep the pair of best log-likelihood on the last 20%;
3. retrain that pair on the whole training split;
4. predict the test rows with ``mcdropout.MCDropout(..., task="regression",
   noise_precision=tau)`` and score them with ``mcdropout.metrics.rmse`` and
   ``mcdropout.metrics.mc_log_likelihood``, in the target's original units.

Each network is ``Dropout(p), Linear(n_hidden), ReLU, Dropout(p), Linear(1)``
with weight decay ``l^2 (1 - p) / (2 N tau)`` (``l = 1e-2``, ``N`` rows
trained on), trained with Adam on batches of 128 for ``n_epochs.txt`` times
``--epochs-multiplier`` epochs (100 in the 2018 protocol); see
``benchmarks/_batched_mlp.py`` for the exact loss and optimiser.

Run ``python benchmarks/uci.py --data ../shared/data/uci/yacht --out DIR``;
it writes ``DIR/splits.csv`` (one row per split, rewritten after each) and
``DIR/summary.json``, and prints a Markdown row beside the published numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

if __package__ in (None, ""):
    # Run as `python benchmarks/uci.py`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._batched_mlp import BatchedMLP, weight_decay
from benchmarks._uci_data import (
    Destandardize,
    Split,
    Standardize,
    Standardizer,
    UCIDataset,
    read_uci_folder,
)
from mcdropout import ArgumentValueError, MCDropout, MCDropoutError
from mcdropout._validation import (
    check_positive_float,
    check_probability,
)
from mcdropout.metrics import mc_log_likelihood, rmse
from mcdropout.pipeline import write_atomic

__all__ = [
    "PUBLISHED",
    "Settings",
    "SplitResult",
    "final_model",
    "main",
    "markdown_row",
    "run_dataset",
    "run_split",
    "score_test",
    "search_grid",
    "summarize",
    "train_networks",
]

logger = logging.getLogger(__name__)

# Mean and standard error of MC dropout's RMSE and test log-likelihood over
# 20 splits: Gal & Ghahramani (2016), and the 2018 grid-search protocol.
PUBLISHED = {
    "bostonHousing": {
        "2016": {"rmse": (2.97, 0.19), "log_likelihood": (-2.46, 0.06)},
        "2018": {"rmse": (2.90, 0.18), "log_likelihood": (-2.40, 0.04)},
    },
    "concrete": {
        "2016": {"rmse": (5.23, 0.12), "log_likelihood": (-3.04, 0.02)},
        "2018": {"rmse": (4.83, 0.16), "log_likelihood": (-2.94, 0.03)},
    },
    "energy": {
        "2016": {"rmse": (1.66, 0.04), "log_likelihood": (-1.99, 0.02)},
        "2018": {"rmse": (0.54, 0.01), "log_likelihood": (-1.21, 0.01)},
    },
    "yacht": {
        "2016": {"rmse": (1.11, 0.09), "log_likelihood": (-1.55, 0.03)},
        "2018": {"rmse": (0.67, 0.05), "log_likelihood": (-1.25, 0.02)},
    },
}

# Rows per forward of MCDropout: all 10,000 passes of a UCI test split in
# a few large forwards.
MAX_BATCH_SIZE = 1 << 17


@dataclass(frozen=True)
class Settings:
    """How a dataset is run.

    Attributes
    ----------
    epochs_multiplier : float, default 100
        Epochs are ``int(n_epochs.txt * epochs_multiplier)``; 100 is the 2018
        protocol, 1 the 2016 paper's 40 epochs.
    n_passes : int, default 10_000
        Monte Carlo passes T on the test split.
    validation_passes : int, default 1_000
        Passes per configuration on the validation rows of the grid search
        (the original code used 10,000; 1,000 moves the validation
        log-likelihood by far less than its differences across the grid).
    grid : bool, default True
        Search the grid; False trains ``dropout_rate`` and ``tau`` alone.
    dropout_rate, tau : float or None, default None
        The pair used without the grid; None means the middle value of the
        folder's grid file.
    seed : int, default 0
        Every generator of a run derives from it, the split index and its
        role (grid, retraining, test passes).
    batch_size : int, default 128
    length_scale : float, default 1e-2
        Prior length-scale ``l`` of the weight decay.
    validation_fraction : float, default 0.2
        Share of the training split, taken from its end, that validates
        the grid.
    """

    epochs_multiplier: float = 100.0
    n_passes: int = 10_000
    validation_passes: int = 1_000
    grid: bool = True
    dropout_rate: float | None = None
    tau: float | None = None
    seed: int = 0
    batch_size: int = 128
    length_scale: float = 1e-2
    validation_fraction: float = 0.2

    def n_epochs(self, dataset: UCIDataset) -> int:
        """Epochs per training run on ``dataset``."""
        n_epochs = int(dataset.n_epochs * self.epochs_multiplier)
        if n_epochs < 1:
            raise ArgumentValueError(
                f"expected `epochs_multiplier` to give at least one epoch, got "
                f"{self.epochs_multiplier} * {dataset.n_epochs} = {n_epochs}"
            )
        return n_epochs


@dataclass(frozen=True)
class SplitResult:
    """What one split gives: the chosen pair and its test scores.

    ``validation_log_likelihood`` holds the log-likelihood of every grid
    pair on the validation rows, in grid order (empty without the grid);
    ``seconds`` is the wall time of the whole split.
    """

    split: int
    dropout_rate: float
    tau: float
    rmse: float
    log_likelihood: float
    seconds: float
    validation_log_likelihood: tuple[float, ...] = field(default=())

    def row(self) -> dict[str, object]:
        """The split as a flat ``splits.csv`` row."""
        row = asdict(self)
        chosen = max(self.validation_log_likelihood, default=math.nan)
        row["validation_log_likelihood"] = chosen
        return row


def _seed(*key: int) -> int:
    """A 32-bit seed drawn from ``key`` (independent streams per key)."""
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _grid_pairs(dataset: UCIDataset) -> list[tuple[float, float]]:
    return [(p, tau) for p in dataset.dropout_rates for tau in dataset.tau_values]


def train_networks(
    inputs: np.ndarray,
    targets: np.ndarray,
    pairs: Sequence[tuple[float, float]],
    seeds: Sequence[int],
    n_hidden: int,
    n_epochs: int,
    settings: Settings,
) -> tuple[BatchedMLP, Standardizer, Standardizer]:
    """Train one network per (p, tau) pair on the same rows, all at once.

    Parameters
    ----------
    inputs : np.ndarray
        ``(n_rows, n_features)`` in original units.
    targets : np.ndarray
        ``(n_rows,)`` in original units.
    pairs : sequence of (float, float)
        Dropout rate and precision tau (original units) of each network.
    seeds : sequence of int
        One generator seed per network.
    n_hidden, n_epochs : int
    settings : Settings

    Returns
    -------
    networks : BatchedMLP
        Trained on standardised inputs and targets.
    input_scaler, target_scaler : Standardizer
        The statistics of ``inputs`` and ``targets``.
    """
    input_scaler, target_scaler = Standardizer.fit(inputs), Standardizer.fit(targets)
    decays = [
        weight_decay(p, tau, len(inputs), settings.length_scale) for p, tau in pairs
    ]
    networks = BatchedMLP(
        inputs.shape[1], n_hidden, [p for p, _ in pairs], decays, seeds
    )
    networks.fit(
        torch.from_numpy(input_scaler.transform(inputs)),
        torch.from_numpy(target_scaler.transform(targets)),
        n_epochs,
        settings.batch_size,
    )
    return networks, input_scaler, target_scaler


def search_grid(
    dataset: UCIDataset, split: Split, index: int, settings: Settings
) -> tuple[int, list[float]]:
    """Index of the grid pair of best validation log-likelihood, and every
    pair's validation log-likelihood (ties go to the first pair)."""
    pairs = _grid_pairs(dataset)
    n_fit = int((1.0 - settings.validation_fraction) * len(split.x_train))
    seeds = [_seed(settings.seed, index, 0, config) for config in range(len(pairs))]
    networks, input_scaler, target_scaler = train_networks(
        split.x_train[:n_fit],
        split.y_train[:n_fit],
        pairs,
        seeds,
        dataset.n_hidden,
        settings.n_epochs(dataset),
        settings,
    )

    inputs = torch.from_numpy(input_scaler.transform(split.x_train[n_fit:]))
    outputs = networks.sample_outputs(inputs, settings.validation_passes).double()
    samples = outputs * float(target_scaler.std) + float(target_scaler.mean)
    scores = [
        mc_log_likelihood(samples[config], split.y_train[n_fit:], tau)
        for config, (_, tau) in enumerate(pairs)
    ]
    return int(np.argmax(scores)), scores


def final_model(
    dataset: UCIDataset,
    split: Split,
    pair: tuple[float, float],
    index: int,
    settings: Settings,
) -> nn.Sequential:
    """The pair's network retrained on the whole training split, as a plain
    model from raw inputs ``(n_inputs, n_features)`` to predictions
    ``(n_inputs,)`` in original units."""
    networks, input_scaler, target_scaler = train_networks(
        split.x_train,
        split.y_train,
        [pair],
        [_seed(settings.seed, index, 1)],
        dataset.n_hidden,
        settings.n_epochs(dataset),
        settings,
    )
    return nn.Sequential(
        Standardize(input_scaler), networks.network(0), Destandardize(target_scaler)
    )


def run_split(dataset: UCIDataset, index: int, settings: Settings) -> SplitResult:
    """The whole protocol on split ``index``: search, retrain, test.

    Examples
    --------
    >>> dataset = read_uci_folder("../shared/data/uci/yacht")  # doctest: +SKIP
    >>> run_split(dataset, 0, Settings(epochs_multiplier=1))  # doctest: +SKIP
    SplitResult(split=0, dropout_rate=0.005, tau=0.25, rmse=..., ...)
    """
    start = time.perf_counter()
    split = dataset.split(index)
    scores: list[float] = []
    if settings.grid:
        best, scores = search_grid(dataset, split, index, settings)
        pair = _grid_pairs(dataset)[best]
    else:
        pair = _fixed_pair(dataset, settings)
    model = final_model(dataset, split, pair, index, settings)
    seed = _seed(settings.seed, index, 2)
    test_rmse, test_ll = score_test(model, split, pair[1], settings.n_passes, seed)
    return SplitResult(
        split=index,
        dropout_rate=pair[0],
        tau=pair[1],
        rmse=test_rmse,
        log_likelihood=test_ll,
        seconds=time.perf_counter() - start,
        validation_log_likelihood=tuple(scores),
    )


def score_test(
    model: nn.Module, split: Split, tau: float, n_passes: int, seed: int
) -> tuple[float, float]:
    """RMSE and MC log-likelihood of the test rows, in original units.

    The passes come from the public API, as a user gets them:
    ``MCDropout(model, n_passes, task="regression", noise_precision=tau)``.
    """
    mc = MCDropout(
        model,
        n_passes=n_passes,
        task="regression",
        noise_precision=tau,
        keep_samples=True,
        seed=seed,
        max_batch_size=MAX_BATCH_SIZE,
    )
    targets = torch.from_numpy(split.y_test)
    prediction = mc.predict(torch.from_numpy(split.x_test).float(), targets=targets)
    return (
        rmse(prediction.mean, targets),
        mc_log_likelihood(prediction.samples, targets, tau),
    )


def _fixed_pair(dataset: UCIDataset, settings: Settings) -> tuple[float, float]:
    p = settings.dropout_rate
    tau = settings.tau
    if p is None:
        p = dataset.dropout_rates[len(dataset.dropout_rates) // 2]
    if tau is None:
        tau = dataset.tau_values[len(dataset.tau_values) // 2]
    return p, tau


def _mean_and_se(values: Sequence[float]) -> dict[str, float | None]:
    # Standard error with the sample standard deviation (ddof 1); undefined
    # for a single split.
    values = np.asarray(values, dtype=np.float64)
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
    return {"mean": float(values.mean()), "se": se}


def summarize(
    dataset_name: str, results: Sequence[SplitResult], settings: Settings
) -> dict[str, object]:
    """The ``summary.json`` content: mean and standard error over splits.

    The standard error is ``std(ddof=1) / sqrt(n_splits)``, None for one
    split.

    Examples
    --------
    >>> results = [SplitResult(0, 0.1, 1.0, 2.0, -2.0, 9.0),
    ...            SplitResult(1, 0.1, 1.0, 4.0, -3.0, 11.0)]
    >>> summarize("toy", results, Settings())["rmse"]
    {'mean': 3.0, 'se': 1.0}
    """
    return {
        "dataset": dataset_name,
        "n_splits": len(results),
        "rmse": _mean_and_se([result.rmse for result in results]),
        "log_likelihood": _mean_and_se([result.log_likelihood for result in results]),
        "seconds_per_split": _mean_and_se([result.seconds for result in results]),
        "settings": asdict(settings),
    }


def _cell(mean: float, se: float | None, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")


def markdown_row(summary: dict[str, object]) -> str:
    """A Markdown table (header and one row): ours beside the published
    2016 and 2018 numbers, ``-`` where the dataset has none.

    Examples
    --------
    >>> summary = {"dataset": "yacht", "n_splits": 20,
    ...            "rmse": {"mean": 0.7, "se": 0.05},
    ...            "log_likelihood": {"mean": -1.3, "se": 0.02}}
    >>> markdown_row(summary).splitlines()[2].split(" | ")[2:5]
    ['0.70 ± 0.05', '1.11 ± 0.09', '0.67 ± 0.05']
    """
    name = summary["dataset"]
    published = PUBLISHED.get(name, {})
    cells = [name, str(summary["n_splits"])]
    for metric in ("rmse", "log_likelihood"):
        cells.append(_cell(summary[metric]["mean"], summary[metric]["se"]))
        for year in ("2016", "2018"):
            numbers = published.get(year, {}).get(metric)
            cells.append("-" if numbers is None else _cell(*numbers))
    header = [
        "dataset",
        "splits",
        "RMSE ours",
        "RMSE 2016",
        "RMSE 2018",
        "LL ours",
        "LL 2016",
        "LL 2018",
    ]
    lines = [header, ["---"] * len(header), cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def run_dataset(
    dataset: UCIDataset, n_splits: int, settings: Settings, out: Path
) -> dict[str, object]:
    """Run the first ``n_splits`` splits, rewriting ``out/splits.csv`` after
    each, then write ``out/summary.json``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index in range(n_splits):
        results.append(run_split(dataset, index, settings))
        frame = pd.DataFrame([result.row() for result in results])
        _write_text(out / "splits.csv", frame.to_csv(index=False))
        logger.info(
            "%s split %d/%d: p=%g tau=%g rmse=%.3f ll=%.3f (%.1f s)",
            dataset.name,
            index + 1,
            n_splits,
            results[-1].dropout_rate,
            results[-1].tau,
            results[-1].rmse,
            results[-1].log_likelihood,
            results[-1].seconds,
        )
    summary = summarize(dataset.name, results, settings)
    _write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/uci.py",
        description="Reproduce the MC dropout UCI regression benchmark.",
    )
    add = parser.add_argument
    add("--data", type=Path, required=True, metavar="PATH", help="dataset folder")
    add("--out", type=Path, required=True, metavar="DIR", help="results folder")
    add("--splits", type=int, metavar="N", help="run the first N splits (all)")
    add(
        "--epochs-multiplier",
        type=float,
        default=100.0,
        metavar="M",
        help="train n_epochs.txt * M epochs (100: the 2018 protocol)",
    )
    add("--n-passes", type=int, default=10_000, metavar="T", help="test passes")
    add(
        "--validation-passes",
        type=int,
        default=1_000,
        metavar="T",
        help="passes per grid pair on the validation rows",
    )
    add("--no-grid", action="store_true", help="train one pair, no search")
    add("--dropout-rate", type=float, metavar="P", help="p with --no-grid")
    add("--tau", type=float, help="tau with --no-grid (original units)")
    add("--seed", type=int, default=0, metavar="S", help="base seed")
    add(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1; more were slower on a busy machine)",
    )
    add("--overwrite", action="store_true", help="replace results in --out")
    return parser


def _check_arguments(args: argparse.Namespace, dataset: UCIDataset) -> int:
    n_splits = dataset.n_splits if args.splits is None else args.splits
    if not 1 <= n_splits <= dataset.n_splits:
        raise ArgumentValueError(
            f"expected --splits in [1, {dataset.n_splits}], got {n_splits}"
        )
    for name in ("n_passes", "validation_passes", "threads"):
        if getattr(args, name) < 1:
            raise ArgumentValueError(
                f"expected --{name.replace('_', '-')} >= 1, got {getattr(args, name)}"
            )
    if not args.no_grid and (args.dropout_rate is not None or args.tau is not None):
        raise ArgumentValueError(
            "expected --dropout-rate and --tau only with --no-grid, got them "
            "with the grid search on"
        )
    if args.dropout_rate is not None:
        check_probability("--dropout-rate", args.dropout_rate)
    if args.tau is not None:
        check_positive_float("--tau", args.tau)
    existing = [
        name for name in ("splits.csv", "summary.json") if (args.out / name).exists()
    ]
    if existing and not args.overwrite:
        raise ArgumentValueError(
            f"expected --out without earlier results, got {', '.join(existing)} in "
            f"{args.out}; pass --overwrite to replace them"
        )
    return n_splits


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Command-line entry point; returns the summary it wrote."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings(
        epochs_multiplier=args.epochs_multiplier,
        n_passes=args.n_passes,
        validation_passes=args.validation_passes,
        grid=not args.no_grid,
        dropout_rate=args.dropout_rate,
        tau=args.tau,
        seed=args.seed,
    )
    try:
        dataset = read_uci_folder(args.data)
        n_splits = _check_arguments(args, dataset)
        settings.n_epochs(dataset)
    except MCDropoutError as error:
        parser.error(str(error))
    # Restored afterwards: main() also runs inside other programs' processes.
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        summary = run_dataset(dataset, n_splits, settings, args.out)
    finally:
        torch.set_num_threads(threads)
    print(markdown_row(summary))
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
