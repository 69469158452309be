"""Running the stochastic passes: trunk once, stacked chunks, or a loop.

The engine turns one batch of inputs into chunks of pass outputs shaped
``(n_passes_in_chunk, n_block_rows, ...)``. How it gets there is its strategy:

- ``"trunk"``: the deterministic part of the model runs once per block, and
  only the stochastic tail runs per pass (see :mod:`._trunk`);
- ``"stacked"``: whole passes, the block repeated along dim 0;
- ``"loop"``: one forward per pass;
- ``"auto"``: trunk where the model splits, else stacked, and a loop for
  models that reject a stacked batch or draw random numbers of their own.

Chunk sizes come from ``max_batch_size`` when the user sets it, else from a
memory budget and the measured allocation of one pass.
"""

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mcdropout._exceptions import (
    ArgumentValueError,
    MCDropoutError,
    ModelOutputError,
)
from mcdropout.dropout import eval_mode
from mcdropout.sampling._batches import Batch, call_model, repeat_rows, slice_rows
from mcdropout.sampling._memory import AllocationCounter, bytes_per_row
from mcdropout.sampling._trunk import (
    SplitUnavailable,
    TrunkSplit,
    split_trunk,
)

__all__ = [
    "CPU_CHUNK_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "PRECISIONS",
    "STRATEGIES",
    "PassEngine",
    "model_device",
    "seeded",
]

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "trunk", "stacked", "loop")
PRECISIONS = ("float32", "bfloat16", "float16")

# Bytes that one chunk of passes may allocate when the user sets no limit:
# small next to any GPU or host this runs on, large enough that small models
# stack all their passes into a few forwards.
DEFAULT_MEMORY_BUDGET = 512 * 2**20

# Rows of the batch used to measure one pass and to verify a trunk split.
_PROBE_ROWS = 16

# On the CPU, stacked passes speed things up only while a chunk's tensors stay
# near the caches: past this many bytes per forward, memory-bound operations
# (dropout masks, activations) make a stacked chunk slower than a loop.
CPU_CHUNK_BYTES = 16 * 2**20

# float64 copies of a chunk's outputs alive at once while its statistics are
# computed (measured: 4.3 for classification, 3.1 for regression).
_STATISTICS_COPIES = 5


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU if none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed the RNGs dropout draws from, restoring their state on exit.

    Without a seed nothing is changed and the global RNG is used as it is.
    """
    if seed is None:
        yield
        return
    cuda_devices = _cuda_devices(device)
    with torch.random.fork_rng(devices=cuda_devices):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _cuda_devices(device: torch.device) -> list[int]:
    """The CUDA device index whose RNG dropout on ``device`` draws from."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _rng_preserved(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.random.fork_rng(devices=_cuda_devices(device))


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for ``precision`` on ``device``; nothing for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    if precision == "float16" and device.type != "cuda":
        raise ArgumentValueError(
            "expected `precision` to be 'float32' or 'bfloat16' for a model on "
            f"{device.type}, got 'float16' (float16 autocast needs CUDA)"
        )
    return torch.autocast(device.type, dtype=getattr(torch, precision))


def _check_tensor(output: object) -> Tensor:
    if not isinstance(output, Tensor):
        raise ModelOutputError(
            "expected the model to return a Tensor, got "
            f"{type(output).__name__}; wrap the model so that its forward "
            "returns the logits (or regression outputs) alone"
        )
    return output


def _signature(model: nn.Module, inputs: Any) -> tuple:
    """What a trunk split and a measurement depend on, batch size aside."""

    def describe(value: Any) -> Any:
        if isinstance(value, Tensor):
            return (tuple(value.shape[1:]), value.dtype, value.device)
        if isinstance(value, dict):
            return tuple((key, describe(item)) for key, item in value.items())
        if isinstance(value, (tuple, list)):
            return tuple(describe(item) for item in value)
        return type(value)

    return describe(inputs), tuple(id(module) for module in model.modules())


@dataclass
class _Plan:
    """How one kind of batch runs: the split (if any), whether whole passes
    may be stacked, and the bytes one pass allocates per row."""

    split: TrunkSplit | None
    stacking: bool = True
    full_bytes_per_row: float | None = None
    pass_bytes_per_row: float | None = None


