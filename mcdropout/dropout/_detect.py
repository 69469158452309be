"""Finding dropout that a model applies functionally, through torch.fx."""

import logging

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["FUNCTIONAL_DROPOUT", "count_functional_dropout"]

logger = logging.getLogger(__name__)

FUNCTIONAL_DROPOUT = frozenset(
    {
        F.dropout,
        F.dropout1d,
        F.dropout2d,
        F.dropout3d,
        F.alpha_dropout,
        F.feature_alpha_dropout,
        torch.dropout,
        torch.alpha_dropout,
        torch.feature_dropout,
        torch.feature_alpha_dropout,
    }
)


def count_functional_dropout(model: nn.Module) -> int | None:
    """Count the functional dropout calls in ``model``'s traced forward.

    Returns None when the model cannot be traced symbolically (data-dependent
    control flow, unsupported operations), in which case nothing is known.
    The trace follows the branches taken under the model's current
    ``training`` flags.
    """
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as error:  # any failure means: cannot tell
        logger.debug(
            "could not trace %s to look for functional dropout: %s",
            type(model).__name__,
            error,
        )
        return None
    return sum(
        node.op == "call_function" and node.target in FUNCTIONAL_DROPOUT
        for node in graph.nodes
    )
