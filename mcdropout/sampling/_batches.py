"""Reading what users pass to ``predict``: one batch, or an iterable of them.

A batch is a Tensor (called as ``model(x)``), a tuple or list (``model(*x)``)
or a dict (``model(**x)``). Tensors inside it whose first dimension is the
batch size are the per-input tensors: they are sliced, repeated and moved;
anything else (other tensors, numbers, strings) is passed through unchanged.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError

__all__ = [
    "Batch",
    "batch_size",
    "call_model",
    "iter_batches",
    "map_rows",
    "repeat_rows",
    "repeat_tensor",
    "slice_rows",
    "to_device",
]

Batch = Tensor | tuple | list | dict


def _is_batch(value: object) -> bool:
    return isinstance(value, (Tensor, tuple, list, dict))


def _first_tensor(inputs: Any) -> Tensor | None:
    if isinstance(inputs, Tensor):
        return inputs
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    if isinstance(inputs, (tuple, list)):
        for value in inputs:
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def batch_size(inputs: Batch) -> int:
    """Number of inputs in a batch: dim 0 of its first tensor."""
    first = _first_tensor(inputs)
    if first is None or first.ndim == 0:
        raise ArgumentTypeError(
            "expected `inputs` to hold at least one tensor with a batch "
            f"dimension, got {type(inputs).__name__} without one"
        )
    return first.shape[0]


def map_rows(inputs: Any, n_rows: int, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every per-input tensor (dim 0 of size ``n_rows``)."""
    if isinstance(inputs, Tensor):
        return fn(inputs) if inputs.ndim > 0 and inputs.shape[0] == n_rows else inputs
    if isinstance(inputs, dict):
        return {key: map_rows(value, n_rows, fn) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(map_rows(value, n_rows, fn) for value in inputs)
    return inputs


def slice_rows(inputs: Batch, n_rows: int, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of a batch of ``n_rows`` inputs."""
    return map_rows(inputs, n_rows, lambda tensor: tensor[start:stop])


def repeat_rows(inputs: Batch, n_rows: int, n_times: int) -> Batch:
    """The batch stacked ``n_times`` along dim 0: rows ``i``, ``i + n_rows``,
    ... are copies of input ``i``."""
    if n_times == 1:
        return inputs
    return map_rows(inputs, n_rows, lambda tensor: repeat_tensor(tensor, n_times))


def repeat_tensor(tensor: Tensor, n_times: int) -> Tensor:
    """``tensor`` stacked ``n_times`` along dim 0 (itself when once)."""
    if n_times == 1:
        return tensor
    return tensor.repeat(n_times, *([1] * (tensor.ndim - 1)))


def to_device(inputs: Any, device: torch.device) -> Any:
    """Every tensor of a batch on ``device``."""
    if isinstance(inputs, Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, dict):
        return {key: to_device(value, device) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(value, device) for value in inputs)
    return inputs


def call_model(model: Callable, inputs: Batch) -> Any:
    """``model(x)``, ``model(*x)`` or ``model(**x)`` by the batch's type."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _split_item(item: Any, index: int) -> tuple[Batch, Any]:
    # DataLoaders over TensorDataset(x, y) yield [x, y]; over TensorDataset(x),
    # [x]. Models with several inputs take ((x1, x2), y) or a dict.
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return item[0], None
        if len(item) == 2:
            return item[0], item[1]
        raise ArgumentValueError(
            f"expected each item of the `inputs` iterable to be inputs alone or "
            f"an (inputs, targets) pair, got a {type(item).__name__} of "
            f"{len(item)} elements at item {index}; wrap several model inputs "
            "in a tuple or dict: ((x1, x2), targets)"
        )
    if not _is_batch(item):
        raise ArgumentTypeError(
            f"expected each item of the `inputs` iterable to be a Tensor, "
            f"tuple, list or dict, got {type(item).__name__} at item {index}"
        )
    return item, None


def iter_batches(inputs: Any, targets: Any = None) -> Iterator[tuple[Batch, Any]]:
    """Yield ``(batch, targets)`` pairs from one batch or an iterable of them.

    A Tensor, tuple, list or dict is one batch (with ``targets`` given
    separately, or None). Anything else iterable is a sequence of batches,
    such as a DataLoader, whose items are inputs alone or
    ``(inputs, targets)`` pairs.
    """
    if _is_batch(inputs):
        yield inputs, targets
        return
    if targets is not None:
        raise ArgumentValueError(
            "expected `targets` to be None when `inputs` is an iterable of "
            "batches (its items carry their own targets), got "
            f"{type(targets).__name__}"
        )
    if not isinstance(inputs, Iterable):
        raise ArgumentTypeError(
            "expected `inputs` to be a Tensor, tuple, list, dict or an iterable "
            f"of batches such as a DataLoader, got {type(inputs).__name__}"
        )
    for index, item in enumerate(inputs):
        yield _split_item(item, index)
