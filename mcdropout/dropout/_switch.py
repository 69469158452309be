"""Switching dropout on at inference time, and nothing else."""

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.instancenorm import _InstanceNorm

from mcdropout._exceptions import ArgumentTypeError, NoDropoutError
from mcdropout._validation import check_choice, check_probability
from mcdropout.dropout._detect import count_functional_dropout

__all__ = [
    "MODES",
    "dropout_modules",
    "enable_dropout",
    "eval_mode",
    "is_dropout",
    "is_norm",
    "set_dropout_rate",
]

logger = logging.getLogger(__name__)

MODES = ("modules", "train_except_norm")

# Layers whose behaviour in train mode would use, and update, batch statistics.
NORM_TYPES = (_BatchNorm, _InstanceNorm)

# TorchScript modules keep only the name of the class they were scripted from.
_SCRIPTED_DROPOUT = frozenset(
    {
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "FeatureAlphaDropout",
    }
)
_SCRIPTED_NORM = frozenset(
    {f"{kind}Norm{n}d" for kind in ("Batch", "Instance") for n in (1, 2, 3)}
    | {"SyncBatchNorm"}
)


def _scripted_name(module: nn.Module) -> str | None:
    if isinstance(module, torch.jit.ScriptModule):
        return getattr(module, "original_name", None)
    return None


def is_dropout(module: nn.Module) -> bool:
    """Whether ``module`` is a dropout layer, scripted with TorchScript or not."""
    return isinstance(module, _DropoutNd) or _scripted_name(module) in _SCRIPTED_DROPOUT


def is_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm or InstanceNorm layer, scripted or not."""
    return isinstance(module, NORM_TYPES) or _scripted_name(module) in _SCRIPTED_NORM


def dropout_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """List the dropout modules of ``model`` with their qualified names.

    Every subclass of torch's ``_DropoutNd`` counts: ``Dropout``,
    ``Dropout1d``, ``Dropout2d``, ``Dropout3d``, ``AlphaDropout`` and
    ``FeatureAlphaDropout``, and user subclasses of them; in a TorchScript
    model, submodules scripted from those six classes.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 2))
    >>> [name for name, _ in dropout_modules(model)]
    ['1']
    """
    return [
        (name, module) for name, module in model.named_modules() if is_dropout(module)
    ]


def _training_flags(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(module, module.training) for module in model.modules()]


def _restore(flags: list[tuple[nn.Module, bool]]) -> None:
    for module, training in flags:
        module.training = training


def _modules_to_switch(model: nn.Module, mode: str) -> list[nn.Module]:
    if mode == "modules":
        switched = [module for _, module in dropout_modules(model)]
        if not switched:
            raise NoDropoutError(
                f"`model` ({type(model).__name__}) has no dropout module, so "
                "mode='modules' has nothing to switch on. Insert dropout with "
                "mcdropout.add_dropout(model), or, if the model calls "
                "torch.nn.functional.dropout(x, p, self.training) in its "
                "forward, use mode='train_except_norm'."
            )
        return switched

    return [module for module in model.modules() if not is_norm(module)]


def _check_functional_dropout(model: nn.Module) -> None:
    """Refuse a model in which train mode cannot switch on any dropout."""
    if dropout_modules(model):
        return
    n_calls = count_functional_dropout(model)
    if n_calls is None:
        logger.debug(
            "%s does not trace; assuming it applies dropout functionally",
            type(model).__name__,
        )
    elif n_calls == 0:
        raise NoDropoutError(
            f"`model` ({type(model).__name__}) has no dropout module and its "
            "traced forward calls no functional dropout, so "
            "mode='train_except_norm' has nothing to switch on. Insert dropout "
            "with mcdropout.add_dropout(model)."
        )


@contextlib.contextmanager
def enable_dropout(
    model: nn.Module, mode: str = "modules", *, check: bool = True
) -> Iterator[nn.Module]:
    """Switch dropout on inside a ``with`` block, leaving everything else alone.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose dropout is switched on. It is changed in place for the
        duration of the block only.
    mode : {"modules", "train_except_norm"}, default "modules"
        ``"modules"`` puts every dropout module (every subclass of torch's
        ``_DropoutNd``) in train mode and leaves every other module's flag as
        the caller set it. ``"train_except_norm"`` puts every module in train
        mode except normalisation layers (BatchNorm, SyncBatchNorm,
        InstanceNorm), which stay as they were; it reaches dropout that the
        model applies functionally, as in
        ``F.dropout(x, p, training=self.training)``.
    check : bool, default True
        In ``"train_except_norm"`` mode, a model without dropout modules is
        traced with ``torch.fx`` to confirm that it calls functional dropout
        (an untraceable model is given the benefit of the doubt). Pass False
        to skip the trace when the model is known to be fine.

    Yields
    ------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    NoDropoutError
        If the model has nothing to switch on in the chosen mode: no dropout
        module in ``"modules"`` mode; in ``"train_except_norm"`` mode, no
        dropout module and no functional dropout call in its traced forward.

    Notes
    -----
    TorchScript models work too: their submodules are recognised by the
    class they were scripted from.

    On exit, also after an exception, every module's ``training`` flag is
    exactly what it was on entry. Parameters and buffers are never touched:
    normalisation layers left in eval mode neither use nor update batch
    statistics. Other modules whose train-mode behaviour differs (for
    example a user-defined layer in ``"train_except_norm"`` mode) do switch.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    >>> _ = model.eval()
    >>> with enable_dropout(model):
    ...     model[1].training
    True
    >>> model[1].training
    False
    """
    check_choice("mode", mode, MODES)
    switched = _modules_to_switch(model, mode)
    flags = _training_flags(model)
    try:
        for module in switched:
            # Set the flag of this module alone; Module.train() would recurse
            # into children, norm layers included.
            module.training = True
        if mode == "train_except_norm" and check:
            # Traced under the switched flags, so `if self.training:` branches
            # are followed as they will run.
            _check_functional_dropout(model)
        yield model
    finally:
        _restore(flags)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every module of ``model`` in eval mode inside a ``with`` block.

    On exit, also after an exception, every ``training`` flag is restored.
    """
    flags = _training_flags(model)
    try:
        for module, _ in flags:
            module.training = False
        yield model
    finally:
        _restore(flags)


def set_dropout_rate(model: nn.Module, p: float) -> nn.Module:
    """Set the drop probability of every dropout module of ``model`` in place.

    Useful to tune ``p`` for Monte Carlo inference after training.

    Parameters
    ----------
    model : torch.nn.Module
        The model to change.
    p : float
        The new drop probability, in [0, 1).

    Returns
    -------
    torch.nn.Module
        ``model`` itself, for chaining.

    Raises
    ------
    NoDropoutError
        If ``model`` has no dropout module.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5))
    >>> set_dropout_rate(model, 0.1)[1].p
    0.1
    """
    p = check_probability("p", p)
    modules = dropout_modules(model)
    if not modules:
        raise NoDropoutError(
            f"`model` ({type(model).__name__}) has no dropout module whose rate "
            "could be set; insert some with mcdropout.add_dropout(model, p)."
        )
    scripted = [name for name, module in modules if _scripted_name(module)]
    if scripted:
        raise ArgumentTypeError(
            "expected `model` with dropout modules whose rate can change, got a "
            f"TorchScript model (module {scripted[0]!r}), whose rates are fixed; "
            "script the model again after set_dropout_rate on the original"
        )
    for name, module in modules:
        logger.debug("dropout %r: p %.4g -> %.4g", name, module.p, p)
        module.p = p
    return model
