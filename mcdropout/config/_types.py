"""Field types of the config schema, with messages in the package's style.

Each type checks strictly (YAML already gives ints, floats and booleans), so
``2.5`` is not silently truncated into an integer and ``"yes"`` is not read
as true. The messages say what was expected and what was given; the key
path is added by the loader.
"""

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "Bool",
    "ExistingDir",
    "ExistingFile",
    "Fraction",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PathValue",
    "PositiveFloat",
    "PositiveInt",
    "Probability",
]


def _fail(kind: str, expected: str, value: object) -> PydanticCustomError:
    context = {"expected": expected, "given": describe(value)}
    return PydanticCustomError(kind, "expected {expected}, got {given}", context)


def _integer(value: object, minimum: int, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail("integer", expected, value)
    return value


def _number(
    value: object, expected: str, *, low: float, high: float, closed: str
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail("number", expected, value)
    number = float(value)
    above = number >= low if "[" in closed else number > low
    below = number <= high if "]" in closed else number < high
    if not (above and below and math.isfinite(number)):
        raise _fail("number", expected, value)
    return number


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail("bool", "true or false", value)
    return value


def _path(value: object) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise _fail("path", "a file path", value)
    return Path(value).expanduser()


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise PydanticCustomError(
            "file_not_found", "file not found: {path}", {"path": str(path.resolve())}
        )
    return path


def _existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise PydanticCustomError(
            "dir_not_found", "folder not found: {path}", {"path": str(path.resolve())}
        )
    return path


def _positive_int(value: object) -> int:
    return _integer(value, 1, "a positive integer")


def _non_negative_int(value: object) -> int:
    return _integer(value, 0, "a non-negative integer")


def _positive_float(value: object) -> float:
    return _number(value, "a positive number", low=0.0, high=math.inf, closed="()")


def _non_negative_float(value: object) -> float:
    return _number(value, "a non-negative number", low=0.0, high=math.inf, closed="[)")


def _probability(value: object) -> float:
    return _number(value, "a number in [0, 1)", low=0.0, high=1.0, closed="[)")


def _fraction(value: object) -> float:
    return _number(value, "a number in (0, 1)", low=0.0, high=1.0, closed="()")


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
NonNegativeInt = Annotated[int, BeforeValidator(_non_negative_int)]
PositiveFloat = Annotated[float, BeforeValidator(_positive_float)]
NonNegativeFloat = Annotated[float, BeforeValidator(_non_negative_float)]
Probability = Annotated[float, BeforeValidator(_probability)]
"""A rate such as a dropout probability: a number in [0, 1)."""
Fraction = Annotated[float, BeforeValidator(_fraction)]
"""A share of the inputs such as a split size: a number in (0, 1)."""
Bool = Annotated[bool, BeforeValidator(_bool)]
PathValue = Annotated[Path, BeforeValidator(_path)]
"""A path, ``~`` expanded, relative to the working directory."""
ExistingFile = Annotated[Path, BeforeValidator(_path), AfterValidator(_existing_file)]
ExistingDir = Annotated[Path, BeforeValidator(_path), AfterValidator(_existing_dir)]


def describe(value: Any) -> str:
    """Short ``repr`` of a config value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
