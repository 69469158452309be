"""Dataset shift and input statistics against hand-worked and NumPy references."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from mcdropout import ArgumentValueError
from mcdropout.data import ShiftedDataset, gaussian_noise, input_statistics, rotate


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize(
    ("degrees", "column"),
    # A top row of ones turned counter-clockwise by 90 degrees is the left
    # column; by 270 degrees, the right column.
    [(90.0, 0), (270.0, 3)],
)
def test_rotate_quarter_turns(degrees, column):
    image = torch.zeros(4, 4)
    image[0, :] = 1.0
    turned = rotate(image.flatten(), degrees, image_shape=(4, 4)).reshape(4, 4)
    expected = torch.zeros(4, 4)
    expected[:, column] = 1.0
    torch.testing.assert_close(turned, expected, atol=1e-5, rtol=0)


def test_rotate_a_full_turn_is_the_identity(generator):
    image = torch.rand(3, 5, 5, generator=generator)
    turned = rotate(image, 360.0, image_shape=(3, 5, 5))
    torch.testing.assert_close(turned, image, atol=1e-4, rtol=0)


def test_rotation_fills_corners(generator):
    image = torch.ones(1, 9, 9)
    turned = rotate(image, 45.0, image_shape=(1, 9, 9), fill=-2.0)
    assert turned[0, 0, 0] == -2.0
    assert turned[0, 4, 4] == 1.0


def test_noise_has_the_asked_spread(generator):
    inputs = torch.zeros(200_000)
    noisy = gaussian_noise(inputs, 0.5, scale=4.0, generator=generator)
    # Standard error of a sample std over n values: std / sqrt(2n).
    assert abs(float(noisy.std()) - 2.0) < 5 * 2.0 / math.sqrt(400_000)
    assert abs(float(noisy.mean())) < 5 * 2.0 / math.sqrt(200_000)


def test_noise_is_clipped_to_the_value_range(generator):
    noisy = gaussian_noise(
        torch.full((1000,), 0.5),
        3.0,
        scale=1.0,
        value_range=(0.0, 1.0),
        generator=generator,
    )
    assert noisy.min() == 0.0
    assert noisy.max() == 1.0


@pytest.fixture
def dataset():
    inputs = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    return TensorDataset(inputs, torch.arange(10))


def test_shifted_noise_repeats_per_input_in_any_order(dataset):
    shifted = ShiftedDataset(dataset, "gaussian_noise", 1.0, scale=2.0, seed=5)
    forward = [shifted[i][0] for i in range(10)]
    backward = [shifted[i][0] for i in reversed(range(10))][::-1]
    for a, b in zip(forward, backward, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(forward[0] - dataset[0][0], forward[1] - dataset[1][0])
    other_seed = ShiftedDataset(dataset, "gaussian_noise", 1.0, scale=2.0, seed=6)
    assert not torch.equal(other_seed[0][0], forward[0])


def test_shifted_keeps_targets_and_length(dataset):
    shifted = ShiftedDataset(dataset, "rotation", 90.0, image_shape=(2, 2))
    assert len(shifted) == 10
    assert [int(shifted[i][1]) for i in range(10)] == list(range(10))
    # [[a, b], [c, d]] turned a quarter counter-clockwise is [[b, d], [a, c]].
    torch.testing.assert_close(shifted[0][0], torch.tensor([1.0, 3.0, 0.0, 2.0]))


def test_rotation_needs_an_image_shape(dataset):
    with pytest.raises(
        ArgumentValueError, match=r"expected `image_shape` for a rotation"
    ):
        ShiftedDataset(dataset, "rotation", 10.0)


@pytest.mark.parametrize(
    ("kind", "severity", "message"),
    [("blur", 1.0, r"expected `kind` to be one of"), ("rotation", 0.0, r"positive")],
)
def test_shift_arguments_are_checked(dataset, kind, severity, message):
    with pytest.raises(ArgumentValueError, match=message):
        ShiftedDataset(dataset, kind, severity, image_shape=(2, 2))


def test_input_statistics_per_feature_match_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=(50, 3)).astype(np.float32)
    values[:, 2] = 7.0  # a constant feature
    data = TensorDataset(torch.from_numpy(values), torch.zeros(50))
    stats = input_statistics(data, per_channel=False)
    np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        stats.std[:2], values[:, :2].std(axis=0, ddof=1), rtol=1e-5
    )
    assert stats.std[2] == 1.0
    assert stats.value_range == (float(values.min()), float(values.max()))
    assert stats.scale == pytest.approx(float(values.astype(np.float64).std(ddof=1)))


def test_input_statistics_per_channel_match_numpy():
    rng = np.random.default_rng(1)
    values = rng.random((20, 2, 3, 3)).astype(np.float32)
    data = TensorDataset(torch.from_numpy(values), torch.zeros(20))
    stats = input_statistics(data, per_channel=True)
    assert stats.mean.shape == (2, 1, 1)
    np.testing.assert_allclose(
        stats.mean.flatten(), values.mean(axis=(0, 2, 3)), rtol=1e-5
    )
    expected_std = values.transpose(1, 0, 2, 3).reshape(2, -1).std(axis=1, ddof=1)
    np.testing.assert_allclose(stats.std.flatten(), expected_std, rtol=1e-5)
