"""Training the built-in networks: a plain Adam loop with early stopping."""

from mcdropout.training._loop import (
    EpochCallback,
    TrainingResult,
    train_model,
    training_loss,
)

__all__ = ["EpochCallback", "TrainingResult", "train_model", "training_loss"]
