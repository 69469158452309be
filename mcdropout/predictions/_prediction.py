"""What a Monte Carlo dropout prediction returns to the user."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from mcdropout._validation import check_probability
from mcdropout.predictions._statistics import (
    ClassificationStatistics,
    RegressionStatistics,
)

__all__ = ["ClassificationPrediction", "RegressionPrediction"]


def _entropy(probs: Tensor) -> Tensor:
    # xlogy gives 0 log 0 = 0 for classes no pass ever gave mass to.
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def _targets_column(frame: pd.DataFrame, targets: Tensor | None) -> None:
    if targets is not None:
        values = targets.reshape(len(targets), -1).numpy()
        column = values[:, 0] if values.shape[1] == 1 else list(values)
        frame.insert(0, "target", column)


@dataclass(frozen=True, repr=False)
class ClassificationPrediction:
    """Predictive distribution of a classifier under Monte Carlo dropout.

    All tensors are on the CPU, statistics in float64. ``n_inputs`` rows, one
    per input, in input order.

    Attributes
    ----------
    probs : Tensor
        ``(n_inputs, n_classes)``: mean over passes of the softmax,
        :math:`\\bar p_k = \\frac1T \\sum_t p_{tk}`.
    variance : Tensor
        ``(n_inputs, n_classes)``: variance over passes of the softmax,
        :math:`\\frac1T \\sum_t (p_{tk} - \\bar p_k)^2`.
    predictive_entropy : Tensor
        ``(n_inputs,)``: :math:`H[\\bar p] = -\\sum_k \\bar p_k \\log \\bar p_k`,
        in nats; total uncertainty.
    expected_entropy : Tensor
        ``(n_inputs,)``: :math:`\\frac1T \\sum_t H[p_t]`, the aleatoric part.
    mutual_information : Tensor
        ``(n_inputs,)``: predictive minus expected entropy (BALD), the
        epistemic part; never negative (rounding below zero is clipped).
    variation_ratio : Tensor
        ``(n_inputs,)``: 1 minus the share of passes whose argmax is the modal
        class; in [0, 1 - 1/n_classes].
    n_passes : int
        Number of stochastic passes (1 for a deterministic prediction).
    targets : Tensor or None
        The targets when the input provided them.
    samples : Tensor or None
        ``(n_passes, n_inputs, n_classes)`` per-pass softmax (float32), only
        when samples were kept.

    Examples
    --------
    Two passes over one input, one saying (0.5, 0.5), the other (0.9, 0.1):

    >>> import torch
    >>> from mcdropout.predictions import ClassificationStatistics
    >>> probs = torch.tensor([[[0.5, 0.5]], [[0.9, 0.1]]], dtype=torch.float64)
    >>> stats = ClassificationStatistics.of(probs.log())
    >>> prediction = ClassificationPrediction.from_statistics(stats)
    >>> prediction.probs.tolist(), prediction.variance.round(decimals=6).tolist()
    ([[0.7, 0.3]], [[0.04, 0.04]])
    >>> round(float(prediction.mutual_information), 4)
    0.1017
    >>> prediction.to_frame()[["predicted", "confidence"]]
       predicted  confidence
    0          0         0.7
    """

    probs: Tensor
    variance: Tensor
    predictive_entropy: Tensor
    expected_entropy: Tensor
    mutual_information: Tensor
    variation_ratio: Tensor
    n_passes: int
    targets: Tensor | None = None
    samples: Tensor | None = None

    @classmethod
    def from_statistics(
        cls, stats: ClassificationStatistics, targets: Tensor | None = None
    ) -> ClassificationPrediction:
        """Finish streaming statistics into a prediction."""
        n_passes = stats.probs.count
        probs = stats.probs.mean
        predictive = _entropy(probs)
        expected = stats.entropy_sum / n_passes
        modal_votes = stats.votes.max(dim=-1).values
        return cls(
            probs=probs,
            variance=stats.probs.variance,
            predictive_entropy=predictive,
            expected_entropy=expected,
            mutual_information=(predictive - expected).clamp(min=0.0),
            variation_ratio=1.0 - modal_votes.double() / n_passes,
            n_passes=n_passes,
            targets=targets,
            samples=stats.samples,
        )

    def __len__(self) -> int:
        return self.probs.shape[0]

    def __repr__(self) -> str:
        n_inputs, n_classes = self.probs.shape
        return (
            f"{type(self).__name__}(n_inputs={n_inputs}, n_classes={n_classes}, "
            f"n_passes={self.n_passes}, targets={self.targets is not None}, "
            f"samples={self.samples is not None})"
        )

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self.probs.shape[1]

    @property
    def confidence(self) -> Tensor:
        """``(n_inputs,)``: the largest mean probability of each input."""
        return self.probs.max(dim=-1).values

    @property
    def predicted(self) -> Tensor:
        """``(n_inputs,)``: the class of largest mean probability (int64)."""
        return self.probs.argmax(dim=-1)

    @property
    def correct(self) -> Tensor | None:
        """``(n_inputs,)`` bool: whether the prediction matches the target."""
        return None if self.targets is None else self.predicted == self.targets

    def to_frame(self) -> pd.DataFrame:
        """One row per input: target (when known), predicted class, confidence,
        each uncertainty measure, and the mean probability of each class
        (``prob_0`` ...)."""
        frame = pd.DataFrame(
            {
                "predicted": self.predicted.numpy(),
                "confidence": self.confidence.numpy(),
                "predictive_entropy": self.predictive_entropy.numpy(),
                "expected_entropy": self.expected_entropy.numpy(),
                "mutual_information": self.mutual_information.numpy(),
                "variation_ratio": self.variation_ratio.numpy(),
            }
        )
        _targets_column(frame, self.targets)
        probs = self.probs.numpy()
        for k in range(self.n_classes):
            frame[f"prob_{k}"] = probs[:, k]
        return frame


@dataclass(frozen=True, repr=False)
class RegressionPrediction:
    """Predictive distribution of a regression model under Monte Carlo dropout.

    All tensors are on the CPU, statistics in float64, with shape
    ``(n_inputs, *output_shape)`` where ``output_shape`` is the model's
    per-input output shape (``(n_outputs,)``, or ``()`` for a model that
    returns one number per input).

    Attributes
    ----------
    mean : Tensor
        Mean over passes of the predicted means.
    epistemic_variance : Tensor
        Variance over passes of the predicted means (divided by n_passes).
    aleatoric_variance : Tensor
        Mean over passes of the predicted variances (heteroscedastic models),
        plus ``1 / noise_precision`` when it was given, else 0.
    n_passes : int
        Number of stochastic passes (1 for a deterministic prediction).
    targets : Tensor or None
        The targets when the input provided them.
    samples : Tensor or None
        ``(n_passes, n_inputs, *output_shape)`` per-pass predicted means
        (float32), only when samples were kept.

    Examples
    --------
    Two passes predicting 1 and 3 for one input, with noise precision 4:

    >>> import torch
    >>> from mcdropout.predictions import RegressionStatistics
    >>> means = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> stats = RegressionStatistics.of(means)
    >>> prediction = RegressionPrediction.from_statistics(stats, noise_precision=4.0)
    >>> prediction.mean.tolist(), prediction.epistemic_variance.tolist()
    ([2.0], [1.0])
    >>> prediction.aleatoric_variance.tolist(), prediction.std.tolist()
    ([0.25], [1.118033988749895])
    """

    mean: Tensor
    epistemic_variance: Tensor
    aleatoric_variance: Tensor
    n_passes: int
    targets: Tensor | None = None
    samples: Tensor | None = None

    @classmethod
    def from_statistics(
        cls,
        stats: RegressionStatistics,
        targets: Tensor | None = None,
        noise_precision: float | None = None,
    ) -> RegressionPrediction:
        """Finish streaming statistics into a prediction."""
        n_passes = stats.means.count
        aleatoric = torch.zeros_like(stats.means.mean)
        if stats.variance_sum is not None:
            aleatoric = aleatoric + stats.variance_sum / n_passes
        if noise_precision is not None:
            aleatoric = aleatoric + 1.0 / noise_precision
        return cls(
            mean=stats.means.mean,
            epistemic_variance=stats.means.variance,
            aleatoric_variance=aleatoric,
            n_passes=n_passes,
            targets=targets,
            samples=stats.samples,
        )

    def __len__(self) -> int:
        return self.mean.shape[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_inputs={len(self)}, "
            f"output_shape={tuple(self.mean.shape[1:])}, n_passes={self.n_passes}, "
            f"targets={self.targets is not None}, "
            f"samples={self.samples is not None})"
        )

    @property
    def variance(self) -> Tensor:
        """Total predictive variance: epistemic plus aleatoric."""
        return self.epistemic_variance + self.aleatoric_variance

    @property
    def std(self) -> Tensor:
        """Total predictive standard deviation."""
        return self.variance.sqrt()

    def interval(self, level: float = 0.95) -> tuple[Tensor, Tensor]:
        """Central Gaussian prediction interval holding ``level`` of the mass.

        Returns ``(lower, upper)`` = ``mean -/+ z * std`` with
        ``z = Phi^-1((1 + level) / 2)``.

        Examples
        --------
        >>> import torch
        >>> p = RegressionPrediction(
        ...     torch.zeros(1), torch.ones(1), torch.zeros(1), n_passes=10
        ... )
        >>> [round(float(b), 3) for b in p.interval(0.95)]
        [-1.96, 1.96]
        """
        level = check_probability("level", level)
        if level == 0:
            return self.mean.clone(), self.mean.clone()
        z = torch.special.ndtri(torch.tensor((1.0 + level) / 2, dtype=torch.float64))
        half_width = z * self.std
        return self.mean - half_width, self.mean + half_width

    def to_frame(self) -> pd.DataFrame:
        """One row per input: target (when known), mean, std, epistemic and
        aleatoric variance. Models with several outputs get one column per
        output, suffixed ``_0``, ``_1`` ...; a single output, whether shaped
        ``(n_inputs,)`` or ``(n_inputs, 1)``, gets plain columns."""
        columns = {
            "mean": self.mean,
            "std": self.std,
            "epistemic_variance": self.epistemic_variance,
            "aleatoric_variance": self.aleatoric_variance,
        }
        flat = {}
        for name, values in columns.items():
            values = values.reshape(len(self), -1).numpy()
            if values.shape[1] == 1:
                flat[name] = values[:, 0]
            else:
                flat.update(
                    {f"{name}_{j}": values[:, j] for j in range(values.shape[1])}
                )
        frame = pd.DataFrame(flat)
        _targets_column(frame, self.targets)
        return frame
