"""Reliability bins and the calibration errors computed from them.

One binning implementation serves the reliability table, the expected and
class-wise calibration errors, the streaming accumulator and the plots.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    UndefinedMetricWarning,
)
from mcdropout.metrics._checks import check_binning, check_n_bins, check_norm
from mcdropout.metrics._classification import checked_probs_targets

__all__ = [
    "ReliabilityAccumulator",
    "classwise_calibration_error",
    "expected_calibration_error",
    "reliability_bins",
    "uniform_bin_index",
    "uniform_edges",
]

FRAME_COLUMNS = ("lower", "upper", "count", "confidence", "accuracy", "gap")


def uniform_edges(n_bins: int) -> np.ndarray:
    """``n_bins + 1`` edges from 0 to 1; edge ``k`` is the double nearest k / n_bins.

    Computed as ``k / n_bins`` (one correctly rounded division) rather than
    ``np.linspace``, whose edge 3 of 5 is 0.6000000000000001: a confidence
    written 0.6 then equals the edge it is meant to sit on.
    """
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def uniform_bin_index(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each score in [0, 1]: ``b`` with ``edge_b <= score < edge_b+1``.

    A score equal to an inner edge goes to the bin above it; 1.0 goes to the
    last bin, which is closed on the right.
    """
    index = np.searchsorted(uniform_edges(n_bins), scores, side="right") - 1
    return np.clip(index, 0, n_bins - 1)


@dataclass(frozen=True)
class _Bins:
    """Per-bin sums: everything a reliability table or error is made of."""

    lower: np.ndarray
    upper: np.ndarray
    counts: np.ndarray
    score_sums: np.ndarray
    hit_sums: np.ndarray


def _uniform_bins(scores: np.ndarray, hits: np.ndarray, n_bins: int) -> _Bins:
    index = uniform_bin_index(scores, n_bins)
    edges = uniform_edges(n_bins)
    return _Bins(
        lower=edges[:-1],
        upper=edges[1:],
        counts=np.bincount(index, minlength=n_bins),
        score_sums=np.bincount(index, weights=scores, minlength=n_bins),
        hit_sums=np.bincount(index, weights=hits, minlength=n_bins),
    )


def _quantile_bins(scores: np.ndarray, hits: np.ndarray, n_bins: int) -> _Bins:
    # Stable, so tied scores keep input order and the split is reproducible.
    order = np.argsort(scores, kind="stable")
    groups = np.array_split(order, n_bins)

    def per_group(values: np.ndarray, reduce: np.ufunc, empty: float) -> np.ndarray:
        return np.array([reduce(values[g]) if len(g) else empty for g in groups])

    return _Bins(
        lower=per_group(scores, np.min, np.nan),
        upper=per_group(scores, np.max, np.nan),
        counts=np.array([len(g) for g in groups], dtype=np.int64),
        score_sums=per_group(scores, np.sum, 0.0),
        hit_sums=per_group(hits.astype(np.float64), np.sum, 0.0),
    )


def _bin(scores: np.ndarray, hits: np.ndarray, n_bins: int, binning: str) -> _Bins:
    if binning == "uniform":
        return _uniform_bins(scores, hits.astype(np.float64), n_bins)
    return _quantile_bins(scores, hits, n_bins)


def _means(bins: _Bins) -> tuple[np.ndarray, np.ndarray]:
    """Mean score and hit rate per bin; NaN in empty bins."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return bins.score_sums / bins.counts, bins.hit_sums / bins.counts


def _error(bins: _Bins, norm: str) -> float:
    confidence, accuracy = _means(bins)
    filled = bins.counts > 0
    gaps = accuracy[filled] - confidence[filled]
    weights = bins.counts[filled] / bins.counts.sum()
    if norm == "l1":
        return float(np.sum(weights * np.abs(gaps)))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps**2)))
    return float(np.max(np.abs(gaps)))


def _frame(bins: _Bins) -> pd.DataFrame:
    confidence, accuracy = _means(bins)
    return pd.DataFrame(
        {
            "lower": bins.lower,
            "upper": bins.upper,
            "count": bins.counts.astype(np.int64),
            "confidence": confidence,
            "accuracy": accuracy,
            "gap": accuracy - confidence,
        }
    )


def _top_label(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (max probability) and correctness of each checked input."""
    return probs.max(axis=1), probs.argmax(axis=1) == targets


