"""Built-in networks with dropout, used by the shipped configs and examples.

Every built-in network starts with :class:`Standardize`, whose buffers hold
the training inputs' mean and standard deviation, so a saved state dict
carries its own preprocessing. Regression networks end with
:class:`TargetScale`, which maps standardised outputs back to target units.
"""

import math
from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import Tensor, nn

from mcdropout._exceptions import ArgumentValueError
from mcdropout._validation import check_choice
from mcdropout.data import DataInfo, InputStatistics

__all__ = [
    "ARCHITECTURES",
    "Standardize",
    "TargetScale",
    "build_model",
    "mlp",
    "resnet18",
    "small_cnn",
]


class Standardize(nn.Module):
    """``(x - mean) / std`` with the statistics kept as buffers.

    Parameters
    ----------
    shape : tuple of int
        Shape of ``mean`` and ``std``: an input's shape (per feature) or
        ``(channels, 1, 1)`` (per channel).
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(*shape))
        self.register_buffer("std", torch.ones(*shape))

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Copy the training inputs' statistics in (shapes must match)."""
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape))

    def forward(self, inputs: Tensor) -> Tensor:
        return (inputs - self.mean) / self.std


class TargetScale(nn.Module):
    """Map standardised regression outputs back to target units.

    A plain output ``z`` becomes ``shift + scale * z``. A heteroscedastic
    output ``[z, s]`` (mean, then log-variance) becomes
    ``[shift + scale * z, s + 2 log scale]``.
    """

    def __init__(self, heteroscedastic: bool) -> None:
        super().__init__()
        self.heteroscedastic = heteroscedastic
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def set_statistics(self, shift: float, scale: float) -> None:
        """Copy the training targets' mean and standard deviation in."""
        self.shift.fill_(shift)
        self.scale.fill_(scale)

    def forward(self, outputs: Tensor) -> Tensor:
        if not self.heteroscedastic:
            return self.shift + self.scale * outputs
        mean, log_variance = outputs.chunk(2, dim=-1)
        return torch.cat(
            [self.shift + self.scale * mean, log_variance + 2 * self.scale.log()],
            dim=-1,
        )


def _image_shape(info: DataInfo) -> tuple[int, int, int]:
    if info.image_shape is None:
        raise ArgumentValueError(
            "expected image inputs (or `data.image_shape`) for a convolutional "
            f"model, got plain features of shape {info.input_shape}"
        )
    shape = tuple(info.image_shape)
    return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]


def _head(info: DataInfo, heteroscedastic: bool) -> tuple[int, list[nn.Module]]:
    """Output width of the last layer and the layers that follow it."""
    if info.task == "classification":
        return info.n_outputs, []
    width = 2 * info.n_outputs if heteroscedastic else info.n_outputs
    return width, [TargetScale(heteroscedastic)]


def _standardize(info: DataInfo, per_channel: bool) -> Standardize:
    if per_channel:
        return Standardize((info.input_shape[0], 1, 1))
    return Standardize(info.input_shape)


def mlp(
    info: DataInfo,
    *,
    hidden_sizes: Sequence[int] = (128, 128),
    dropout: float = 0.3,
    heteroscedastic: bool = False,
) -> nn.Sequential:
    """A fully connected network with dropout after every hidden layer.

    ``Standardize -> Flatten -> [Linear -> ReLU -> Dropout] * k -> Linear``.

    Parameters
    ----------
    info : DataInfo
        Input shape, task and number of classes.
    hidden_sizes : sequence of int
        Width of each hidden layer.
    dropout : float
        Dropout rate after each hidden layer.
    heteroscedastic : bool
        Regression: also predict a log-variance per output.

    Examples
    --------
    >>> from mcdropout.data import DataInfo
    >>> net = mlp(DataInfo("classification", (4,), n_classes=3))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """
    layers: list[nn.Module] = [_standardize(info, _is_image(info)), nn.Flatten()]
    width = math.prod(info.input_shape)
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    n_out, tail = _head(info, heteroscedastic)
    return nn.Sequential(*layers, nn.Linear(width, n_out), *tail)


def _is_image(info: DataInfo) -> bool:
    return len(info.input_shape) == 3


