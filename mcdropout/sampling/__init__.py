"""Where the passes are run: reading inputs, stacking passes, the wrapper."""

from mcdropout.sampling._engine import STRATEGIES, PassEngine, model_device, seeded
from mcdropout.sampling._wrapper import DEFAULT_MAX_BATCH_SIZE, TASKS, MCDropout

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "STRATEGIES",
    "TASKS",
    "MCDropout",
    "PassEngine",
    "model_device",
    "seeded",
]
