"""A plain training loop (Adam) for the built-in networks.

It reports each epoch through an optional callback, so the command line can
draw a progress bar while the library itself never prints.
"""

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mcdropout._validation import (
    check_choice,
    check_optional_positive_int,
    check_positive_float,
    check_positive_int,
)

__all__ = ["EpochCallback", "TrainingResult", "train_model", "training_loss"]

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, int, float, float | None, bool], None]
"""Called after each epoch with ``(epoch, epochs, train_loss, val_loss, last)``;
``last`` is True for the final epoch, whether early stopping ended it or not."""


@dataclass
class TrainingResult:
    """What a training run did.

    Attributes
    ----------
    train_loss, val_loss : list of float
        Mean loss of each epoch (validation loss empty without a loader).
    best_epoch : int
        1-based epoch whose weights the model holds at the end.
    stopped_early : bool
        Whether early stopping ended training before ``epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def training_loss(
    outputs: Tensor,
    targets: Tensor,
    *,
    task: str,
    heteroscedastic: bool = False,
    target_scale: float = 1.0,
) -> Tensor:
    """Loss of one batch, in standardised units for regression.

    Classification: cross-entropy of the logits. Regression: with residual
    :math:`r = (\\mu - y) / s` in units of the targets' standard deviation
    :math:`s`, the mean squared error :math:`r^2`, or for heteroscedastic
    outputs ``[mu, log sigma^2]`` the Gaussian negative log-likelihood
    :math:`\\tfrac12 (\\log \\tilde\\sigma^2 + r^2 / \\tilde\\sigma^2)` with
    :math:`\\tilde\\sigma^2 = \\sigma^2 / s^2` (constant dropped).

    Examples
    --------
    >>> outputs = torch.tensor([[2.0], [4.0]])
    >>> targets = torch.tensor([[1.0], [4.0]])
    >>> float(training_loss(outputs, targets, task="regression", target_scale=2.0))
    0.125
    """
    if task == "classification":
        return F.cross_entropy(outputs, targets)
    if not heteroscedastic:
        return (((outputs - targets) / target_scale) ** 2).mean()
    mean, log_variance = outputs.chunk(2, dim=-1)
    log_variance = log_variance - 2 * math.log(target_scale)
    residual = (mean - targets) / target_scale
    return 0.5 * (log_variance + residual**2 * torch.exp(-log_variance)).mean()


def _epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
) -> float:
    """Mean loss over one pass of ``loader``; a step per batch if training."""
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        with torch.set_grad_enabled(optimizer is not None):
            loss = loss_fn(model(inputs), targets)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        total += float(loss.detach()) * len(targets)
        count += len(targets)
    return total / count


def train_model(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    task: str,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    val_loader: DataLoader | None = None,
    patience: int | None = None,
    heteroscedastic: bool = False,
    target_scale: float = 1.0,
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Train ``model`` in place with Adam and return the loss history.

    Parameters
    ----------
    model : torch.nn.Module
        Trained on the device its parameters are on.
    train_loader : DataLoader
        Yields ``(inputs, targets)`` batches, shuffled by the caller.
    task : {"classification", "regression"}
    epochs : int
        Most passes over the training data.
    lr, weight_decay : float
        Adam's step size and L2 penalty (the weight decay of MC dropout's
        Gaussian-process reading).
    val_loader : DataLoader or None
        Evaluated after each epoch (dropout off).
    patience : int or None
        Stop after this many epochs without a lower validation loss and
        restore the best weights; None trains all ``epochs``.
    heteroscedastic : bool
        Regression outputs are ``[mean, log-variance]``.
    target_scale : float
        Standard deviation of the training targets (regression losses are
        computed in its units, so any target scale trains alike).
    on_epoch : callable or None
        Called as ``on_epoch(epoch, epochs, train_loss, val_loss, last)``.

    Returns
    -------
    TrainingResult

    Examples
    --------
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 2)
    >>> data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> result = train_model(net, data, task="classification", epochs=20, lr=0.05)
    >>> result.train_loss[-1] < result.train_loss[0]
    True
    """
    check_choice("task", task, ("classification", "regression"))
    epochs = check_positive_int("epochs", epochs)
    patience = check_optional_positive_int("patience", patience)
    check_positive_float("target_scale", target_scale)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def loss_fn(outputs: Tensor, targets: Tensor) -> Tensor:
        return training_loss(
            outputs,
            targets,
            task=task,
            heteroscedastic=heteroscedastic,
            target_scale=target_scale,
        )

    result = TrainingResult()
    best_loss, best_state = math.inf, None
    for epoch in range(1, epochs + 1):
        model.train()
        train_loss = _epoch(model, train_loader, loss_fn, device, optimizer)
        result.train_loss.append(train_loss)
        val_loss = None
        if val_loader is not None:
            model.eval()
            val_loss = _epoch(model, val_loader, loss_fn, device)
            result.val_loss.append(val_loss)

        # Early stopping follows the validation loss; without one, the last
        # epoch is the best.
        current = val_loss if (val_loss is not None and patience) else -epoch
        if current < best_loss:
            best_loss, result.best_epoch = current, epoch
            if patience:
                best_state = copy.deepcopy(model.state_dict())
        elif patience and epoch - result.best_epoch >= patience:
            result.stopped_early = True
        last = result.stopped_early or epoch == epochs
        _log_epoch(epoch, epochs, train_loss, val_loss, on_epoch, last)
        if last:
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def _log_epoch(
    epoch: int,
    epochs: int,
    train_loss: float,
    val_loss: float | None,
    on_epoch: EpochCallback | None,
    last: bool,
) -> None:
    val_text = "" if val_loss is None else f", validation loss {val_loss:.4f}"
    logger.debug(
        "epoch %d/%d: training loss %.4f%s", epoch, epochs, train_loss, val_text
    )
    if on_epoch is not None:
        on_epoch(epoch, epochs, train_loss, val_loss, last)
