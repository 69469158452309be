"""Running the stochastic passes: stacked into batched forwards, or looped."""

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from mcdropout._exceptions import MCDropoutError, ModelOutputError
from mcdropout.sampling._batches import Batch, call_model, repeat_rows

__all__ = ["STRATEGIES", "PassEngine", "model_device", "seeded"]

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "stacked", "loop")


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
    cuda_devices = []
    if device.type == "cuda":
        cuda_devices = [
            device.index if device.index is not None else torch.cuda.current_device()
        ]
    with torch.random.fork_rng(devices=cuda_devices):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _check_tensor(output: object) -> Tensor:
    if not isinstance(output, Tensor):
        raise ModelOutputError(
            "expected the model to return a Tensor, got "
            f"{type(output).__name__}; wrap the model so that its forward "
            "returns the logits (or regression outputs) alone"
        )
    return output


class PassEngine:
    """Runs ``k`` passes of one block of inputs per call.

    ``strategy="stacked"`` repeats the block ``k`` times along dim 0 and runs
    one forward; ``"loop"`` runs ``k`` forwards; ``"auto"`` stacks and falls
    back to the loop for the rest of the run if the model rejects a stacked
    batch (for example one that reshapes with a fixed batch size).
    """

    def __init__(self, model: nn.Module, strategy: str = "auto") -> None:
        self.model = model
        self.strategy = strategy
        self.stacking = strategy != "loop"

    def passes(self, inputs: Batch, n_rows: int, n_passes: int) -> Tensor:
        """Outputs of ``n_passes`` passes, shaped ``(n_passes, n_rows, ...)``."""
        if self.stacking and n_passes > 1:
            stacked = self._stacked(inputs, n_rows, n_passes)
            if stacked is not None:
                return stacked
        outputs = [
            _check_tensor(call_model(self.model, inputs)) for _ in range(n_passes)
        ]
        return torch.stack(outputs)

    def _stacked(self, inputs: Batch, n_rows: int, n_passes: int) -> Tensor | None:
        try:
            output = _check_tensor(
                call_model(self.model, repeat_rows(inputs, n_rows, n_passes))
            )
        except (MCDropoutError, torch.OutOfMemoryError):
            raise
        except Exception as error:
            if self.strategy == "stacked":
                raise
            self._fall_back(f"the stacked forward raised {error!r}")
            return None
        if output.ndim == 0 or output.shape[0] != n_passes * n_rows:
            if self.strategy == "stacked":
                raise ModelOutputError(
                    f"expected the model to return {n_passes * n_rows} rows for "
                    f"{n_passes} stacked passes of {n_rows} inputs, got shape "
                    f"{tuple(output.shape)}; use strategy='loop'"
                )
            self._fall_back(f"it returned shape {tuple(output.shape)}")
            return None
        return output.view(n_passes, n_rows, *output.shape[1:])

    def _fall_back(self, reason: str) -> None:
        logger.info("cannot stack passes along the batch (%s); looping", reason)
        self.stacking = False
