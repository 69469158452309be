"""Where dropout is found, switched on at inference, added and tuned."""

from mcdropout.dropout._detect import count_functional_dropout
from mcdropout.dropout._insert import add_dropout
from mcdropout.dropout._switch import (
    MODES,
    dropout_modules,
    enable_dropout,
    eval_mode,
    set_dropout_rate,
)

__all__ = [
    "MODES",
    "add_dropout",
    "count_functional_dropout",
    "dropout_modules",
    "enable_dropout",
    "eval_mode",
    "set_dropout_rate",
]
