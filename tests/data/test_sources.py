"""Data sources: splits, shapes, labels and the errors that name a config key."""

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets
import torch
from PIL import Image

from mcdropout.config import (
    ConfigError,
    ImageFolderData,
    NpzData,
    SklearnData,
    TableData,
    TorchvisionData,
)
from mcdropout.data import load_splits, make_loader, split_indices


def _all(dataset):
    inputs, targets = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(inputs), torch.stack([torch.as_tensor(t) for t in targets])


def _rows(dataset) -> set[tuple]:
    return {tuple(row.tolist()) for row in _all(dataset)[0]}


def test_digits_split_sizes_and_shape():
    splits = load_splits(SklearnData(source="sklearn", name="digits"))
    info = splits.info
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1077, 270, 450)
    assert info.task == "classification"
    assert info.input_shape == (64,)
    assert info.image_shape == (8, 8)
    assert info.class_names == [str(k) for k in range(10)]
    x, y = splits.test[0]
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64


def test_split_parts_are_disjoint_and_cover_the_data():
    splits = load_splits(SklearnData(source="sklearn", name="iris"))
    parts = [_rows(part) for part in (splits.train, splits.val, splits.test)]
    reference = {tuple(row) for row in sklearn.datasets.load_iris().data}
    assert set.union(*parts) == {tuple(np.float32(row).tolist()) for row in reference}
    assert sum(len(part) for part in (splits.train, splits.val, splits.test)) == 150


def test_split_indices_are_seeded_and_stratified():
    targets = np.repeat([0, 1, 2], [40, 40, 20])
    first = split_indices(targets, val=0.2, test=0.3, seed=3, task="classification")
    again = split_indices(targets, val=0.2, test=0.3, seed=3, task="classification")
    other = split_indices(targets, val=0.2, test=0.3, seed=4, task="classification")
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])
    # Each class keeps its share (40/40/20) in the test part of 30.
    assert np.bincount(targets[first[2]]).tolist() == [12, 12, 6]


def test_regression_targets_are_one_float_column():
    splits = load_splits(SklearnData(source="sklearn", name="diabetes"))
    assert splits.info.task == "regression"
    assert splits.info.n_outputs == 1
    _, y = _all(splits.test)
    assert y.shape == (len(splits.test), 1)
    assert y.dtype == torch.float32


def test_max_train_and_max_test_limit_the_parts():
    config = SklearnData(
        source="sklearn", name="digits", split={"max_train": 100, "max_test": 30}
    )
    splits = load_splits(config)
    assert (len(splits.train), len(splits.test)) == (100, 30)
    assert len(splits.val) == 270


@pytest.fixture
def table_path(tmp_path):
    frame = pd.DataFrame(
        {
            "height": np.arange(40, dtype=float),
            "weight": np.arange(40, dtype=float) * 2,
            "colour": ["red"] * 40,
            "label": ["cat", "dog", "emu", "dog"] * 10,
        }
    )
    path = tmp_path / "animals.csv"
    frame.to_csv(path, index=False)
    return path


def test_csv_labels_become_sorted_class_indices(table_path):
    config = TableData(
        source="csv", path=table_path, target="label", features=["height", "weight"]
    )
    splits = load_splits(config)
    assert splits.info.class_names == ["cat", "dog", "emu"]
    assert splits.info.feature_names == ["height", "weight"]
    x, y = _all(splits.train)
    # Row i has height i and label ["cat", "dog", "emu", "dog"][i % 4].
    expected = torch.tensor([[0, 1, 2, 1][int(h) % 4] for h in x[:, 0]])
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(x[:, 1], 2 * x[:, 0])


def test_csv_regression_target(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0) * 3}).to_csv(path)
    config = TableData(source="csv", path=path, target="y", task="regression")
    splits = load_splits(config)
    x, y = _all(splits.test)
    # Every column but the target is a feature: the index column and x.
    assert splits.info.input_shape == (2,)
    torch.testing.assert_close(y[:, 0], 3 * x[:, 1])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"target": "lable"},
            r"^data\.target: no column 'lable'.*did you mean 'label'",
        ),
        ({"features": ["height", "hight"]}, r"^data\.features: no column 'hight'"),
        (
            {"features": None},
            r"^data\.features: expected numeric columns, got \['colour'\]",
        ),
    ],
)
def test_csv_column_errors_name_the_key(table_path, changes, message):
    config = TableData(source="csv", path=table_path, **({"target": "label"} | changes))
    with pytest.raises(ConfigError, match=message):
        load_splits(config)