def small_cnn(
    info: DataInfo,
    *,
    channels: Sequence[int] = (32, 64),
    hidden: int = 128,
    dropout2d: float = 0.1,
    dropout: float = 0.5,
    heteroscedastic: bool = False,
) -> nn.Sequential:
    """A small convolutional network with channel-wise and head dropout.

    Each block is ``Conv3x3 -> ReLU -> MaxPool2 -> Dropout2d`` (pooling only
    while the feature map is at least 2 pixels wide); then adaptive average
    pooling to 2x2, ``Linear -> ReLU -> Dropout -> Linear``. Flat inputs with
    an image shape (the 64 digits features) are reshaped into images.

    Examples
    --------
    >>> from mcdropout.data import DataInfo
    >>> info = DataInfo("classification", (1, 8, 8), 10, image_shape=(1, 8, 8))
    >>> small_cnn(info)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    shape = _image_shape(info)
    layers: list[nn.Module] = [_standardize(info, _is_image(info))]
    if tuple(info.input_shape) != shape:
        layers.append(nn.Unflatten(1, shape))
    width, side = shape[0], min(shape[1:])
    for size in channels:
        layers += [nn.Conv2d(width, size, 3, padding=1), nn.ReLU()]
        if side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        layers.append(nn.Dropout2d(dropout2d))
        width = size
    n_out, tail = _head(info, heteroscedastic)
    head = [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, hidden)]
    head += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_out)]
    return nn.Sequential(*layers, *head, *tail)


def resnet18(
    info: DataInfo,
    *,
    dropout: float = 0.5,
    small_input: bool = True,
    heteroscedastic: bool = False,
) -> nn.Sequential:
    """torchvision's ResNet-18, randomly initialised, with a dropout head.

    The final layer becomes ``Dropout -> Linear``. ``small_input`` swaps the
    7x7 stride-2 stem and its max-pool for a 3x3 stride-1 convolution, the
    usual change for 32x32 images. No pretrained weights are downloaded.

    Examples
    --------
    >>> from mcdropout.data import DataInfo
    >>> info = DataInfo("classification", (3, 32, 32), 10, image_shape=(3, 32, 32))
    >>> resnet18(info)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    shape = _image_shape(info)
    n_out, tail = _head(info, heteroscedastic)
    net = torchvision.models.resnet18(weights=None, num_classes=n_out)
    if small_input:
        net.conv1 = nn.Conv2d(shape[0], 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif shape[0] != 3:
        net.conv1 = nn.Conv2d(shape[0], 64, 7, stride=2, padding=3, bias=False)
    net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, n_out))
    layers: list[nn.Module] = [_standardize(info, _is_image(info))]
    if tuple(info.input_shape) != shape:
        layers.append(nn.Unflatten(1, shape))
    return nn.Sequential(*layers, net, *tail)


ARCHITECTURES: dict[str, Callable[..., nn.Sequential]] = {
    "mlp": mlp,
    "small_cnn": small_cnn,
    "resnet18": resnet18,
}


def build_model(
    architecture: str,
    info: DataInfo,
    args: dict | None = None,
    *,
    heteroscedastic: bool = False,
    statistics: InputStatistics | None = None,
) -> nn.Sequential:
    """A built-in network sized for ``info``, optionally with input statistics.

    Parameters
    ----------
    architecture : {"mlp", "small_cnn", "resnet18"}
    info : DataInfo
        Input shape, task and number of classes of the data.
    args : dict or None
        Keyword arguments of the architecture.
    heteroscedastic : bool
        Regression: predict a mean and a log-variance per output.
    statistics : InputStatistics or None
        Training inputs' statistics for the first layer; without them it
        is the identity until a state dict is loaded.

    Examples
    --------
    >>> from mcdropout.data import DataInfo
    >>> net = build_model("mlp", DataInfo("regression", (5,)), {"dropout": 0.1})
    >>> net(torch.zeros(3, 5)).shape
    torch.Size([3, 1])
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    model = ARCHITECTURES[architecture](
        info, **(args or {}), heteroscedastic=heteroscedastic
    )
    if statistics is not None:
        model[0].set_statistics(statistics.mean, statistics.std)
    return model
