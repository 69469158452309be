"""The wrapped model's raw outputs, pass by pass, and re-configured wrappers.

Fitting a temperature needs every pass's logits, which ``MCDropout.predict``
does not keep (its samples are probabilities). The passes here run through
the same engine, flags, seed, precision and chunking as ``predict``, so that
with a seed they draw the same dropout masks and a fitted setting reproduces
its score.
"""

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    ModelOutputError,
)
from mcdropout.dropout import enable_dropout, eval_mode
from mcdropout.sampling import MCDropout, PassEngine, seeded
from mcdropout.sampling._batches import Batch, batch_size, iter_batches, to_device
from mcdropout.sampling._engine import autocast, model_device

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


@contextlib.contextmanager
def _passes_state(mc: MCDropout, deterministic: bool) -> Iterator[None]:
    with eval_mode(mc.model):
        if deterministic:
            yield
            return
        with enable_dropout(mc.model, mc.mode, check=False):
            yield


def _checked_chunk(outputs: Tensor) -> Tensor:
    if not torch.isfinite(outputs).all():
        raise ModelOutputError(
            "expected finite model outputs, got NaN or infinite values in a "
            f"chunk of {outputs.shape[0]} pass(es)"
        )
    if outputs.ndim != 3:
        raise ModelOutputError(
            "expected the classification model to return logits of shape "
            f"(n_inputs, n_classes), got shape {tuple(outputs.shape[1:])}"
        )
    return outputs.cpu()


def _batch_outputs(
    engine: PassEngine, batch: Batch, n_rows: int, n_passes: int
) -> Tensor:
    """``(n_passes, n_rows, n_classes)`` outputs of one batch, on the CPU."""
    blocks: dict[int, list[Tensor]] = {}
    for start, _, outputs in engine.run(batch, n_rows, n_passes):
        blocks.setdefault(start, []).append(_checked_chunk(outputs))
    return torch.cat([torch.cat(chunks) for chunks in blocks.values()], dim=1)


def _batch_targets(targets: Any, n_rows: int, index: int) -> Tensor | None:
    if targets is None:
        return None
    targets = torch.as_tensor(targets).detach().cpu()
    if targets.ndim != 1 or targets.shape[0] != n_rows:
        raise ArgumentValueError(
            f"expected the targets of batch {index} to have shape ({n_rows},), "
            f"one class index per input, got shape {tuple(targets.shape)}"
        )
    return targets


def _joined_targets(parts: list[Tensor | None]) -> Tensor:
    missing = [index for index, part in enumerate(parts) if part is None]
    if missing:
        raise ArgumentValueError(
            "expected targets with every batch of `inputs` (or `targets` with a "
            f"single batch) to fit on, got none for batch {missing[0]}"
        )
    return torch.cat(parts)


def collect_outputs(
    mc: MCDropout,
    inputs: Batch | Iterable,
    targets: Tensor | None = None,
    *,
    deterministic: bool = False,
) -> tuple[Tensor, Tensor]:
    """Raw outputs of every pass over the inputs, and their targets.

    Returns
    -------
    outputs : Tensor
        ``(n_passes, n_inputs, n_classes)`` on the CPU, in the model's
        dtype; ``n_passes`` is 1 with ``deterministic`` (dropout off).
    targets : Tensor
        ``(n_inputs,)`` targets, from ``targets`` or the batches.
    """
    n_passes = 1 if deterministic else mc.n_passes
    device = model_device(mc.model)
    # Built as MCDropout.predict builds it, so that chunks, and with a seed
    # the dropout masks drawn, are the same.
    engine = PassEngine(
        mc.model,
        mc.strategy,
        split_trunk=mc.mode == "modules",
        max_batch_size=mc.max_batch_size,
        memory_budget=mc.memory_budget,
    )

    outputs, target_parts = [], []
    with (
        _passes_state(mc, deterministic),
        torch.inference_mode(),
        seeded(mc.seed, device),
        autocast(mc.precision, device),
    ):
        for index, (batch, batch_targets) in enumerate(iter_batches(inputs, targets)):
            n_rows = batch_size(batch)
            if n_rows == 0:
                raise ArgumentValueError(
                    f"expected batch {index} of `inputs` to have rows, got 0"
                )
            target_parts.append(_batch_targets(batch_targets, n_rows, index))
            batch = to_device(batch, device)
            outputs.append(_batch_outputs(engine, batch, n_rows, n_passes))

    if not outputs:
        raise ArgumentValueError(
            "expected `inputs` to yield at least one batch, got an empty iterable"
        )
    return torch.cat(outputs, dim=1), _joined_targets(target_parts)
