"""Measuring how much memory one pass allocates, on any device."""

from typing import Any

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["AllocationCounter"]


class AllocationCounter(TorchDispatchMode):
    """Counts the bytes of every tensor the operations inside it create.

    Views, which share their input's storage, are not counted. The sum is an
    upper bound on the activation memory a forward needs, since some of those
    tensors are freed before others are made; it works the same on CPU and
    CUDA, where allocator statistics would only cover CUDA.
    """

    def __init__(self) -> None:
        super().__init__()
        self.n_bytes = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        output = func(*args, **(kwargs or {}))
        aliases = any(ret.alias_info is not None for ret in func._schema.returns)
        if not aliases:
            self.n_bytes += sum(
                leaf.numel() * leaf.element_size()
                for leaf in tree_leaves(output)
                if isinstance(leaf, Tensor)
            )
        return output
