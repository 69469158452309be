"""Predictions built directly from per-pass logits, for the plot tests."""

import torch

from mcdropout.predictions import ClassificationPrediction, ClassificationStatistics


def classification(
    logits: torch.Tensor, targets: torch.Tensor | None, keep_samples: bool = False
) -> ClassificationPrediction:
    """A prediction from per-pass logits ``(n_passes, n_inputs, n_classes)``."""
    stats = ClassificationStatistics.of(
        logits.double().log_softmax(-1), keep_samples=keep_samples
    )
    return ClassificationPrediction.from_statistics(stats, targets)


def from_probs(
    probs: list[list[float]], targets: list[int]
) -> ClassificationPrediction:
    """A one-pass prediction with exactly these probabilities."""
    probs = torch.tensor([probs], dtype=torch.float64)
    stats = ClassificationStatistics.of(probs.log())
    return ClassificationPrediction.from_statistics(stats, torch.tensor(targets))