class PassEngine:
    """Runs the passes of one ``predict`` call.

    Parameters
    ----------
    model : torch.nn.Module
        The model, already in the state the passes run in.
    strategy : str
        One of :data:`STRATEGIES`.
    split_trunk : bool
        Whether a trunk split may be used (Monte Carlo passes in ``"modules"``
        mode, where dropout modules are the only randomness).
    max_batch_size : int or None
        Most rows per forward; None to size chunks from ``memory_budget``.
    memory_budget : int
        Bytes one chunk may allocate, when ``max_batch_size`` is None.
    plans : dict
        A cache of plans, kept by the caller across calls.
    """

    def __init__(
        self,
        model: nn.Module,
        strategy: str = "auto",
        *,
        split_trunk: bool = True,
        max_batch_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        plans: dict | None = None,
    ) -> None:
        self.model = model
        self.strategy = strategy
        self.allow_split = split_trunk and strategy in ("auto", "trunk")
        self.max_batch_size = max_batch_size
        self.memory_budget = memory_budget
        self.plans = {} if plans is None else plans
        self.passes_per_chunk: int | None = None

    def run(
        self, inputs: Batch, n_rows: int, n_passes: int
    ) -> Iterator[tuple[int, int, Tensor]]:
        """Yield ``(start, stop, outputs)``: outputs ``(k, stop - start, ...)``
        of ``k`` passes over rows ``start:stop``, block after block."""
        plan = self._plan(inputs, n_rows, n_passes)
        rows_per_block, passes_per_chunk = self._layout(plan, n_rows)
        if self.passes_per_chunk is None:
            self.passes_per_chunk = passes_per_chunk
        for start in range(0, n_rows, rows_per_block):
            stop = min(start + rows_per_block, n_rows)
            block = slice_rows(inputs, n_rows, start, stop)
            for outputs in self._block(block, stop - start, n_passes, plan):
                yield start, stop, outputs

    def _plan(self, inputs: Batch, n_rows: int, n_passes: int) -> _Plan:
        key = (_signature(self.model, inputs), n_passes > 1)
        # Probing forwards must not consume the random numbers of the passes,
        # so that results do not depend on whether a plan was cached.
        with _rng_preserved(model_device(self.model)):
            if key not in self.plans:
                m = min(n_rows, _PROBE_ROWS)
                probe = slice_rows(inputs, n_rows, 0, m)
                self.plans[key] = self._new_plan(probe, m, stochastic=key[1])
            plan = self.plans[key]
            if self.max_batch_size is None and plan.full_bytes_per_row is None:
                self._measure(plan, inputs, n_rows)
        return plan

    def _new_plan(self, probe: Batch, n_rows: int, stochastic: bool) -> _Plan:
        if not stochastic or self.strategy in ("stacked", "loop"):
            return _Plan(None, stacking=self.strategy != "loop")
        with eval_mode(self.model):
            first = call_model(self.model, probe)
            second = call_model(self.model, probe)
        if not _same(first, second):
            # Noise of the model's own, drawn once per forward, would be
            # shared by the passes of a stacked chunk.
            reason = "two passes with dropout off differ: it draws random numbers"
            return self._unsplit(reason, stacking=False)
        split = self._split(probe, n_rows) if self.allow_split else None
        if split is not None:
            return _Plan(split)
        return _Plan(None, stacking=self._stacks_faithfully(probe, n_rows, first))

    def _split(self, probe: Batch, n_rows: int) -> TrunkSplit | None:
        try:
            split = split_trunk(self.model, probe, n_rows)
        except SplitUnavailable as reason:
            self._unsplit(str(reason), stacking=True)
            return None
        logger.debug("computing the trunk once per batch: %s", split.summary())
        return split

    def _unsplit(self, reason: str, *, stacking: bool) -> _Plan:
        if self.strategy == "trunk":
            raise ArgumentValueError(
                "expected a model whose deterministic trunk can be split off for "
                f"strategy='trunk', got one where {reason}; use strategy='auto'"
            )
        logger.debug("running full passes: %s", reason)
        return _Plan(None, stacking=stacking)

    def _stacks_faithfully(self, probe: Batch, n_rows: int, expected: Any) -> bool:
        """Whether the model, dropout off, gives each copy of a stacked batch
        what it gives the batch alone."""
        try:
            with eval_mode(self.model):
                stacked = call_model(self.model, repeat_rows(probe, n_rows, 2))
            faithful = isinstance(stacked, Tensor) and isinstance(expected, Tensor)
            faithful = faithful and stacked.shape == (2 * n_rows, *expected.shape[1:])
            faithful = faithful and all(
                _same(half, expected) for half in stacked.view(2, *expected.shape)
            )
        except Exception as error:  # any failure means: do not stack
            logger.info("cannot stack passes along the batch (%r); looping", error)
            return False
        if not faithful:
            logger.info(
                "cannot stack passes along the batch (a stacked batch changes "
                "the model's outputs); looping"
            )
        return faithful

    def _measure(self, plan: _Plan, inputs: Batch, n_rows: int) -> None:
        """Peak bytes per row of one whole pass, and of one more stacked pass:
        the tail's (or the model's, with its inputs repeated) and the float64
        statistics of its output."""
        m = min(n_rows, _PROBE_ROWS)
        probe = slice_rows(inputs, n_rows, 0, m)
        with AllocationCounter() as full:
            if plan.split is None:
                output = call_model(self.model, probe)
            else:
                values = plan.split.run_trunk(probe)
                output = plan.split.run_tail(values, 1)
        plan.full_bytes_per_row = max(full.peak_bytes / m, 1.0)
        width = output[0].numel() if isinstance(output, Tensor) and output.ndim else 1
        statistics = _STATISTICS_COPIES * 8 * width
        if plan.split is None:
            extra = bytes_per_row(probe, m)
            plan.pass_bytes_per_row = plan.full_bytes_per_row + extra + statistics
            return
        with AllocationCounter() as tail:
            plan.split.run_tail(values, 1)
        repeated = [v for v, r in zip(values, plan.split.repeated, strict=True) if r]
        extra = bytes_per_row(repeated, m)
        plan.pass_bytes_per_row = max(tail.peak_bytes / m, 1.0) + extra + statistics

    def _layout(self, plan: _Plan, n_rows: int) -> tuple[int, int]:
        """Rows per block, and passes stacked per forward of a block."""
        if self.max_batch_size is not None:
            rows_per_block = min(n_rows, self.max_batch_size)
            return rows_per_block, max(1, self.max_batch_size // rows_per_block)
        budget = self.memory_budget
        rows_per_block = int(min(n_rows, max(1, budget // plan.full_bytes_per_row)))
        if model_device(self.model).type == "cpu":
            budget = min(budget, CPU_CHUNK_BYTES)
        rows_per_forward = budget // plan.pass_bytes_per_row
        passes_per_chunk = int(max(1, rows_per_forward // rows_per_block))
        if self.passes_per_chunk is not None:
            passes_per_chunk = min(passes_per_chunk, self.passes_per_chunk)
        return rows_per_block, passes_per_chunk

    def _block(
        self, block: Batch, n_rows: int, n_passes: int, plan: _Plan
    ) -> Iterator[Tensor]:
        values = plan.split.run_trunk(block) if plan.split is not None else None
        done = 0
        while done < n_passes:
            k = min(self.passes_per_chunk, n_passes - done)
            try:
                if values is not None:
                    outputs = self._tail(plan.split, values, n_rows, k)
                else:
                    outputs = self._passes(block, n_rows, k, plan)
            except torch.OutOfMemoryError:
                if k == 1:
                    raise
                self.passes_per_chunk = k // 2
                logger.warning(
                    "out of memory running %d passes of %d inputs at once; "
                    "retrying with %d",
                    k,
                    n_rows,
                    self.passes_per_chunk,
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            done += k
            yield outputs

    def _tail(
        self, split: TrunkSplit, values: tuple, n_rows: int, n_passes: int
    ) -> Tensor:
        output = _check_tensor(split.run_tail(values, n_passes))
        return output.view(n_passes, n_rows, *output.shape[1:])

    def _passes(self, inputs: Batch, n_rows: int, n_passes: int, plan: _Plan) -> Tensor:
        if plan.stacking and n_passes > 1:
            stacked = self._stacked(inputs, n_rows, n_passes, plan)
            if stacked is not None:
                return stacked
        outputs = [
            _check_tensor(call_model(self.model, inputs)) for _ in range(n_passes)
        ]
        return torch.stack(outputs)

    def _stacked(
        self, inputs: Batch, n_rows: int, n_passes: int, plan: _Plan
    ) -> Tensor | None:
        try:
            output = _check_tensor(
                call_model(self.model, repeat_rows(inputs, n_rows, n_passes))
            )
        except (MCDropoutError, torch.OutOfMemoryError):
            raise
        except Exception as error:
            if self.strategy == "stacked":
                raise ModelOutputError(
                    f"the model failed on {n_passes} stacked passes of {n_rows} "
                    f"inputs ({error!r}); use strategy='loop' or 'auto'"
                ) from error
            self._fall_back(plan, f"the stacked forward raised {error!r}")
            return None
        if output.ndim == 0 or output.shape[0] != n_passes * n_rows:
            if self.strategy == "stacked":
                raise ModelOutputError(
                    f"expected the model to return {n_passes * n_rows} rows for "
                    f"{n_passes} stacked passes of {n_rows} inputs, got shape "
                    f"{tuple(output.shape)}; use strategy='loop'"
                )
            self._fall_back(plan, f"it returned shape {tuple(output.shape)}")
            return None
        return output.view(n_passes, n_rows, *output.shape[1:])

    def _fall_back(self, plan: _Plan, reason: str) -> None:
        logger.info("cannot stack passes along the batch (%s); looping", reason)
        plan.stacking = False


def _same(first: Any, second: Any) -> bool:
    """Whether two outputs of the model are the same tensor values."""
    return (
        isinstance(first, Tensor)
        and isinstance(second, Tensor)
        and first.shape == second.shape
        and torch.allclose(first, second, rtol=1e-4, atol=1e-5, equal_nan=True)
    )
