"""Data sources: scikit-learn, CSV/Parquet, ``.npz``, torchvision, ImageFolder.

Each source becomes :class:`Splits`. Problems found in the data (a column
that is not there, a dataset not downloaded) are reported as
:class:`ConfigError` naming the config key to change.
"""

import difflib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn.datasets
import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms

from mcdropout.config import (
    ConfigError,
    DataConfig,
    ImageFolderData,
    NpzData,
    SklearnData,
    TableData,
    TorchvisionData,
)
from mcdropout.data._splits import (
    DataInfo,
    Splits,
    split_arrays,
    split_indices,
    subsample,
)

__all__ = ["load_splits", "parquet_available"]

logger = logging.getLogger(__name__)

_SKLEARN_LOADERS: dict[str, Callable] = {
    "digits": sklearn.datasets.load_digits,
    "iris": sklearn.datasets.load_iris,
    "wine": sklearn.datasets.load_wine,
    "breast_cancer": sklearn.datasets.load_breast_cancer,
    "diabetes": sklearn.datasets.load_diabetes,
}


def parquet_available() -> bool:
    """Whether pyarrow, which pandas needs for Parquet, is installed."""
    return importlib.util.find_spec("pyarrow") is not None


def load_splits(config: DataConfig, *, key: str = "data") -> Splits:
    """Load a data source and split it into train, validation and test parts.

    Parameters
    ----------
    config : DataConfig
        The validated ``data`` section (or ``ood.dataset``).
    key : str
        The section's key path, for error messages.

    Returns
    -------
    Splits
        Datasets of ``(input, target)`` pairs and the facts about them; the
        ``max_train`` and ``max_test`` limits applied.

    Examples
    --------
    >>> from mcdropout.config import SklearnData
    >>> splits = load_splits(SklearnData(source="sklearn", name="iris"))
    >>> splits.info.n_classes, len(splits.test)
    (3, 38)
    """
    loaders = {
        SklearnData: _sklearn,
        TableData: _table,
        NpzData: _npz,
        TorchvisionData: _torchvision,
        ImageFolderData: _image_folder,
    }
    splits = loaders[type(config)](config, key)
    split = config.split
    return Splits(
        subsample(splits.train, split.max_train, split.seed),
        splits.val,
        subsample(splits.test, split.max_test, split.seed),
        splits.info,
    )


def _split(config: DataConfig, inputs: np.ndarray, targets: np.ndarray, info: DataInfo):
    split = config.split
    return split_arrays(
        inputs, targets, info, val=split.val, test=split.test, seed=split.seed
    )


# --- tabular --------------------------------------------------------------


def _sklearn(config: SklearnData, key: str) -> Splits:
    bunch = _SKLEARN_LOADERS[config.name]()
    task = "regression" if config.name == "diabetes" else "classification"
    class_names = None
    if task == "classification":
        class_names = [str(name) for name in bunch.target_names]
    info = DataInfo(
        task=task,
        input_shape=(bunch.data.shape[1],),
        n_classes=None if class_names is None else len(class_names),
        class_names=class_names,
        image_shape=(8, 8) if config.name == "digits" else None,
        feature_names=[str(name) for name in bunch.feature_names],
    )
    return _split(config, bunch.data, bunch.target, info)


def _read_table(config: TableData, key: str) -> pd.DataFrame:
    if config.source == "csv":
        return pd.read_csv(config.path)
    if not parquet_available():
        raise ConfigError(
            [
                f"{key}.source: reading Parquet needs pyarrow; install it with "
                "pip install 'mcdropout[parquet]'"
            ]
        )
    return pd.read_parquet(config.path)


def _columns(frame: pd.DataFrame, wanted: list[str], field: str) -> None:
    for column in wanted:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, list(map(str, frame.columns)), 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError([f"{field}: no column {column!r} in the table{hint}"])


def _table(config: TableData, key: str) -> Splits:
    frame = _read_table(config, key)
    _columns(frame, [config.target], f"{key}.target")
    features = config.features
    if features is None:
        features = [str(c) for c in frame.columns if str(c) != config.target]
    _columns(frame, features, f"{key}.features")

    table = frame[features]
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise ConfigError(
            [f"{key}.features: expected numeric columns, got {non_numeric}"]
        )
    inputs = table.to_numpy(dtype=np.float64)
    targets, class_names = _targets(frame[config.target].to_numpy(), config.task, key)
    _check_finite(inputs, f"{key}.features")
    info = _tabular_info(config, inputs, class_names, features, key)
    return _split(config, inputs, targets, info)


def _targets(
    values: np.ndarray, task: str, key: str
) -> tuple[np.ndarray, list[str] | None]:
    if pd.isna(values).any():
        raise ConfigError([f"{key}.target: the target column has missing values"])
    if task == "regression":
        try:
            return values.astype(np.float64), None
        except ValueError:
            raise ConfigError(
                [f"{key}.task: regression needs a numeric target column"]
            ) from None
    # Any labels (strings, ints) become class indices in sorted label order.
    labels, indices = np.unique(values, return_inverse=True)
    return indices, [str(label) for label in labels]


def _check_finite(inputs: np.ndarray, field: str) -> None:
    bad = ~np.isfinite(inputs)
    if bad.any():
        raise ConfigError(
            [
                f"{field}: expected finite numbers, got {int(bad.sum())} missing or "
                "infinite value(s)"
            ]
        )


