"""Loading trained models: state dicts, TorchScript, and (opt-in) pickles.

A state dict is loaded with ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers. A fully pickled model can run any
code when it is unpickled, so it is refused unless the caller opts in.
"""

import logging
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError

__all__ = [
    "PickleRefusedError",
    "load_pickled_model",
    "load_state_dict",
    "load_torchscript",
]

logger = logging.getLogger(__name__)


class PickleRefusedError(ArgumentValueError):
    """A checkpoint holds pickled objects and pickle loading was not allowed."""


def _read(path: Path, *, weights_only: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if weights_only:
            raise PickleRefusedError(
                f"{path} is not a plain state dict: loading it needs full "
                "unpickling, which can run arbitrary code. Only if you trust "
                "the file, set `model.allow_pickle: true`."
            ) from error
        raise ArgumentValueError(f"cannot unpickle {path}: {error}") from None
    except (RuntimeError, OSError, EOFError) as error:
        raise ArgumentValueError(f"cannot read checkpoint {path}: {error}") from None


def _state_dict_of(content: object, path: Path) -> Mapping[str, torch.Tensor]:
    # Training frameworks often nest the weights under "state_dict".
    if isinstance(content, Mapping) and isinstance(content.get("state_dict"), Mapping):
        content = content["state_dict"]
    if not isinstance(content, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in content.values()
    ):
        raise ArgumentTypeError(
            f"expected {path} to hold a state dict (names to tensors), got "
            f"{type(content).__name__}"
        )
    return content


def load_state_dict(
    model: nn.Module, path: str | Path, *, allow_pickle: bool = False
) -> nn.Module:
    """Load a checkpoint into ``model`` and return the model to use.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture the weights belong to.
    path : str or Path
        A file written by ``torch.save(model.state_dict(), path)``.
    allow_pickle : bool, default False
        Also accept a file that needs full unpickling (a whole pickled
        model, or a state dict with non-tensor objects). Unpickling can run
        arbitrary code: a warning is logged. A whole pickled model is
        returned in place of ``model``.

    Returns
    -------
    torch.nn.Module
        ``model`` with the weights loaded (or the unpickled model).

    Raises
    ------
    PickleRefusedError
        The file needs unpickling and ``allow_pickle`` is False.
    ArgumentValueError
        The weights do not fit the architecture (names or shapes differ).

    Examples
    --------
    >>> import tempfile, os
    >>> net = nn.Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> torch.save(net.state_dict(), path)
    >>> load_state_dict(nn.Linear(2, 1), path).weight.shape
    torch.Size([1, 2])
    """
    path = Path(path)
    try:
        content = _read(path, weights_only=True)
    except PickleRefusedError:
        if not allow_pickle:
            raise
        content = load_pickled_model(path)
    if isinstance(content, nn.Module):
        return content
    state = _state_dict_of(content, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise ArgumentValueError(
            f"the weights in {path} do not fit the model: "
            f"{' '.join(line.strip() for line in first[:3])}"
        ) from None
    return model


def load_pickled_model(path: str | Path) -> object:
    """Unpickle a checkpoint fully, logging that this can run code in it."""
    logger.warning(
        "loading %s with full unpickling (model.allow_pickle is true): this can "
        "run arbitrary code from the file; only do it for files you trust",
        path,
    )
    return _read(Path(path), weights_only=False)


def load_torchscript(path: str | Path) -> nn.Module:
    """Load a TorchScript file (``torch.jit.save``) onto the CPU.

    Notes
    -----
    Scripted dropout and normalisation layers are recognised by the class
    they were scripted from, so both Monte Carlo modes work on the loaded
    model; their dropout rates are fixed (``set_dropout_rate`` refuses them).
    The model cannot be split by ``torch.fx``, so every pass runs whole.
    """
    try:
        with warnings.catch_warnings():
            # PyTorch deprecates TorchScript; loading existing files is the
            # point here, so its FutureWarning would only be noise.
            warnings.filterwarnings("ignore", category=FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise ArgumentValueError(f"cannot load TorchScript {path}: {first}") from None
