"""Argument checks shared by the public functions.

Each check names the argument, what was expected and what was given, and
raises the package's own exception class.
"""

import numbers
from collections.abc import Collection

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"expected `{name}` to be a positive integer, "
            f"got {value!r} of type {type(value).__name__}"
        )
    if value < 1:
        raise ArgumentValueError(
            f"expected `{name}` to be a positive integer, got {value!r}"
        )
    return int(value)


def check_optional_positive_int(name: str, value: object) -> int | None:
    """Return ``value`` if it is None or an integer >= 1, else raise."""
    return None if value is None else check_positive_int(name, value)


def check_probability(name: str, value: object, *, include_one: bool = False) -> float:
    """Return ``value`` as a float in [0, 1) (or [0, 1]), else raise."""
    upper = "1]" if include_one else "1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"expected `{name}` to be a number in [0, {upper}, "
            f"got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    too_high = value > 1 if include_one else value >= 1
    if not value >= 0 or too_high:
        raise ArgumentValueError(
            f"expected `{name}` to be a number in [0, {upper}, got {value!r}"
        )
    return value


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float > 0 (finite), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"expected `{name}` to be a positive number, "
            f"got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not 0 < value < float("inf"):
        raise ArgumentValueError(
            f"expected `{name}` to be a positive finite number, got {value!r}"
        )
    return value


def check_optional_positive_float(name: str, value: object) -> float | None:
    """Return ``value`` if it is None or a float > 0 (finite), else raise."""
    return None if value is None else check_positive_float(name, value)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ArgumentValueError(
            f"expected `{name}` to be one of {allowed}, got {value!r}"
        )
    return value  # type: ignore[return-value]