def _tabular_info(
    config: TableData | NpzData,
    inputs: np.ndarray,
    class_names: list[str] | None,
    feature_names: list[str] | None,
    key: str,
) -> DataInfo:
    image_shape = None if config.image_shape is None else tuple(config.image_shape)
    if image_shape is not None and int(np.prod(image_shape)) != int(
        np.prod(inputs.shape[1:])
    ):
        raise ConfigError(
            [
                f"{key}.image_shape: expected {int(np.prod(inputs.shape[1:]))} values "
                f"per input, got {list(image_shape)}"
            ]
        )
    if image_shape is None and inputs.ndim in (3, 4):
        image_shape = tuple(inputs.shape[1:])
    return DataInfo(
        task=config.task,
        input_shape=tuple(inputs.shape[1:]),
        n_classes=None if class_names is None else len(class_names),
        class_names=class_names,
        image_shape=image_shape,
        feature_names=feature_names,
    )


def _npz(config: NpzData, key: str) -> Splits:
    # allow_pickle=False: an .npz holding object arrays could run code.
    with np.load(config.path, allow_pickle=False) as arrays:
        for field in ("inputs_key", "targets_key"):
            name = getattr(config, field)
            if name not in arrays:
                raise ConfigError(
                    [
                        f"{key}.{field}: no array {name!r} in the file; it holds "
                        f"{sorted(arrays.files)}"
                    ]
                )
        inputs = arrays[config.inputs_key].astype(np.float64)
        raw_targets = arrays[config.targets_key]
    if inputs.ndim < 2 or len(inputs) != len(raw_targets):
        raise ConfigError(
            [
                f"{key}.path: expected inputs (n_inputs, ...) and targets "
                f"(n_inputs,), got shapes {inputs.shape} and {raw_targets.shape}"
            ]
        )
    _check_finite(inputs.reshape(len(inputs), -1), f"{key}.inputs_key")
    targets, class_names = _targets(raw_targets, config.task, key)
    info = _tabular_info(config, inputs, class_names, None, key)
    return _split(config, inputs, targets, info)


# --- images ---------------------------------------------------------------


def _torchvision(config: TorchvisionData, key: str) -> Splits:
    if config.name == "FakeData":
        return _fake(config)
    cls = getattr(datasets, config.name)
    root = config.root.expanduser()
    try:
        train = _open(cls, config, root, train=True)
        test = _open(cls, config, root, train=False)
    except RuntimeError as error:
        if "not found" not in str(error).lower():
            raise
        raise ConfigError(
            [
                f"{key}.root: {config.name} not found under {root.resolve()}; "
                f"to download it (internet needed), set {key}.download: true, "
                f"e.g. --set {key}.download=true"
            ]
        ) from None
    return _official_split(config, train, test, _class_names(train))


def _open(cls: type, config: TorchvisionData, root: Path, *, train: bool) -> Dataset:
    # SVHN names its parts by string, the others by a flag.
    part = {"split": "train" if train else "test"}
    if cls is not datasets.SVHN:
        part = {"train": train}
    return cls(
        root=str(root),
        download=config.download,
        transform=transforms.ToTensor(),
        **part,
        **config.args,
    )


def _class_names(dataset: Dataset) -> list[str]:
    classes = getattr(dataset, "classes", None)
    if classes:
        return [str(name) for name in classes]
    labels = getattr(dataset, "labels", None)
    return [str(k) for k in range(int(np.max(labels)) + 1)]


def _image_info(dataset: Dataset, class_names: list[str]) -> DataInfo:
    shape = tuple(dataset[0][0].shape)
    return DataInfo(
        task="classification",
        input_shape=shape,
        n_classes=len(class_names),
        class_names=class_names,
        image_shape=shape,
    )


def _official_split(
    config: TorchvisionData, train: Dataset, test: Dataset, class_names: list[str]
) -> Splits:
    # The official test set is kept; the validation part comes from training.
    order = torch.randperm(
        len(train), generator=torch.Generator().manual_seed(config.split.seed)
    ).tolist()
    n_val = max(1, round(config.split.val * len(train)))
    return Splits(
        Subset(train, sorted(order[n_val:])),
        Subset(train, sorted(order[:n_val])),
        test,
        _image_info(train, class_names),
    )


def _fake(config: TorchvisionData) -> Splits:
    args = {"size": 500, "image_size": (3, 32, 32), "num_classes": 10, **config.args}
    args["image_size"] = tuple(args["image_size"])
    dataset = datasets.FakeData(
        transform=transforms.ToTensor(),
        random_offset=config.split.seed,
        **args,
    )
    class_names = [str(k) for k in range(args["num_classes"])]
    return _split_dataset(config, dataset, class_names)


def _split_dataset(
    config: TorchvisionData | ImageFolderData, dataset: Dataset, class_names: list[str]
) -> Splits:
    targets = np.array([_target_of(dataset, i) for i in range(len(dataset))])
    split = config.split
    parts = split_indices(
        targets, val=split.val, test=split.test, seed=split.seed, task="classification"
    )
    train, val, test = (Subset(dataset, sorted(idx.tolist())) for idx in parts)
    return Splits(train, val, test, _image_info(dataset, class_names))


def _target_of(dataset: Dataset, index: int) -> int:
    # ImageFolder knows its targets without opening images; FakeData does not.
    targets = getattr(dataset, "targets", None)
    return int(targets[index]) if targets is not None else int(dataset[index][1])


def _image_folder(config: ImageFolderData, key: str) -> Splits:
    steps = [transforms.Resize(tuple(config.image_size))]
    if config.grayscale:
        steps.append(transforms.Grayscale())
    steps.append(transforms.ToTensor())
    try:
        dataset = datasets.ImageFolder(
            str(config.root), transform=transforms.Compose(steps)
        )
    except (FileNotFoundError, RuntimeError) as error:
        raise ConfigError([f"{key}.root: {error}"]) from None
    return _split_dataset(config, dataset, list(dataset.classes))
