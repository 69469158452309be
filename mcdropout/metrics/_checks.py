"""Input checks shared by every metric.

Each metric converts its arguments here, once, at its public boundary: torch
tensors and NumPy arrays (or nested lists) become NumPy arrays, scores and
probabilities float64, and anything malformed raises the package's own
exception naming the argument, what was expected and what was given.
"""

import numpy as np
from torch import Tensor

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from mcdropout._validation import check_choice, check_positive_int

__all__ = [
    "BINNINGS",
    "NORMS",
    "PROBS_ATOL",
    "check_binning",
    "check_correct",
    "check_n_bins",
    "check_norm",
    "check_probs",
    "check_same_shape",
    "check_scores",
    "check_std",
    "check_targets",
    "to_numpy",
]

BINNINGS = ("uniform", "quantile")
NORMS = ("l1", "l2", "max")

# Rows of float32 softmax outputs over many classes sum to 1 within ~1e-6;
# 1e-4 accepts them and still catches unnormalised scores.
PROBS_ATOL = 1e-4


def to_numpy(name: str, value: object) -> np.ndarray:
    """``value`` as a NumPy array of booleans or numbers, else raise."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        # NumPy has no bfloat16 or float16 arithmetic worth keeping.
        value = value.double() if value.is_floating_point() else value
        array = value.numpy()
    elif isinstance(value, (np.ndarray, list, tuple)) or np.isscalar(value):
        array = np.asarray(value)
    else:
        raise ArgumentTypeError(
            f"expected `{name}` to be a torch Tensor or NumPy array, "
            f"got {type(value).__name__}"
        )
    if array.dtype.kind not in "biuf":
        raise ArgumentTypeError(
            f"expected `{name}` to hold numbers, got an array of dtype {array.dtype}"
        )
    return array


def _check_ndim(
    name: str, array: np.ndarray, ndims: tuple[int, ...], shape: str
) -> None:
    if array.ndim not in ndims:
        raise ArgumentValueError(
            f"expected `{name}` of shape {shape}, got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ArgumentValueError(f"expected `{name}` to hold inputs, got 0")


def _check_finite(name: str, array: np.ndarray) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        n_bad = int(finite.size - finite.sum())
        raise ArgumentValueError(
            f"expected `{name}` to be finite, got {n_bad} NaN or infinite "
            f"value(s) out of {finite.size}"
        )


def check_scores(
    name: str,
    value: object,
    ndims: tuple[int, ...] = (1,),
    shape: str = "(n_inputs,)",
) -> np.ndarray:
    """Finite float64 values of the given ndim, with at least one row."""
    array = to_numpy(name, value).astype(np.float64)
    _check_ndim(name, array, ndims, shape)
    _check_finite(name, array)
    return array


def check_probs(probs: object) -> np.ndarray:
    """``probs`` as float64 ``(n_inputs, n_classes)`` rows on the simplex."""
    probs = check_scores("probs", probs, (2,), "(n_inputs, n_classes)")
    if probs.shape[1] < 2:
        raise ArgumentValueError(
            "expected `probs` of shape (n_inputs, n_classes) with n_classes >= 2, "
            f"got shape {probs.shape}; for a binary model's probability p of "
            "class 1, pass np.stack([1 - p, p], axis=1)"
        )

    low, high = probs.min(), probs.max()
    if low < 0 or high > 1:
        raise ArgumentValueError(
            "expected `probs` to hold probabilities in [0, 1], got values from "
            f"{low:.4g} to {high:.4g}; they look like logits; apply softmax first"
        )

    sums = probs.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > PROBS_ATOL:
        raise ArgumentValueError(
            f"expected each row of `probs` to sum to 1 (within {PROBS_ATOL:g}), "
            f"got row {worst} summing to {sums[worst]:.6g}; they look like "
            "unnormalised scores or logits; apply softmax first"
        )
    return probs


def _as_integers(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "biu":
        return array.astype(np.int64)
    # Float labels (from pandas, say) are accepted when they are whole numbers.
    _check_finite(name, array)
    if not np.array_equal(array, np.round(array)):
        raise ArgumentValueError(
            f"expected `{name}` to hold integer class indices, got non-integer "
            f"values such as {array[array != np.round(array)][0].item()!r}"
        )
    return array.astype(np.int64)


def check_targets(targets: object, n_inputs: int, n_classes: int) -> np.ndarray:
    """``targets`` as int64 class indices ``(n_inputs,)`` in [0, n_classes)."""
    array = to_numpy("targets", targets)
    if array.ndim != 1:
        raise ArgumentValueError(
            "expected `targets` of shape (n_inputs,) holding class indices, got "
            f"shape {array.shape}; for one-hot targets pass targets.argmax(1)"
        )
    if array.shape[0] != n_inputs:
        raise ArgumentValueError(
            f"expected `targets` to have {n_inputs} entries, one per row of "
            f"`probs`, got {array.shape[0]}"
        )

    array = _as_integers("targets", array)
    low, high = array.min(), array.max()
    if low < 0 or high >= n_classes:
        raise ArgumentValueError(
            f"expected `targets` in [0, {n_classes}) for {n_classes} classes, "
            f"got values from {low} to {high}"
        )
    return array


def check_correct(correct: object, n_inputs: int) -> np.ndarray:
    """``correct`` as booleans ``(n_inputs,)``: True or 1 where right."""
    array = to_numpy("correct", correct)
    if array.ndim != 1 or array.shape[0] != n_inputs:
        raise ArgumentValueError(
            f"expected `correct` of shape ({n_inputs},), one entry per "
            f"`uncertainty` value, got shape {array.shape}"
        )
    if array.dtype.kind != "b" and not np.isin(array, (0, 1)).all():
        raise ArgumentValueError(
            "expected `correct` to hold booleans (or 0 and 1), got values other "
            f"than 0 and 1 such as {array[~np.isin(array, (0, 1))][0].item()!r}"
        )
    return array.astype(bool)


def check_same_shape(reference: str, ref: np.ndarray, **others: np.ndarray) -> None:
    """Raise unless every array of ``others`` has the shape of ``ref``."""
    for name, array in others.items():
        if array.shape != ref.shape:
            raise ArgumentValueError(
                f"expected `{name}` to have the shape of `{reference}`, "
                f"{ref.shape}, got {array.shape}"
            )


def check_std(std: np.ndarray, *, strict: bool) -> None:
    """Raise unless ``std`` is > 0 (``strict``) or >= 0 everywhere."""
    low = std.min()
    if low < 0 or (strict and low == 0):
        bound = "> 0" if strict else ">= 0"
        raise ArgumentValueError(
            f"expected `std` {bound} everywhere, got a smallest value of {low:.4g}"
        )


def check_n_bins(n_bins: object) -> int:
    """``n_bins`` as an int >= 1."""
    return check_positive_int("n_bins", n_bins)


def check_binning(binning: object) -> str:
    """``binning``, one of :data:`BINNINGS`."""
    return check_choice("binning", binning, BINNINGS)


def check_norm(norm: object) -> str:
    """``norm``, one of :data:`NORMS`."""
    return check_choice("norm", norm, NORMS)
