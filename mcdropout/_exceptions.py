"""The package's own exception and warning classes.

Every error raised at mcdropout's public boundary is an instance of
:class:`MCDropoutError`, and also of the built-in class it refines
(:class:`ValueError` or :class:`TypeError`), so callers can catch either.
"""

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "MCDropoutError",
    "MCDropoutWarning",
    "ModelOutputError",
    "NoDropoutError",
    "UndefinedMetricWarning",
]


class MCDropoutError(Exception):
    """Base class of every error mcdropout raises on purpose."""


class ArgumentValueError(MCDropoutError, ValueError):
    """An argument has the right type but a value outside what is accepted."""


class ArgumentTypeError(MCDropoutError, TypeError):
    """An argument has a type that is not accepted."""


class NoDropoutError(ArgumentValueError):
    """A model has nothing that Monte Carlo dropout could switch on."""


class ModelOutputError(ArgumentValueError):
    """The wrapped model returned something that cannot be aggregated."""


class MCDropoutWarning(UserWarning):
    """Base class of the warnings mcdropout issues."""


class UndefinedMetricWarning(MCDropoutWarning):
    """A metric is undefined for the given input; NaN is returned instead."""
