"""Reading a UCI regression folder in the Gal & Ghahramani split format.

A folder holds ``data.txt`` (a whitespace-separated table), the 0-based
column indices ``index_features.txt`` and ``index_target.txt``, the 0-based
row indices ``index_train_{i}.txt`` and ``index_test_{i}.txt`` of each split,
and one-line settings files: ``n_splits.txt``, ``n_hidden.txt``,
``n_epochs.txt``, and the grids ``dropout_rates.txt`` and ``tau_values.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mcdropout import ArgumentValueError

__all__ = [
    "Destandardize",
    "Split",
    "Standardize",
    "Standardizer",
    "UCIDataset",
    "read_uci_folder",
]


def _read_numbers(path: Path, dtype: type, ndmin: int = 1) -> np.ndarray:
    if not path.is_file():
        raise ArgumentValueError(
            f"expected the dataset folder to hold {path.name}, got no such file "
            f"in {path.parent}"
        )
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=ndmin)
    except ValueError as error:
        raise ArgumentValueError(
            f"expected {path} to hold whitespace-separated numbers, got {error}"
        ) from error
    if dtype is int:
        if values.size and not np.array_equal(values, np.round(values)):
            raise ArgumentValueError(f"expected integers in {path}, got {values}")
        return values.astype(np.int64)
    return values


def _read_scalar_int(path: Path) -> int:
    values = _read_numbers(path, int)
    if values.size != 1 or values[0] < 1:
        raise ArgumentValueError(
            f"expected {path} to hold one positive integer, got {values.tolist()}"
        )
    return int(values[0])


def _read_grid(path: Path, low: float, high: float) -> tuple[float, ...]:
    values = _read_numbers(path, float)
    if values.size == 0 or not np.all((values > low) & (values < high)):
        raise ArgumentValueError(
            f"expected {path} to hold numbers in ({low}, {high}), got {values.tolist()}"
        )
    return tuple(float(value) for value in values)


def _check_indices(path: Path, indices: np.ndarray, size: int) -> np.ndarray:
    if indices.size == 0 or indices.min() < 0 or indices.max() >= size:
        raise ArgumentValueError(
            f"expected {path} to hold at least one index in [0, {size}), got "
            f"{indices.size} indices in [{indices.min(initial=0)}, "
            f"{indices.max(initial=0)}]"
        )
    return indices


@dataclass(frozen=True)
class Split:
    """One train/test split: inputs ``(n_rows, n_features)``, targets
    ``(n_rows,)``, float64, in the dataset's original units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class UCIDataset:
    """A UCI regression table with its fixed splits and search grids.

    Attributes
    ----------
    name : str
        The folder's name, e.g. ``"bostonHousing"``.
    path : Path
        The folder.
    inputs : np.ndarray
        ``(n_rows, n_features)`` float64.
    targets : np.ndarray
        ``(n_rows,)`` float64.
    n_splits, n_hidden, n_epochs : int
        Number of splits, hidden units, base number of epochs.
    dropout_rates, tau_values : tuple of float
        The grid searched on each split.
    """

    name: str
    path: Path
    inputs: np.ndarray
    targets: np.ndarray
    n_splits: int
    n_hidden: int
    n_epochs: int
    dropout_rates: tuple[float, ...]
    tau_values: tuple[float, ...]

    def split(self, index: int) -> Split:
        """Split ``index`` (0-based), read from its two index files."""
        if not 0 <= index < self.n_splits:
            raise ArgumentValueError(
                f"expected a split index in [0, {self.n_splits}), got {index}"
            )
        rows = []
        for part in ("train", "test"):
            path = self.path / f"index_{part}_{index}.txt"
            rows.append(_check_indices(path, _read_numbers(path, int), len(self)))
        if np.intersect1d(rows[0], rows[1]).size:
            raise ArgumentValueError(
                f"expected split {index} of {self.path} to have disjoint train and "
                f"test rows, got {np.intersect1d(rows[0], rows[1]).size} shared"
            )
        train, test = rows
        return Split(
            self.inputs[train],
            self.targets[train],
            self.inputs[test],
            self.targets[test],
        )

    def __len__(self) -> int:
        return self.inputs.shape[0]


def read_uci_folder(path: str | Path) -> UCIDataset:
    """Read a dataset folder in the split format (see the module docstring).

    Examples
    --------
    >>> dataset = read_uci_folder("../shared/data/uci/yacht")  # doctest: +SKIP
    >>> dataset.n_splits, dataset.split(0).x_train.shape  # doctest: +SKIP
    (20, (277, 6))
    """
    path = Path(path)
    if not path.is_dir():
        raise ArgumentValueError(f"expected `data` to be a folder, got {str(path)!r}")
    table = _read_numbers(path / "data.txt", float, ndmin=2)
    if table.shape[1] < 2:
        raise ArgumentValueError(
            f"expected {path / 'data.txt'} to be a table with one row per example "
            f"and at least two columns, got shape {table.shape}"
        )
    features = _read_numbers(path / "index_features.txt", int)
    target = _read_numbers(path / "index_target.txt", int)
    if target.size != 1:
        raise ArgumentValueError(
            f"expected one column index in {path / 'index_target.txt'}, "
            f"got {target.tolist()}"
        )
    for name, columns in (
        ("index_features.txt", features),
        ("index_target.txt", target),
    ):
        _check_indices(path / name, columns, table.shape[1])
    return UCIDataset(
        name=path.resolve().name,
        path=path,
        inputs=table[:, features],
        targets=table[:, int(target[0])],
        n_splits=_read_scalar_int(path / "n_splits.txt"),
        n_hidden=_read_scalar_int(path / "n_hidden.txt"),
        n_epochs=_read_scalar_int(path / "n_epochs.txt"),
        dropout_rates=_read_grid(path / "dropout_rates.txt", 0.0, 1.0),
        tau_values=_read_grid(path / "tau_values.txt", 0.0, float("inf")),
    )


@dataclass(frozen=True)
class Standardizer:
    """Per-column mean and standard deviation of a training set.

    A constant column gets standard deviation 1, so it maps to 0.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardizer:
        """Statistics of ``values`` ``(n_rows, ...)`` along rows (ddof 0)."""
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std == 0, 1.0, std))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / std``."""
        return (values - self.mean) / self.std


class Standardize(nn.Module):
    """``(x - mean) / std`` as the first layer of a model on raw inputs."""

    def __init__(self, standardizer: Standardizer) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(standardizer.mean).float())
        self.register_buffer("std", torch.as_tensor(standardizer.std).float())

    def forward(self, inputs: Tensor) -> Tensor:
        return (inputs - self.mean) / self.std


class Destandardize(nn.Module):
    """``y * std + mean`` of a one-column output, returned as ``(n_inputs,)``,
    so a network trained on standardised targets predicts original units."""

    def __init__(self, standardizer: Standardizer) -> None:
        super().__init__()
        self.mean = float(standardizer.mean)
        self.std = float(standardizer.std)

    def forward(self, outputs: Tensor) -> Tensor:
        return outputs[..., 0] * self.std + self.mean

    def extra_repr(self) -> str:
        return f"mean={self.mean:.6g}, std={self.std:.6g}"
