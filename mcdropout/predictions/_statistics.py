"""Streaming statistics over Monte Carlo passes.

A pass produces one output per input. The statistics of a block of inputs are
built chunk by chunk of passes and never hold all passes at once (unless the
caller asks to keep them). Two statistics over the same inputs and different
passes merge exactly (Chan et al.'s pairwise update), and statistics over
different inputs concatenate, so chunks, batches and processes combine into
the result a single pass over everything would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ClassificationStatistics",
    "Moments",
    "RegressionStatistics",
    "log_probs_from_logits",
]


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of values over passes.

    ``mean`` and ``m2`` have the shape of one pass's values.
    """

    count: int
    mean: Tensor
    m2: Tensor

    @classmethod
    def of(cls, values: Tensor) -> Moments:
        """Moments of ``values`` of shape ``(n_passes, ...)``, along dim 0."""
        mean = values.mean(dim=0)
        m2 = (values - mean).square().sum(dim=0)
        return cls(values.shape[0], mean, m2)

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both sets of passes."""
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta.square() * (self.count * other.count / count)
        return Moments(count, mean, m2)

    @property
    def variance(self) -> Tensor:
        """Population variance over passes (divided by the count)."""
        return self.m2 / self.count

    @staticmethod
    def cat(parts: list[Moments]) -> Moments:
        """Moments of different inputs over the same passes, concatenated."""
        return Moments(
            parts[0].count,
            torch.cat([part.mean for part in parts]),
            torch.cat([part.m2 for part in parts]),
        )

    def cpu(self) -> Moments:
        return Moments(self.count, self.mean.cpu(), self.m2.cpu())


def log_probs_from_logits(logits: Tensor, temperature: float | None = None) -> Tensor:
    """Class log-probabilities in float64 from logits ``(..., n_classes)``.

    A single logit column is read as a binary model's logit for class 1 (a
    sigmoid output) and becomes two columns, classes 0 and 1.
    """
    logits = logits.double()
    if temperature is not None:
        logits = logits / temperature
    if logits.shape[-1] == 1:
        logit = logits[..., 0]
        return torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], dim=-1)
    return F.log_softmax(logits, dim=-1)


def _cat_samples(parts: list[Tensor | None], dim: int) -> Tensor | None:
    return None if parts[0] is None else torch.cat(parts, dim=dim)


@dataclass
class ClassificationStatistics:
    """Streaming statistics of class probabilities over passes.

    Attributes
    ----------
    probs : Moments
        Moments of the per-pass probabilities, ``(n_inputs, n_classes)``.
    entropy_sum : Tensor
        Sum over passes of each pass's entropy in nats, ``(n_inputs,)``.
    votes : Tensor
        How many passes predicted each class, ``(n_inputs, n_classes)``.
    samples : Tensor or None
        The per-pass probabilities ``(n_passes, n_inputs, n_classes)`` when
        kept, else None.
    """

    probs: Moments
    entropy_sum: Tensor
    votes: Tensor
    samples: Tensor | None = None

    @classmethod
    def of(
        cls, log_probs: Tensor, keep_samples: bool = False
    ) -> ClassificationStatistics:
        """Statistics of ``log_probs`` ``(n_passes, n_inputs, n_classes)``."""
        probs = log_probs.exp()
        # exp(log p) underflows to exactly 0 where log p is very negative and
        # finite, so the product is 0 there, never NaN.
        entropy = -(probs * log_probs).sum(dim=-1)
        n_classes = log_probs.shape[-1]
        votes = F.one_hot(log_probs.argmax(dim=-1), n_classes).sum(dim=0)
        samples = probs.float() if keep_samples else None
        return cls(Moments.of(probs), entropy.sum(dim=0), votes, samples)

    def merge(self, other: ClassificationStatistics) -> ClassificationStatistics:
        """Statistics of the same inputs over both sets of passes."""
        return ClassificationStatistics(
            self.probs.merge(other.probs),
            self.entropy_sum + other.entropy_sum,
            self.votes + other.votes,
            _cat_samples([self.samples, other.samples], dim=0),
        )

    @staticmethod
    def cat(parts: list[ClassificationStatistics]) -> ClassificationStatistics:
        """Statistics of consecutive blocks of inputs, concatenated."""
        return ClassificationStatistics(
            Moments.cat([part.probs for part in parts]),
            torch.cat([part.entropy_sum for part in parts]),
            torch.cat([part.votes for part in parts]),
            _cat_samples([part.samples for part in parts], dim=1),
        )

    def cpu(self) -> ClassificationStatistics:
        samples = None if self.samples is None else self.samples.cpu()
        return ClassificationStatistics(
            self.probs.cpu(), self.entropy_sum.cpu(), self.votes.cpu(), samples
        )


@dataclass
class RegressionStatistics:
    """Streaming statistics of regression outputs over passes.

    Attributes
    ----------
    means : Moments
        Moments of the per-pass predicted means, ``(n_inputs, *output_shape)``.
    variance_sum : Tensor or None
        Sum over passes of the predicted variances (heteroscedastic models),
        else None.
    samples : Tensor or None
        The per-pass predicted means ``(n_passes, n_inputs, *output_shape)``
        when kept, else None.
    """

    means: Moments
    variance_sum: Tensor | None = None
    samples: Tensor | None = None

    @classmethod
    def of(
        cls,
        means: Tensor,
        variances: Tensor | None = None,
        keep_samples: bool = False,
    ) -> RegressionStatistics:
        """Statistics of ``means`` (and ``variances``), ``(n_passes, ...)``."""
        means = means.double()
        variance_sum = None if variances is None else variances.double().sum(dim=0)
        samples = means.float() if keep_samples else None
        return cls(Moments.of(means), variance_sum, samples)

    def merge(self, other: RegressionStatistics) -> RegressionStatistics:
        """Statistics of the same inputs over both sets of passes."""
        variance_sum = (
            None
            if self.variance_sum is None
            else self.variance_sum + other.variance_sum
        )
        return RegressionStatistics(
            self.means.merge(other.means),
            variance_sum,
            _cat_samples([self.samples, other.samples], dim=0),
        )

    @staticmethod
    def cat(parts: list[RegressionStatistics]) -> RegressionStatistics:
        """Statistics of consecutive blocks of inputs, concatenated."""
        variance_sums = [part.variance_sum for part in parts]
        return RegressionStatistics(
            Moments.cat([part.means for part in parts]),
            None if variance_sums[0] is None else torch.cat(variance_sums),
            _cat_samples([part.samples for part in parts], dim=1),
        )

    def cpu(self) -> RegressionStatistics:
        variance_sum = None if self.variance_sum is None else self.variance_sum.cpu()
        samples = None if self.samples is None else self.samples.cpu()
        return RegressionStatistics(self.means.cpu(), variance_sum, samples)
