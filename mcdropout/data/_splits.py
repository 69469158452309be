"""What a data source yields: train, validation and test datasets with facts."""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset, TensorDataset

__all__ = ["DataInfo", "Splits", "split_arrays", "split_indices", "subsample"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataInfo:
    """Facts about a dataset that models and reports need.

    Attributes
    ----------
    task : {"classification", "regression"}
    input_shape : tuple of int
        Shape of one input as the model receives it, e.g. ``(64,)`` or
        ``(1, 28, 28)``.
    n_classes : int or None
        Number of classes (classification only).
    class_names : list of str or None
        Name of each class index (classification only).
    image_shape : tuple of int or None
        How one input reads as an image, ``(height, width)`` or
        ``(channels, height, width)``; None for plain features. Rotation
        shifts need it.
    feature_names : list of str or None
        Column names of tabular inputs.
    """

    task: str
    input_shape: tuple[int, ...]
    n_classes: int | None = None
    class_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] | None = None

    @property
    def n_outputs(self) -> int:
        """Model outputs per input: ``n_classes``, or 1 for regression."""
        return self.n_classes if self.task == "classification" else 1


@dataclass(frozen=True)
class Splits:
    """The train, validation and test parts of one data source.

    Each dataset yields ``(input, target)`` pairs: float32 inputs of shape
    ``info.input_shape``; int64 class indices, or float32 regression targets
    of shape ``(1,)``.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    info: DataInfo


def _stratify(targets: np.ndarray, task: str) -> np.ndarray | None:
    # Stratifying needs at least two inputs of every class.
    if task != "classification":
        return None
    counts = np.unique(targets, return_counts=True)[1]
    return targets if counts.min() >= 2 else None


def _split_off(
    indices: np.ndarray, targets: np.ndarray, size: float, seed: int, task: str
) -> tuple[np.ndarray, np.ndarray]:
    stratify = _stratify(targets[indices], task)
    try:
        return train_test_split(
            indices, test_size=size, random_state=seed, stratify=stratify
        )
    except ValueError:
        # Too few inputs to give every class a place in both parts.
        logger.info("split too small to stratify by class; splitting at random")
        return train_test_split(indices, test_size=size, random_state=seed)


def split_indices(
    targets: np.ndarray, *, val: float, test: float, seed: int, task: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/validation/test indices, stratified by class when possible.

    ``val`` and ``test`` are shares of all ``len(targets)`` inputs.

    Examples
    --------
    >>> parts = split_indices(np.arange(20) % 2, val=0.2, test=0.3, seed=0,
    ...                       task="classification")
    >>> [len(part) for part in parts]
    [9, 5, 6]
    """
    indices = np.arange(len(targets))
    rest, test_idx = _split_off(indices, targets, test, seed, task)
    train_idx, val_idx = _split_off(rest, targets, val / (1.0 - test), seed, task)
    return train_idx, val_idx, test_idx


def subsample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset of at most ``limit`` items (all when None)."""
    if limit is None or limit >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    logger.info("using %d of %d inputs", limit, len(dataset))
    return Subset(dataset, order[:limit].sort().values.tolist())


def split_arrays(
    inputs: np.ndarray,
    targets: np.ndarray,
    info: DataInfo,
    *,
    val: float,
    test: float,
    seed: int,
) -> Splits:
    """Split in-memory arrays into tensor datasets."""
    parts = split_indices(targets, val=val, test=test, seed=seed, task=info.task)
    target_dtype = torch.int64 if info.task == "classification" else torch.float32
    # Copies: the arrays may be read-only views of a file's buffer.
    x = torch.tensor(inputs, dtype=torch.float32)
    y = torch.tensor(targets, dtype=target_dtype)
    if info.task == "regression":
        # One column, like the model's output and the predicted mean.
        y = y.reshape(-1, 1)
    train, val_set, test_set = (TensorDataset(x[idx], y[idx]) for idx in parts)
    return Splits(train, val_set, test_set, info)
