"""How well uncertainty ranks inputs: selective prediction and detection."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from mcdropout._exceptions import UndefinedMetricWarning
from mcdropout.metrics._checks import check_correct, check_scores

__all__ = [
    "DetectionScores",
    "aurc",
    "misclassification_detection",
    "ood_detection",
    "risk_coverage_curve",
]

# The true positive rate at which the false positive rate is reported.
TPR_LEVEL = 0.95


def _ranked(
    uncertainty: object, correct: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors sorted by increasing uncertainty, and where tie groups end.

    Returns the sorted errors (float64, 1 where wrong), the group index of
    each sorted position and the position after the end of each group.
    """
    uncertainty = check_scores("uncertainty", uncertainty)
    correct = check_correct(correct, len(uncertainty))
    order = np.argsort(uncertainty, kind="stable")
    sorted_uncertainty = uncertainty[order]

    starts = np.r_[True, sorted_uncertainty[1:] != sorted_uncertainty[:-1]]
    group = np.cumsum(starts) - 1
    ends = np.r_[np.flatnonzero(starts)[1:], len(order)]
    return (~correct[order]).astype(np.float64), group, ends


def risk_coverage_curve(
    uncertainty: object, correct: object
) -> tuple[np.ndarray, np.ndarray]:
    """Error rate among the most certain inputs, as more of them are kept.

    Inputs are sorted by increasing uncertainty. Keeping the ``k`` most
    certain of ``N`` inputs covers ``k / N`` of them, at a risk equal to
    their error rate:

    .. math:: \\mathrm{coverage}_k = \\frac{k}{N}, \\quad
       \\mathrm{risk}_k = \\frac1k \\sum_{j \\le k} [\\text{input } (j)
       \\text{ is wrong}]

    Parameters
    ----------
    uncertainty : Tensor or ndarray
        ``(n_inputs,)`` uncertainty scores; higher means less certain.
    correct : Tensor or ndarray
        ``(n_inputs,)`` booleans (or 0/1): whether each prediction is right.

    Returns
    -------
    coverage, risk : ndarray
        float64, one point per distinct uncertainty value, in increasing
        coverage; the last point is coverage 1 at the overall error rate.

    Notes
    -----
    Inputs with equal uncertainty cannot be ordered, so they enter together:
    a point is emitted only where a group of tied inputs ends, and its value
    does not depend on how ties were ordered. Without ties there are
    ``n_inputs`` points, ``k = 1..N``.

    Examples
    --------
    >>> import numpy as np
    >>> coverage, risk = risk_coverage_curve(
    ...     np.array([0.1, 0.4, 0.4, 0.9]), np.array([True, True, False, False])
    ... )
    >>> coverage.tolist(), risk.round(3).tolist()
    ([0.25, 0.75, 1.0], [0.0, 0.333, 0.5])
    """
    errors, _, ends = _ranked(uncertainty, correct)
    cumulative = np.cumsum(errors)[ends - 1]
    return ends / len(errors), cumulative / ends


def aurc(uncertainty: object, correct: object) -> float:
    """Area under the risk-coverage curve (Geifman et al., 2019); lower is better.

    The mean of the selective risks over every coverage ``k / N``:

    .. math:: \\mathrm{AURC} = \\frac1N \\sum_{k=1}^{N} \\mathrm{risk}_k

    with :math:`\\mathrm{risk}_k` as in :func:`risk_coverage_curve`.

    Parameters
    ----------
    uncertainty : Tensor or ndarray
        ``(n_inputs,)`` uncertainty scores; higher means less certain.
    correct : Tensor or ndarray
        ``(n_inputs,)`` booleans (or 0/1): whether each prediction is right.

    Returns
    -------
    float
        In [0, 1].

    Notes
    -----
    Inside a group of tied uncertainties, the number of errors among the
    first ``k`` is taken as its expectation over random orders of the group
    (errors before the group plus the group's error rate times the
    positions used), so the result is the mean AURC over all orderings of
    tied inputs and does not depend on input order. Without ties this is
    the plain mean above.

    Examples
    --------
    >>> import numpy as np
    >>> round(aurc(np.array([0.1, 0.2, 0.3]), np.array([True, False, True])), 6)
    0.277778
    """
    errors, group, ends = _ranked(uncertainty, correct)
    sizes = np.diff(np.r_[0, ends])
    starts = ends - sizes
    rates = np.bincount(group, weights=errors) / sizes
    errors_before = np.r_[0.0, np.cumsum(errors)][starts]

    k = np.arange(1, len(errors) + 1)
    expected_errors = errors_before[group] + (k - starts[group]) * rates[group]
    return float(np.mean(expected_errors / k))