def reliability_bins(
    probs: object, targets: object, n_bins: int = 15, binning: str = "uniform"
) -> pd.DataFrame:
    """Top-label reliability table: confidence against accuracy, bin by bin.

    Each input's confidence is its largest probability; it is correct when
    that class is the target. Inputs are grouped by confidence and each bin
    reports its mean confidence and its accuracy.

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.
    n_bins : int, default 15
        Number of bins.
    binning : {"uniform", "quantile"}, default "uniform"
        ``"uniform"``: edges ``k / n_bins`` for ``k = 0..n_bins``; bin ``b``
        is ``[edge_b, edge_b+1)``, the last one ``[edge_n-1, 1]``, so a
        confidence of exactly 1.0 is in the last bin and one exactly on an
        inner edge is in the bin above the edge. ``"quantile"``: inputs
        sorted by confidence (stable sort, ties in input order) and split
        into ``n_bins`` contiguous groups whose sizes differ by at most one,
        larger groups first (as ``numpy.array_split``).

    Returns
    -------
    pandas.DataFrame
        One row per bin, all ``n_bins`` of them, in increasing confidence:
        ``lower``, ``upper`` (the bin's edges; for quantile bins, the
        smallest and largest confidence in the bin), ``count``,
        ``confidence`` (mean), ``accuracy`` and ``gap`` (accuracy minus
        confidence). Empty bins have count 0 and NaN means (and NaN edges
        in quantile mode).

    Notes
    -----
    With more quantile bins than inputs, the first ``n_inputs`` bins hold
    one input each and the rest are empty.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> table = reliability_bins(probs, np.array([0, 1, 1, 0]), n_bins=2)
    >>> table[["count", "confidence", "accuracy"]].round(3).values.tolist()
    [[0.0, nan, nan], [4.0, 0.75, 0.5]]
    """
    n_bins, binning = check_n_bins(n_bins), check_binning(binning)
    confidence, correct = _top_label(*checked_probs_targets(probs, targets))
    return _frame(_bin(confidence, correct, n_bins, binning))


def expected_calibration_error(
    probs: object,
    targets: object,
    n_bins: int = 15,
    binning: str = "uniform",
    norm: str = "l1",
) -> float:
    """Top-label expected calibration error (Naeini et al., 2015; Guo et al., 2017).

    With the bins of :func:`reliability_bins`, ``n_b`` inputs in bin ``b``
    of ``N``, their accuracy ``acc_b`` and mean confidence ``conf_b``:

    .. math::
        \\mathrm{ECE}_{\\ell_1} = \\sum_b \\frac{n_b}{N}
            |\\mathrm{acc}_b - \\mathrm{conf}_b|, \\quad
        \\mathrm{ECE}_{\\ell_2} = \\sqrt{\\sum_b \\frac{n_b}{N}
            (\\mathrm{acc}_b - \\mathrm{conf}_b)^2}, \\quad
        \\mathrm{MCE} = \\max_{b: n_b > 0} |\\mathrm{acc}_b - \\mathrm{conf}_b|

    Empty bins contribute nothing.

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.
    n_bins : int, default 15
        Number of bins.
    binning : {"uniform", "quantile"}, default "uniform"
        See :func:`reliability_bins`.
    norm : {"l1", "l2", "max"}, default "l1"
        ``"max"`` gives the maximum calibration error (MCE).

    Returns
    -------
    float
        In [0, 1].

    Notes
    -----
    The binned estimate is biased: it depends on ``n_bins`` and, with few
    inputs per bin, overstates the miscalibration of a calibrated model.
    Compare models with the same ``n_bins`` and ``binning``.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> expected_calibration_error(probs, np.array([0, 1, 1, 0]), n_bins=2)
    0.25
    """
    n_bins, binning = check_n_bins(n_bins), check_binning(binning)
    norm = check_norm(norm)
    confidence, correct = _top_label(*checked_probs_targets(probs, targets))
    return _error(_bin(confidence, correct, n_bins, binning), norm)


def classwise_calibration_error(
    probs: object,
    targets: object,
    n_bins: int = 15,
    binning: str = "uniform",
    norm: str = "l1",
) -> float:
    """Calibration error of every class's probability, averaged over classes.

    For each class ``k``, the column ``p_k`` is binned on its own (as in
    :func:`reliability_bins`) against the event ``y = k``, and its error is
    computed with ``norm`` as in :func:`expected_calibration_error`, with
    the frequency of class ``k`` in place of the accuracy:

    .. math:: \\mathrm{cwCE} = \\frac1K \\sum_{k=1}^{K} \\sum_b \\frac{n_{kb}}{N}
       \\left| \\frac{1}{n_{kb}} \\sum_{i \\in b} [y_i = k] - \\frac{1}{n_{kb}}
       \\sum_{i \\in b} p_{ik} \\right| \\quad (\\ell_1)

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.
    n_bins : int, default 15
        Number of bins per class.
    binning : {"uniform", "quantile"}, default "uniform"
        See :func:`reliability_bins`.
    norm : {"l1", "l2", "max"}, default "l1"
        How each class's bins are combined; the class errors are averaged.

    Returns
    -------
    float
        In [0, 1].

    Notes
    -----
    Every class in ``probs`` counts, also one that no target belongs to.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> classwise_calibration_error(probs, np.array([0, 1, 1, 0]), n_bins=2)
    0.25
    """
    n_bins, binning = check_n_bins(n_bins), check_binning(binning)
    norm = check_norm(norm)
    probs, targets = checked_probs_targets(probs, targets)
    errors = [
        _error(_bin(probs[:, k], targets == k, n_bins, binning), norm)
        for k in range(probs.shape[1])
    ]
    return float(np.mean(errors))


