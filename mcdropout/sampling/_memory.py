"""Measuring how much memory one pass needs, on any device.

This reads PyTorch's dispatcher through ``torch.utils._python_dispatch``, a
private but long-stable interface; allocator statistics would cover CUDA
only, and nothing else sees every tensor an operation creates on the CPU.
"""

import weakref
from typing import Any

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["AllocationCounter", "bytes_per_row"]


class AllocationCounter(TorchDispatchMode):
    """Counts the bytes of the tensors that the operations inside it create.

    ``n_bytes`` is their sum; ``peak_bytes`` the most that were alive at
    once (each tensor counts until it is freed), which is what a forward
    needs. Views, which share their input's storage, are not counted, nor
    are scratch buffers that kernels allocate and free internally.

    Examples
    --------
    >>> import torch
    >>> with AllocationCounter() as counter:
    ...     a = torch.ones(100)  # 400 bytes
    ...     b = a * 2  # 400 more, 800 alive
    ...     del a  # 400 alive
    ...     c = b + 1  # 800 alive again
    >>> counter.n_bytes, counter.peak_bytes
    (1200, 800)
    """

    def __init__(self) -> None:
        super().__init__()
        self.n_bytes = 0
        self.peak_bytes = 0
        self._alive = 0

    def _freed(self, n_bytes: int) -> None:
        self._alive -= n_bytes

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        output = func(*args, **(kwargs or {}))
        if any(ret.alias_info is not None for ret in func._schema.returns):
            return output
        for leaf in tree_leaves(output):
            if isinstance(leaf, Tensor):
                size = leaf.numel() * leaf.element_size()
                self.n_bytes += size
                self._alive += size
                weakref.finalize(leaf, self._freed, size)
        self.peak_bytes = max(self.peak_bytes, self._alive)
        return output


def bytes_per_row(values: Any, n_rows: int) -> float:
    """Bytes per row of the tensors in ``values`` that have ``n_rows`` rows."""
    return sum(
        leaf.numel() * leaf.element_size()
        for leaf in tree_leaves(values)
        if isinstance(leaf, Tensor) and leaf.ndim > 0 and leaf.shape[0] == n_rows
    ) / max(n_rows, 1)