@dataclass(frozen=True)
class DetectionScores:
    """How well a score separates two groups of inputs.

    The positive group is the one the score should flag (misclassified
    inputs, or out-of-distribution inputs); a higher score means "more
    likely positive".

    Attributes
    ----------
    auroc : float
        Area under the ROC curve; 0.5 is chance, 1 perfect separation.
    aupr_in : float
        Average precision with the negative group (correct, or
        in-distribution) as the positive class and the negated score.
    aupr_out : float
        Average precision with the positive group (wrong, or out of
        distribution) as the positive class and the score itself.
    fpr_at_95_tpr : float
        The smallest false positive rate among thresholds whose true
        positive rate is at least 0.95.
    """

    auroc: float
    aupr_in: float
    aupr_out: float
    fpr_at_95_tpr: float

    def to_dict(self) -> dict[str, float]:
        """The four scores as a plain dict."""
        return asdict(self)


def _detection(positive: np.ndarray, scores: np.ndarray) -> DetectionScores:
    # drop_intermediate=False keeps every threshold, so the first one that
    # reaches the TPR level is on the curve.
    fpr, tpr, _ = roc_curve(positive, scores, drop_intermediate=False)
    return DetectionScores(
        auroc=float(roc_auc_score(positive, scores)),
        aupr_in=float(average_precision_score(~positive, -scores)),
        aupr_out=float(average_precision_score(positive, scores)),
        fpr_at_95_tpr=float(fpr[tpr >= TPR_LEVEL].min()),
    )


def misclassification_detection(
    uncertainty: object, correct: object
) -> DetectionScores:
    """How well uncertainty flags the inputs the model gets wrong.

    The positive class is "wrong" and the score is the uncertainty: a
    useful uncertainty is higher on wrong predictions than on right ones.

    Parameters
    ----------
    uncertainty : Tensor or ndarray
        ``(n_inputs,)`` uncertainty scores; higher means less certain.
    correct : Tensor or ndarray
        ``(n_inputs,)`` booleans (or 0/1): whether each prediction is right.

    Returns
    -------
    DetectionScores
        ``auroc`` (scikit-learn's ``roc_auc_score`` of wrong against
        uncertainty), ``aupr_out`` (average precision of wrong against
        uncertainty), ``aupr_in`` (average precision of right against
        minus the uncertainty) and ``fpr_at_95_tpr`` (share of right
        predictions flagged at the threshold that first flags 95% of the
        wrong ones). All NaN, with an :class:`UndefinedMetricWarning`,
        when every prediction is right or every one is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> scores = misclassification_detection(
    ...     np.array([0.1, 0.2, 0.7, 0.3]), np.array([True, True, False, False])
    ... )
    >>> scores.auroc, scores.fpr_at_95_tpr
    (1.0, 0.0)
    """
    uncertainty = check_scores("uncertainty", uncertainty)
    wrong = ~check_correct(correct, len(uncertainty))
    if wrong.all() or not wrong.any():
        warnings.warn(
            "misclassification detection scores are undefined when every "
            f"prediction is {'wrong' if wrong.all() else 'right'}; returning NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return DetectionScores(*[float("nan")] * 4)
    return _detection(wrong, uncertainty)


def ood_detection(in_scores: object, out_scores: object) -> DetectionScores:
    """How well a score separates out-of-distribution inputs from the rest.

    The positive class is "out of distribution" and the score is an
    uncertainty score, higher meaning more likely out of distribution
    (predictive entropy, mutual information, 1 - confidence ...).

    Parameters
    ----------
    in_scores : Tensor or ndarray
        ``(n_in,)`` scores of in-distribution inputs.
    out_scores : Tensor or ndarray
        ``(n_out,)`` scores of out-of-distribution inputs.

    Returns
    -------
    DetectionScores
        ``auroc``, ``aupr_out`` (out as positive, score as is), ``aupr_in``
        (in as positive, negated score) and ``fpr_at_95_tpr`` (share of
        in-distribution inputs flagged at the threshold that first flags
        95% of the out-of-distribution ones).

    Examples
    --------
    >>> import numpy as np
    >>> scores = ood_detection(np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.9]))
    >>> round(scores.auroc, 4), scores.fpr_at_95_tpr
    (0.8333, 0.3333333333333333)
    """
    in_scores = check_scores("in_scores", in_scores, shape="(n_in,)")
    out_scores = check_scores("out_scores", out_scores, shape="(n_out,)")
    positive = np.r_[np.zeros(len(in_scores), bool), np.ones(len(out_scores), bool)]
    return _detection(positive, np.r_[in_scores, out_scores])