def test_csv_missing_values_are_refused(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,y\n1,,0\n2,3,1\n" + "4,5,0\n" * 10)
    with pytest.raises(
        ConfigError, match=r"^data\.features: expected finite numbers, got 1 missing"
    ):
        load_splits(TableData(source="csv", path=path, target="y"))


def test_parquet_reads_like_csv(table_path, tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(table_path)
    path = tmp_path / "animals.parquet"
    frame.to_parquet(path)
    kwargs = {"target": "label", "features": ["height", "weight"]}
    from_csv = load_splits(TableData(source="csv", path=table_path, **kwargs))
    from_parquet = load_splits(TableData(source="parquet", path=path, **kwargs))
    for a, b in zip(_all(from_csv.test), _all(from_parquet.test), strict=True):
        torch.testing.assert_close(a, b)


def test_npz_images_keep_their_shape(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npz"
    np.savez(path, x=rng.random((30, 1, 6, 6)), y=np.tile([5, 7, 9], 10))
    config = NpzData(source="npz", path=path, inputs_key="x", targets_key="y")
    splits = load_splits(config)
    assert splits.info.input_shape == (1, 6, 6)
    assert splits.info.image_shape == (1, 6, 6)
    assert splits.info.class_names == ["5", "7", "9"]


def test_npz_missing_key_lists_the_arrays(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, inputs=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(
        ConfigError,
        match=r"^data\.targets_key: no array 'targets'.*\['inputs', 'labels'\]",
    ):
        load_splits(NpzData(source="npz", path=path))


def test_image_shape_must_fit_the_features(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": range(10), "b": range(10), "y": [0, 1] * 5}).to_csv(
        path, index=False
    )
    config = TableData(source="csv", path=path, target="y", image_shape=[3, 3])
    with pytest.raises(ConfigError, match=r"image_shape: expected 2 values per input"):
        load_splits(config)


@pytest.mark.parametrize("name", ["MNIST", "CIFAR10", "SVHN"])
def test_missing_torchvision_dataset_says_where_and_how(tmp_path, name):
    config = TorchvisionData(source="torchvision", name=name, root=tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_splits(config)
    message = str(caught.value)
    assert message.startswith(f"data.root: {name} not found under {tmp_path}")
    assert "--set data.download=true" in message


def test_fake_data_shapes_and_loader():
    config = TorchvisionData(
        source="torchvision",
        name="FakeData",
        args={"size": 40, "image_size": [1, 8, 8], "num_classes": 4},
        batch_size=16,
    )
    splits = load_splits(config)
    assert splits.info.input_shape == (1, 8, 8)
    assert splits.info.n_classes == 4
    assert sum(map(len, (splits.train, splits.val, splits.test))) == 40
    inputs, targets = next(iter(make_loader(splits.train, 16)))
    assert inputs.shape == (16, 1, 8, 8)
    assert targets.shape == (16,)


def test_image_folder(tmp_path):
    for k, name in enumerate(["ants", "bees"]):
        (tmp_path / name).mkdir()
        for i in range(6):
            pixels = np.full((10, 12, 3), 40 * k + i, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    config = ImageFolderData(
        source="image_folder", root=tmp_path, image_size=[4, 4], grayscale=True
    )
    splits = load_splits(config)
    assert splits.info.class_names == ["ants", "bees"]
    assert splits.info.input_shape == (1, 4, 4)
    x, y = _all(splits.test)
    # Bees were drawn brighter (40 grey levels and more) than every ant.
    assert (x[y == 1].amin(dim=(1, 2, 3)) >= 40 / 255 - 1e-6).all()
    assert (x[y == 0].amax(dim=(1, 2, 3)) <= 5 / 255 + 1e-6).all()


def test_empty_image_folder_names_the_root(tmp_path):
    (tmp_path / "empty_class").mkdir()
    config = ImageFolderData(source="image_folder", root=tmp_path)
    with pytest.raises(ConfigError, match=r"^data\.root: "):
        load_splits(config)
