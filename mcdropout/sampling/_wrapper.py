"""``MCDropout``: the wrapper users put around a trained model."""

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    MCDropoutWarning,
    ModelOutputError,
)
from mcdropout._validation import (
    check_choice,
    check_optional_positive_float,
    check_optional_positive_int,
    check_positive_int,
)
from mcdropout.dropout import MODES, enable_dropout, eval_mode
from mcdropout.predictions import (
    ClassificationPrediction,
    ClassificationStatistics,
    RegressionPrediction,
    RegressionStatistics,
    log_probs_from_logits,
)
from mcdropout.sampling._batches import Batch, batch_size, iter_batches, to_device
from mcdropout.sampling._engine import (
    DEFAULT_MEMORY_BUDGET,
    PRECISIONS,
    STRATEGIES,
    PassEngine,
    autocast,
    model_device,
    seeded,
)

__all__ = ["TASKS", "MCDropout"]

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression")

Prediction = ClassificationPrediction | RegressionPrediction
Statistics = ClassificationStatistics | RegressionStatistics


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"expected `{name}` to be True or False, got {value!r}")
    return value


def _check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError(
            f"expected `seed` to be None or a non-negative integer, got {seed!r}"
        )
    if seed < 0:
        raise ArgumentValueError(
            f"expected `seed` to be None or a non-negative integer, got {seed!r}"
        )
    return seed


