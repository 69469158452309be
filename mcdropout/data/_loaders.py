"""DataLoaders and input statistics over datasets of ``(input, target)`` pairs."""

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["InputStatistics", "input_statistics", "make_loader"]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader over ``dataset``; shuffled loaders are seeded.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.zeros(10, 2), torch.zeros(10))
    >>> len(make_loader(data, 4))
    3
    """
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=False,
    )


class InputStatistics:
    """Mean and standard deviation of the training inputs.

    Attributes
    ----------
    mean, std : Tensor
        Per feature (flat inputs, shape ``input_shape``) or per channel
        (images, shape ``(channels, 1, 1)``); a constant feature gets std 1 so
        that standardising leaves it at 0.
    scale : float
        Standard deviation of all input values together (scale of noise
        shifts).
    value_range : (float, float)
        Smallest and largest input value.
    """

    def __init__(self, mean: Tensor, std: Tensor, scale: float, value_range: tuple):
        self.mean = mean
        self.std = std
        self.scale = scale
        self.value_range = value_range


def input_statistics(
    dataset: Dataset, *, per_channel: bool, max_inputs: int = 4096
) -> InputStatistics:
    """Statistics of (at most the first ``max_inputs``) inputs of ``dataset``.

    Parameters
    ----------
    dataset : Dataset
        Yields ``(input, target)`` pairs.
    per_channel : bool
        Images: one mean and std per channel (dimension 0 of an input).
        Otherwise one per feature.
    max_inputs : int
        Bounds the cost on large image datasets.
    """
    n_inputs = min(len(dataset), max_inputs)
    inputs = torch.stack([dataset[i][0] for i in range(n_inputs)]).double()
    dims = (0, *range(2, inputs.ndim)) if per_channel else (0,)
    mean = inputs.mean(dim=dims, keepdim=True)[0]
    std = inputs.std(dim=dims, keepdim=True)[0]
    # A constant feature (digits' blank corners) would divide by zero.
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    value_range = (float(inputs.min()), float(inputs.max()))
    return InputStatistics(mean.float(), std.float(), float(inputs.std()), value_range)
