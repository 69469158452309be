"""The wrapped model's raw outputs, pass by pass, and re-configured wrappers.

Fitting a temperature needs every pass's logits, which ``MCDropout.predict``
does not keep (its samples are probabilities); ``MCDropout.sample_outputs``
returns them, drawn exactly as ``predict`` draws them.
"""

import inspect
from collections.abc import Iterable
from typing import Any

from torch import Tensor

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from mcdropout.sampling import MCDropout
from mcdropout.sampling._batches import Batch

__all__ = ["check_mc", "collect_outputs", "reconfigured"]


def check_mc(mc: object, task: str) -> MCDropout:
    """``mc`` if it is an MCDropout of ``task``, else raise."""
    if not isinstance(mc, MCDropout):
        raise ArgumentTypeError(
            f"expected `mc` to be an mcdropout.MCDropout, got {type(mc).__name__}"
        )
    if mc.task != task:
        raise ArgumentValueError(
            f"expected `mc` with task={task!r}, got task={mc.task!r}"
        )
    return mc


def reconfigured(mc: MCDropout, **changes: Any) -> MCDropout:
    """A new MCDropout around the same model with some options changed.

    Every other constructor option is read back from ``mc``, so the copy
    runs exactly as ``mc`` does; ``mc`` itself is left unchanged.
    """
    names = list(inspect.signature(MCDropout.__init__).parameters)[2:]
    options = {name: getattr(mc, name) for name in names}
    options.update(changes)
    return MCDropout(mc.model, **options)


def collect_outputs(
    mc: MCDropout,
    inputs: Batch | Iterable,
    targets: Tensor | None = None,
    *,
    deterministic: bool = False,
) -> tuple[Tensor, Tensor]:
    """Raw outputs of every pass over the inputs, and their targets.

    The passes are :meth:`MCDropout.sample_outputs`, run exactly as
    ``predict`` runs them, so with a seed a fitted setting reproduces its
    score.

    Returns
    -------
    outputs : Tensor
        ``(n_passes, n_inputs, n_classes)`` on the CPU, in the model's
        dtype; ``n_passes`` is 1 with ``deterministic`` (dropout off).
    targets : Tensor
        ``(n_inputs,)`` targets, from ``targets`` or the batches.
    """
    outputs, collected = mc.sample_outputs(
        inputs, targets=targets, deterministic=deterministic
    )
    if collected is None:
        raise ArgumentValueError(
            "expected targets to fit on: pass `targets` with a single batch, or "
            "an iterable of (inputs, targets) pairs; got inputs without targets"
        )
    if collected.ndim != 1:
        raise ArgumentValueError(
            "expected one class index per input as targets, got shape "
            f"{tuple(collected.shape)}"
        )
    return outputs, collected