class MCDropout(nn.Module):
    """Monte Carlo dropout around a trained model.

    Keeps the model's dropout on at inference, runs ``n_passes`` stochastic
    forward passes per input and aggregates them, streaming, into a
    predictive distribution with its uncertainty (Gal & Ghahramani, 2016).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model. Classification models return logits
        ``(n_inputs, n_classes)`` (a single column is read as a binary
        model's logit of class 1); regression models return
        ``(n_inputs, n_outputs)`` or ``(n_inputs,)``.
    n_passes : int, default 50
        Number of stochastic forward passes T.
    task : {"classification", "regression"}, default "classification"
    mode : {"modules", "train_except_norm"}, default "modules"
        How dropout is switched on; see :func:`mcdropout.enable_dropout`.
        Every other module runs in eval mode whatever its flag, so BatchNorm
        uses (and never updates) its running statistics.
    seed : int or None, default None
        With a seed every call draws the same dropout masks, so results repeat
        exactly; the caller's RNG state is left as it was. Without one the
        global RNG is used.
    keep_samples : bool, default False
        Keep every pass's output in ``prediction.samples``. Off, memory does
        not grow with ``n_passes``.
    max_batch_size : int or None, default None
        Most rows per forward. Passes are stacked along the batch dimension
        (the batch repeated ``k`` times) in chunks of at most this many rows;
        a batch larger than it is split. None sizes chunks from
        ``memory_budget`` instead.
    heteroscedastic : bool, default False
        Regression only: the model returns ``(n_inputs, 2 * n_outputs)``,
        predicted means then log-variances.
    noise_precision : float or None, default None
        Regression only: the model precision tau; ``1 / tau`` is added to the
        aleatoric variance.
    progress : bool, default False
        Show a progress bar over the batches of an iterable input.
    strategy : {"auto", "trunk", "stacked", "loop"}, default "auto"
        ``"trunk"`` computes the part of the model that no dropout influences
        once per batch and runs only the rest per pass (``torch.fx``; mode
        ``"modules"`` only); ``"stacked"`` runs whole passes, stacked into one
        batched forward per chunk; ``"loop"`` one forward per pass. ``"auto"``
        uses the trunk where the model splits, else stacks, and loops for
        models that reject a stacked batch or draw random numbers other than
        through dropout modules.
    temperature : float or None, default None
        Classification only: each pass's logits are divided by it before the
        softmax (temperature scaling).
    memory_budget : int, default 512 MiB
        Bytes one chunk of passes may allocate when ``max_batch_size`` is
        None. One pass is measured on a few inputs (the peak bytes of the
        tensors alive at once, per row, plus the repeated inputs and float64
        statistics of each extra pass); blocks of inputs and chunks of
        stacked passes are sized to fit. On the CPU a stacked forward is
        also capped at 16 MiB, past which stacking is slower than looping.
        On CUDA an out-of-memory error halves the chunk and retries.
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        Run the passes under ``torch.autocast`` in this dtype (``"float16"``
        on CUDA only); statistics are accumulated in float64 either way.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(
    ...     nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)
    ... )
    >>> mc = MCDropout(model, n_passes=20, seed=0)
    >>> prediction = mc.predict(torch.randn(8, 4))
    >>> prediction.probs.shape, prediction.mutual_information.shape
    (torch.Size([8, 3]), torch.Size([8]))
    """

    def __init__(
        self,
        model: nn.Module,
        n_passes: int = 50,
        *,
        task: str = "classification",
        mode: str = "modules",
        seed: int | None = None,
        keep_samples: bool = False,
        max_batch_size: int | None = None,
        heteroscedastic: bool = False,
        noise_precision: float | None = None,
        progress: bool = False,
        strategy: str = "auto",
        temperature: float | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ArgumentTypeError(
                f"expected `model` to be a torch.nn.Module, got {type(model).__name__}"
            )
        self.model = model

        # What is computed.
        self.n_passes = check_positive_int("n_passes", n_passes)
        self.task = check_choice("task", task, TASKS)
        self.mode = check_choice("mode", mode, MODES)
        self.seed = _check_seed(seed)
        self.keep_samples = _check_bool("keep_samples", keep_samples)
        self.heteroscedastic = _check_bool("heteroscedastic", heteroscedastic)
        self.noise_precision = check_optional_positive_float(
            "noise_precision", noise_precision
        )
        self.temperature = check_optional_positive_float("temperature", temperature)
        self._check_task_options()

        # How it is computed: chunking and strategy change speed and memory only.
        self.strategy = check_choice("strategy", strategy, STRATEGIES)
        self.max_batch_size = check_optional_positive_int(
            "max_batch_size", max_batch_size
        )
        self.memory_budget = check_positive_int("memory_budget", memory_budget)
        self.precision = check_choice("precision", precision, PRECISIONS)
        self.progress = _check_bool("progress", progress)
        # Trunk splits and pass measurements, by kind of batch.
        self._plans: dict = {}
        # Fail now, not at the first predict, if there is nothing to switch on.
        with enable_dropout(model, mode):
            pass

    def _check_task_options(self) -> None:
        if self.task == "classification":
            for name in ("heteroscedastic", "noise_precision"):
                if getattr(self, name) not in (None, False):
                    raise ArgumentValueError(
                        f"`{name}` applies to task='regression' only, got "
                        f"{name}={getattr(self, name)!r} with task='classification'"
                    )
        elif self.temperature is not None:
            raise ArgumentValueError(
                "`temperature` applies to task='classification' only, got "
                f"temperature={self.temperature!r} with task='regression'"
            )

    def extra_repr(self) -> str:
        return f"n_passes={self.n_passes}, task={self.task!r}, mode={self.mode!r}"

    def forward(self, *args: Any, **kwargs: Any) -> Prediction:
        """Predict one batch: ``mc(x)``, ``mc(x1, x2)`` or ``mc(**inputs)``.

        The same as :meth:`predict` on that batch.
        """
        if kwargs and args:
            raise ArgumentValueError(
                "expected positional or keyword inputs, not both; pass a dict "
                "to predict() for keyword inputs"
            )
        inputs = kwargs if kwargs else (args[0] if len(args) == 1 else args)
        return self.predict(inputs)

    def predict(
        self,
        inputs: Batch | Iterable,
        *,
        targets: Tensor | None = None,
        deterministic: bool = False,
    ) -> Prediction:
        """Run the passes and aggregate them into a prediction.

        Parameters
        ----------
        inputs : Tensor, tuple, list, dict, or iterable of batches
            One batch (a Tensor is called as ``model(x)``, a tuple or list as
            ``model(*x)``, a dict as ``model(**x)``), or an iterable of
            batches such as a DataLoader, whose items are inputs alone or
            ``(inputs, targets)`` pairs.
        targets : Tensor or None
            Targets of a single batch; iterables carry their own.
        deterministic : bool, default False
            Return the ordinary dropout-off prediction instead (one pass in
            eval mode, zero spread), as the same kind of object.

        Returns
        -------
        ClassificationPrediction or RegressionPrediction
            CPU tensors, one row per input in input order.

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 3))
        >>> mc = MCDropout(model, n_passes=30, seed=0)
        >>> x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
        >>> prediction = mc.predict(DataLoader(TensorDataset(x, y), batch_size=4))
        >>> len(prediction), torch.equal(prediction.targets, y)
        (10, True)
        >>> baseline = mc.predict(x, deterministic=True)
        >>> baseline.n_passes, float(baseline.mutual_information.max())
        (1, 0.0)
        """
        parts: list[Statistics] = []
        target_parts: list[Tensor | None] = []
        for batch_targets, chunks in self._run(inputs, targets, deterministic):
            blocks: dict[int, Statistics] = {}
            for start, outputs in chunks:
                chunk = self._statistics(outputs)
                blocks[start] = blocks[start].merge(chunk) if start in blocks else chunk
            stats = list(blocks.values())
            parts.append(stats[0] if len(stats) == 1 else type(stats[0]).cat(stats))
            target_parts.append(batch_targets)
        return self._finish(parts, target_parts)

    def sample_outputs(
        self,
        inputs: Batch | Iterable,
        *,
        targets: Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Every pass's raw model output, and the targets.

        The passes run exactly as in :meth:`predict` (same flags, seed,
        chunking and precision, so with a seed the same dropout masks), but
        nothing is aggregated: use it to fit something on the raw outputs,
        such as a temperature on the logits. Memory grows with
        ``n_passes * n_inputs``.

        Returns
        -------
        outputs : Tensor
            ``(n_passes, n_inputs, *output_shape)`` on the CPU, in the model's
            dtype; ``n_passes`` is 1 with ``deterministic=True``.
        targets : Tensor or None
            ``(n_inputs, ...)`` targets, when the inputs carried them.

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 3))
        >>> logits, _ = MCDropout(model, n_passes=5).sample_outputs(torch.randn(8, 4))
        >>> logits.shape
        torch.Size([5, 8, 3])
        """
        parts: list[Tensor] = []
        target_parts: list[Tensor | None] = []
        for batch_targets, chunks in self._run(inputs, targets, deterministic):
            blocks: dict[int, list[Tensor]] = {}
            for start, outputs in chunks:
                self._check_outputs(outputs)
                blocks.setdefault(start, []).append(outputs.cpu())
            parts.append(torch.cat([torch.cat(c) for c in blocks.values()], dim=1))
            target_parts.append(batch_targets)
        _check_not_empty(parts)
        return torch.cat(parts, dim=1), _cat_targets(target_parts)

    def _run(
        self, inputs: Batch | Iterable, targets: Tensor | None, deterministic: bool
    ) -> Iterator[tuple[Tensor | None, Iterator[tuple[int, Tensor]]]]:
        """Per batch: its targets, and its chunks ``(first_row, outputs)``.

        Outputs are ``(k, n_block_rows, ...)``; each batch's chunks must be
        consumed before the next batch is drawn.
        """
        _check_bool("deterministic", deterministic)
        n_passes = 1 if deterministic else self.n_passes
        device = model_device(self.model)
        engine = PassEngine(
            self.model,
            self.strategy,
            split_trunk=self.mode == "modules",
            max_batch_size=self.max_batch_size,
            memory_budget=self.memory_budget,
            plans=self._plans,
        )
        batches = iter_batches(inputs, targets)
        if self.progress and not isinstance(inputs, (Tensor, tuple, list, dict)):
            total = len(inputs) if hasattr(inputs, "__len__") else None
            # Imported here: tqdm.auto warns on import in Jupyter without widgets.
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=total, desc="MC dropout", unit="batch")

        with (
            self._model_state(deterministic),
            torch.inference_mode(),
            seeded(self.seed, device),
            autocast(self.precision, device),
        ):
            for index, (batch, batch_targets) in enumerate(batches):
                n_rows = batch_size(batch)
                if n_rows == 0:
                    raise ArgumentValueError(
                        f"expected batch {index} of `inputs` to have rows, got 0"
                    )
                checked = _as_targets(batch_targets, n_rows, index)
                batch = to_device(batch, device)
                run = engine.run(batch, n_rows, n_passes)
                yield checked, ((start, outputs) for start, _, outputs in run)

    @contextlib.contextmanager
    def _model_state(self, deterministic: bool) -> Iterator[None]:
        with eval_mode(self.model):
            if deterministic:
                yield
                return
            with enable_dropout(self.model, self.mode, check=False):
                yield

    def _check_outputs(self, outputs: Tensor) -> None:
        """Refuse a chunk ``(k, n_rows, ...)`` that cannot be aggregated."""
        _check_finite(outputs)
        if self.task == "classification" and outputs.ndim != 3:
            raise ModelOutputError(
                "expected the classification model to return logits of shape "
                f"(n_inputs, n_classes), got shape {tuple(outputs.shape[1:])}"
            )
        if self.heteroscedastic and (outputs.ndim != 3 or outputs.shape[-1] % 2):
            raise ModelOutputError(
                "expected the heteroscedastic model to return shape "
                "(n_inputs, 2 * n_outputs), means then log-variances, got shape "
                f"{tuple(outputs.shape[1:])}"
            )

    def _statistics(self, outputs: Tensor) -> Statistics:
        """Statistics of one chunk of outputs ``(k, n_rows, ...)``."""
        self._check_outputs(outputs)
        if self.task == "classification":
            log_probs = log_probs_from_logits(outputs, self.temperature)
            return ClassificationStatistics.of(log_probs, self.keep_samples)
        if not self.heteroscedastic:
            return RegressionStatistics.of(outputs, keep_samples=self.keep_samples)
        means, log_variances = outputs.double().chunk(2, dim=-1)
        return RegressionStatistics.of(
            means, log_variances.exp(), keep_samples=self.keep_samples
        )

    def _finish(
        self, parts: list[Statistics], target_parts: list[Tensor | None]
    ) -> Prediction:
        _check_not_empty(parts)
        stats = (type(parts[0]).cat(parts) if len(parts) > 1 else parts[0]).cpu()
        targets = _cat_targets(target_parts)
        moments = stats.probs if self.task == "classification" else stats.means
        # Identical passes leave only rounding in the variance.
        rounding = (1e-9 * moments.mean.abs()).square()
        if moments.count > 1 and (moments.variance <= rounding).all():
            warnings.warn(
                f"all {moments.count} passes gave identical outputs, so every "
                "uncertainty is zero: dropout had no effect in mode="
                f"{self.mode!r}. Models that apply dropout functionally or "
                "through fused kernels (nn.MultiheadAttention, "
                "nn.TransformerEncoderLayer) need mode='train_except_norm'.",
                MCDropoutWarning,
                stacklevel=3,
            )
        if self.task == "classification":
            targets = _class_targets(targets)
            return ClassificationPrediction.from_statistics(stats, targets)
        return RegressionPrediction.from_statistics(
            stats, targets, self.noise_precision
        )


def _check_not_empty(parts: list) -> None:
    if not parts:
        raise ArgumentValueError(
            "expected `inputs` to yield at least one batch, got an empty iterable"
        )


def _check_finite(outputs: Tensor) -> None:
    finite = torch.isfinite(outputs)
    if not finite.all():
        n_bad = int(finite.numel() - finite.sum())
        raise ModelOutputError(
            f"expected finite model outputs, got {n_bad} NaN or infinite value(s) "
            f"out of {finite.numel()} in a chunk of {outputs.shape[0]} pass(es)"
        )


def _as_targets(targets: Any, n_rows: int, index: int) -> Tensor | None:
    if targets is None:
        return None
    targets = torch.as_tensor(targets).detach().cpu()
    if targets.ndim == 0 or targets.shape[0] != n_rows:
        raise ArgumentValueError(
            f"expected `targets` of batch {index} to have {n_rows} rows like its "
            f"inputs, got shape {tuple(targets.shape)}"
        )
    return targets


def _class_targets(targets: Tensor | None) -> Tensor | None:
    """One class index per input: a column of them becomes a vector."""
    if targets is None:
        return None
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim != 1:
        raise ArgumentValueError(
            "expected classification `targets` with one class index per input, "
            f"shape (n_inputs,), got shape {tuple(targets.shape)}"
        )
    return targets


def _cat_targets(parts: list[Tensor | None]) -> Tensor | None:
    given = [part is not None for part in parts]
    if not any(given):
        return None
    if not all(given):
        missing = given.index(False)
        raise ArgumentValueError(
            "expected every batch of `inputs` to carry targets or none to, got "
            f"batch {missing} without targets"
        )
    return torch.cat(parts)