class ReliabilityAccumulator:
    """Streaming uniform reliability bins, fed batch by batch.

    Holds, per bin, the number of inputs, the sum of their confidences and
    the number of correct ones, so batches can be added with :meth:`update`
    and accumulators of different batches or processes combined with
    :meth:`merge`. The result equals :func:`reliability_bins` and
    :func:`expected_calibration_error` on all inputs at once with
    ``binning="uniform"`` (up to the order of floating point additions).

    Parameters
    ----------
    n_bins : int, default 15
        Number of uniform bins, as in :func:`reliability_bins`.

    Attributes
    ----------
    counts : ndarray
        ``(n_bins,)`` int64 number of inputs per bin.
    confidence_sums : ndarray
        ``(n_bins,)`` float64 sum of the confidences per bin.
    correct_counts : ndarray
        ``(n_bins,)`` int64 number of correct inputs per bin.
    n_classes : int or None
        Fixed by the first batch; later batches must match it.

    Notes
    -----
    Quantile bins cannot stream exactly: their edges depend on every
    confidence seen, so only uniform bins are offered here.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> targets = np.array([0, 1, 1, 0])
    >>> acc = ReliabilityAccumulator(n_bins=2)
    >>> acc = acc.update(probs[:2], targets[:2]).update(probs[2:], targets[2:])
    >>> acc.n_inputs, acc.calibration_error()
    (4, 0.25)
    """

    def __init__(self, n_bins: int = 15) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.n_classes: int | None = None
        self.counts = np.zeros(self.n_bins, dtype=np.int64)
        self.confidence_sums = np.zeros(self.n_bins, dtype=np.float64)
        self.correct_counts = np.zeros(self.n_bins, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_bins={self.n_bins}, "
            f"n_inputs={self.n_inputs}, n_classes={self.n_classes})"
        )

    @property
    def n_inputs(self) -> int:
        """Number of inputs added so far."""
        return int(self.counts.sum())

    def update(self, probs: object, targets: object) -> ReliabilityAccumulator:
        """Add a batch in place and return the accumulator.

        Parameters
        ----------
        probs : Tensor or ndarray
            ``(n_inputs, n_classes)`` predicted probabilities of the batch.
        targets : Tensor or ndarray
            ``(n_inputs,)`` integer class indices of the batch.
        """
        probs, targets = checked_probs_targets(probs, targets)
        self._join_classes(probs.shape[1], "`probs`")

        confidence, correct = _top_label(probs, targets)

        index = uniform_bin_index(confidence, self.n_bins)
        self.counts += np.bincount(index, minlength=self.n_bins)
        self.confidence_sums += np.bincount(
            index, weights=confidence, minlength=self.n_bins
        )
        self.correct_counts += np.bincount(index[correct], minlength=self.n_bins)
        return self

    def merge(self, other: ReliabilityAccumulator) -> ReliabilityAccumulator:
        """A new accumulator holding the inputs of both; neither is changed."""
        if not isinstance(other, ReliabilityAccumulator):
            raise ArgumentTypeError(
                "expected `other` to be a ReliabilityAccumulator, got "
                f"{type(other).__name__}"
            )
        if other.n_bins != self.n_bins:
            raise ArgumentValueError(
                f"expected `other` to have n_bins={self.n_bins} like this "
                f"accumulator, got n_bins={other.n_bins}"
            )
        merged = ReliabilityAccumulator(self.n_bins)
        merged.n_classes = self.n_classes
        if other.n_classes is not None:
            merged._join_classes(other.n_classes, "`other`")
        merged.counts = self.counts + other.counts
        merged.confidence_sums = self.confidence_sums + other.confidence_sums
        merged.correct_counts = self.correct_counts + other.correct_counts
        return merged

    def _join_classes(self, n_classes: int, source: str) -> None:
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ArgumentValueError(
                f"expected {source} to have {self.n_classes} classes like the "
                f"inputs added before, got {n_classes}"
            )
        self.n_classes = n_classes

    def _bins(self) -> _Bins:
        edges = uniform_edges(self.n_bins)
        return _Bins(
            edges[:-1],
            edges[1:],
            self.counts.copy(),
            self.confidence_sums.copy(),
            self.correct_counts.astype(np.float64),
        )

    def to_frame(self) -> pd.DataFrame:
        """The reliability table of every input added, as :func:`reliability_bins`."""
        return _frame(self._bins())

    def calibration_error(self, norm: str = "l1") -> float:
        """Expected calibration error of every input added.

        As :func:`expected_calibration_error` with uniform bins. Before any
        input was added it is undefined: warns and returns NaN.
        """
        norm = check_norm(norm)
        if self.n_inputs == 0:
            warnings.warn(
                "the calibration error of no inputs is undefined; returning NaN",
                UndefinedMetricWarning,
                stacklevel=2,
            )
            return float("nan")
        return _error(self._bins(), norm)
