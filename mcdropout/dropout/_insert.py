"""Adding dropout to a model that was trained without it."""

import copy
import logging

from torch import nn

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from mcdropout._validation import check_optional_positive_int, check_probability

__all__ = ["INSERTED_NAME", "add_dropout"]

logger = logging.getLogger(__name__)

# The name under which the inserted dropout is registered inside its target.
INSERTED_NAME = "mcdropout_dropout"

# On feature maps neighbouring activations are correlated, so dropping single
# elements barely perturbs the layer; dropping whole channels does.
_CHANNEL_DROPOUT = {
    nn.Conv1d: nn.Dropout1d,
    nn.Conv2d: nn.Dropout2d,
    nn.Conv3d: nn.Dropout3d,
    nn.ConvTranspose1d: nn.Dropout1d,
    nn.ConvTranspose2d: nn.Dropout2d,
    nn.ConvTranspose3d: nn.Dropout3d,
}


def _dropout_for(module: nn.Module, p: float) -> nn.Module:
    for conv_type, dropout_type in _CHANNEL_DROPOUT.items():
        if isinstance(module, conv_type):
            return dropout_type(p)
    return nn.Dropout(p)


def _apply_inserted_dropout(module: nn.Module, args: tuple) -> tuple:
    # A forward pre-hook: drop the first positional input before the module.
    dropout = getattr(module, INSERTED_NAME)
    return (dropout(args[0]), *args[1:])


def _check_before(before: object) -> tuple[type, ...]:
    types = before if isinstance(before, tuple) else (before,)
    if not types or not all(
        isinstance(t, type) and issubclass(t, nn.Module) for t in types
    ):
        raise ArgumentTypeError(
            "expected `before` to be a torch.nn.Module subclass or a tuple of "
            f"them, got {before!r}"
        )
    return types


def add_dropout(
    model: nn.Module,
    p: float = 0.1,
    *,
    before: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Linear,
    last_n: int | None = 1,
) -> nn.Module:
    """Return a copy of ``model`` with dropout in front of some of its layers.

    Parameters
    ----------
    model : torch.nn.Module
        The model to copy; it is not changed.
    p : float, default 0.1
        Drop probability of the inserted dropout, in [0, 1).
    before : type or tuple of types, default ``torch.nn.Linear``
        Dropout is inserted in front of modules of this type.
    last_n : int or None, default 1
        How many of the matching modules receive dropout, counted from the last
        one in registration order (the order of ``model.modules()``, which is
        the order of execution for ``nn.Sequential`` and most models). None
        means all of them.

    Returns
    -------
    torch.nn.Module
        A deep copy of ``model``. Each chosen module gets a dropout submodule
        named ``mcdropout_dropout`` and a forward pre-hook that applies it to
        the module's first input. In front of ``Conv1d``/``Conv2d``/``Conv3d``
        (and their transposes) the dropout is channel-wise
        (``Dropout1d``/``Dropout2d``/``Dropout3d``): on feature maps,
        neighbouring activations are correlated, so whole channels are
        dropped; elsewhere it is ``nn.Dropout``.

    Raises
    ------
    ArgumentValueError
        If ``model`` has fewer than ``last_n`` modules of type ``before``, or
        a chosen module already received dropout from ``add_dropout``.

    Notes
    -----
    The inserted dropout follows the copy's ``training`` flag like any other
    dropout module, so with dropout off (``model.eval()``) the copy computes
    exactly what the original does. Parameter names, and therefore
    ``state_dict`` keys, are unchanged: the dropout has no parameters.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> with_dropout = add_dropout(model, p=0.2)
    >>> with_dropout[2].mcdropout_dropout
    Dropout(p=0.2, inplace=False)
    >>> x = torch.randn(3, 4)
    >>> torch.equal(with_dropout.eval()(x), model.eval()(x))
    True
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(
            f"expected `model` to be a torch.nn.Module, got {type(model).__name__}"
        )
    p = check_probability("p", p)
    types = _check_before(before)
    last_n = check_optional_positive_int("last_n", last_n)

    names = [
        name for name, module in model.named_modules() if isinstance(module, types)
    ]
    type_names = "/".join(t.__name__ for t in types)
    if not names or (last_n is not None and len(names) < last_n):
        raise ArgumentValueError(
            f"expected `model` to have at least {last_n or 1} {type_names} "
            f"module(s) to put dropout in front of (`last_n`={last_n}), "
            f"found {len(names)}"
        )
    chosen = names if last_n is None else names[-last_n:]

    copied = copy.deepcopy(model)
    for name in chosen:
        target = copied.get_submodule(name)
        if hasattr(target, INSERTED_NAME):
            raise ArgumentValueError(
                f"module {name!r} of `model` already has dropout inserted by "
                "add_dropout; change its rate with set_dropout_rate instead"
            )
        # A new module starts in train mode; the copy's flags must not change.
        target.add_module(INSERTED_NAME, _dropout_for(target, p).train(target.training))
        target.register_forward_pre_hook(_apply_inserted_dropout)
        logger.debug("inserted dropout (p=%.4g) in front of %r", p, name)
    return copied
