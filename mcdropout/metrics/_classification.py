"""Proper scores and accuracy of predicted class probabilities."""

import numpy as np

from mcdropout.metrics._checks import check_probs, check_targets

__all__ = [
    "NLL_EPS",
    "accuracy",
    "brier_score",
    "checked_probs_targets",
    "negative_log_likelihood",
]

# Smallest probability the log-likelihood takes, so that a target given zero
# probability costs -log(1e-12) ~ 27.6 nats instead of infinity.
NLL_EPS = 1e-12


def checked_probs_targets(
    probs: object, targets: object
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``probs`` (float64) and ``targets`` (int64)."""
    probs = check_probs(probs)
    targets = check_targets(targets, probs.shape[0], probs.shape[1])
    return probs, targets


def accuracy(probs: object, targets: object) -> float:
    """Share of inputs whose most probable class is the target.

    .. math:: \\mathrm{acc} = \\frac1N \\sum_i [\\arg\\max_k p_{ik} = y_i]

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.

    Returns
    -------
    float
        In [0, 1].

    Notes
    -----
    A row with several largest probabilities predicts the first of them
    (NumPy's and PyTorch's argmax).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])
    >>> accuracy(probs, np.array([0, 1, 1]))
    0.6666666666666666
    """
    probs, targets = checked_probs_targets(probs, targets)
    return float(np.mean(probs.argmax(axis=1) == targets))


def negative_log_likelihood(probs: object, targets: object) -> float:
    """Mean negative log probability of the target class, in nats.

    .. math:: \\mathrm{NLL} = -\\frac1N \\sum_i \\log \\max(p_{i y_i}, \\epsilon),
       \\quad \\epsilon = 10^{-12}

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.

    Returns
    -------
    float
        In [0, -log(1e-12)] (0 to 27.6).

    Notes
    -----
    The clip at :math:`\\epsilon` only keeps a target given probability 0
    from making the mean infinite; it changes nothing for probabilities
    above 1e-12. Rows are not renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    >>> round(negative_log_likelihood(probs, np.array([0, 1])), 6)
    0.490415
    """
    probs, targets = checked_probs_targets(probs, targets)
    target_probs = probs[np.arange(len(targets)), targets]
    return float(-np.mean(np.log(np.maximum(target_probs, NLL_EPS))))


def brier_score(probs: object, targets: object) -> float:
    """Mean over inputs of the squared distance to the one-hot target.

    .. math:: \\mathrm{BS} = \\frac1N \\sum_i \\sum_k (p_{ik} - [y_i = k])^2

    The multiclass Brier score of Brier (1950): summed over classes, so it
    ranges over [0, 2] (not averaged over classes, and for two classes
    twice the binary score of the positive class).

    Parameters
    ----------
    probs : Tensor or ndarray
        ``(n_inputs, n_classes)`` predicted probabilities; rows sum to 1.
    targets : Tensor or ndarray
        ``(n_inputs,)`` integer class indices in ``[0, n_classes)``.

    Returns
    -------
    float
        In [0, 2].

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.5, 0.5], [0.0, 1.0]])
    >>> brier_score(probs, np.array([0, 1]))
    0.25
    """
    probs, targets = checked_probs_targets(probs, targets)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(targets)), targets] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
