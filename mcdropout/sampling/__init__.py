"""Where the passes are run: reading inputs, stacking passes, the wrapper."""

from mcdropout.sampling._engine import (
    DEFAULT_MEMORY_BUDGET,
    PRECISIONS,
    STRATEGIES,
    PassEngine,
    model_device,
    seeded,
)
from mcdropout.sampling._wrapper import TASKS, MCDropout

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "PRECISIONS",
    "STRATEGIES",
    "TASKS",
    "MCDropout",
    "PassEngine",
    "model_device",
    "seeded",
]
