"""Getting the model a config asks for: trained, cached, or loaded from a file."""

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mcdropout._exceptions import ArgumentValueError, MCDropoutError
from mcdropout.config import Config, ConfigError, import_factory
from mcdropout.data import Splits, input_statistics, make_loader
from mcdropout.models import (
    ARCHITECTURES,
    PickleRefusedError,
    TargetScale,
    build_model,
    load_state_dict,
    load_torchscript,
)
from mcdropout.pipeline._files import write_atomic
from mcdropout.training import EpochCallback, TrainingResult, train_model

__all__ = [
    "CACHE_ENV",
    "PreparedModel",
    "cache_dir",
    "cache_key",
    "prepare_model",
    "resolve_device",
    "train_from_config",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "MCDROPOUT_CACHE_DIR"

# Bump when a change makes earlier cached weights unusable.
_CACHE_FORMAT = 1


@dataclass
class PreparedModel:
    """A model ready for Monte Carlo dropout, and where it came from.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode, on the config's device.
    origin : {"trained", "cache", "checkpoint", "torchscript"}
    training : TrainingResult or None
        The loss history when the model was trained in this run.
    """

    model: nn.Module
    origin: str
    training: TrainingResult | None = None


def resolve_device(config: Config) -> torch.device:
    """The torch device of ``config.device`` (``"auto"``: CUDA if present)."""
    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise ConfigError(["device: expected an available CUDA device, got none"])
    return torch.device(
        "cuda"
        if config.device == "cuda" or (cuda and config.device == "auto")
        else "cpu"
    )


def cache_dir() -> Path:
    """Where trained default models are cached.

    ``$MCDROPOUT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mcdropout``, else
    ``~/.cache/mcdropout``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mcdropout"


def _file_stamp(path: Path) -> list:
    # A data file edited in place must not reuse weights trained on the old.
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _folder_stamps(root: Path) -> list:
    # Adding or removing files changes a folder's modification time, so the
    # root and its subfolders (an ImageFolder's classes) stand for the tree.
    if not root.is_dir():
        return []
    folders = [root, *sorted(path for path in root.iterdir() if path.is_dir())]
    return [_file_stamp(folder) for folder in folders]


def _factory_stamp(architecture: str) -> list:
    # Weights trained from edited factory code must not be reused.
    module = architecture.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    origin = None if spec is None else spec.origin
    return [_file_stamp(Path(origin))] if origin and Path(origin).is_file() else []


def _data_stamps(config: Config) -> list:
    """Stamps of the files and folders whose contents train the model."""
    data = config.data.model_dump(mode="json")
    stamps = []
    if isinstance(data.get("path"), str):
        stamps.append(_file_stamp(Path(data["path"])))
    if isinstance(data.get("root"), str):
        stamps += _folder_stamps(Path(data["root"]))
    architecture = config.model.architecture
    if isinstance(architecture, str) and ":" in architecture:
        stamps += _factory_stamp(architecture)
    return stamps


def cache_key(config: Config) -> str:
    """A hash of everything that determines the trained weights.

    The model and data sections (minus the cache switch); the data file
    (path, size, modification time); a torchvision or ImageFolder root and
    its subfolders (modification times change when files are added or
    removed, not when one is edited in place); the source file of a
    ``package.module:factory`` architecture; and the torch version.
    """
    content = {
        "format": _CACHE_FORMAT,
        "model": config.model.model_dump(mode="json", exclude={"cache"}),
        "data": config.data.model_dump(mode="json"),
        "files": _data_stamps(config),
        "torch": torch.__version__.split("+")[0],
    }
    text = json.dumps(content, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _architecture(config: Config, splits: Splits, *, fit_statistics: bool) -> nn.Module:
    """The untrained network the model section describes."""
    model_config, info = config.model, splits.info
    if model_config.architecture not in ARCHITECTURES:
        factory = import_factory(model_config.architecture)
        return factory(**model_config.args)
    statistics = None
    if fit_statistics:
        per_channel = len(info.input_shape) == 3
        statistics = input_statistics(splits.train, per_channel=per_channel)
    try:
        model = build_model(
            model_config.architecture,
            info,
            model_config.args,
            heteroscedastic=model_config.heteroscedastic,
            statistics=statistics,
        )
    except ArgumentValueError as error:
        raise ConfigError([f"model.architecture: {error}"]) from None
    if fit_statistics and info.task == "regression":
        shift, scale = _target_statistics(splits)
        model[-1].set_statistics(shift, scale)
    return model


def _target_statistics(splits: Splits) -> tuple[float, float]:
    targets = torch.cat([target.reshape(1, -1) for _, target in splits.train]).double()
    std = float(targets.std())
    return float(targets.mean()), std if std > 0 else 1.0


def train_from_config(
    config: Config, splits: Splits, *, on_epoch: EpochCallback | None = None
) -> tuple[nn.Module, TrainingResult]:
    """Build the config's architecture and train it on the training split.

    Initialisation, shuffling and the dropout masks of training are seeded
    with ``model.train.seed``, so the same config gives the same weights;
    the global random state is left as it was.
    """
    train = config.model.train
    device = resolve_device(config)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(train.seed)
        model = _architecture(config, splits, fit_statistics=True).to(device)
        logger.info(
            "training %s for up to %d epochs", config.model.architecture, train.epochs
        )
        result = train_model(
            model,
            make_loader(
                splits.train,
                train.batch_size,
                shuffle=True,
                seed=train.seed,
                num_workers=config.data.num_workers,
            ),
            task=splits.info.task,
            epochs=train.epochs,
            lr=train.lr,
            weight_decay=train.weight_decay,
            val_loader=_loader(config, splits.val),
            patience=train.patience,
            heteroscedastic=config.model.heteroscedastic,
            target_scale=_target_scale(model, splits),
            on_epoch=on_epoch,
        )
    return model, result


def _target_scale(model: nn.Module, splits: Splits) -> float:
    """Regression losses are computed in units of the targets' std."""
    if splits.info.task != "regression":
        return 1.0
    scale = next((m.scale for m in model.modules() if isinstance(m, TargetScale)), None)
    return float(scale) if scale is not None else _target_statistics(splits)[1]


def _loader(
    config: Config, dataset: torch.utils.data.Dataset
) -> torch.utils.data.DataLoader:
    return make_loader(
        dataset, config.data.batch_size, num_workers=config.data.num_workers
    )


def _from_checkpoint(config: Config, splits: Splits) -> nn.Module:
    model_config = config.model
    model = _architecture(config, splits, fit_statistics=False)
    try:
        return load_state_dict(
            model, model_config.checkpoint, allow_pickle=model_config.allow_pickle
        )
    except PickleRefusedError as error:
        raise ConfigError([f"model.allow_pickle: {error}"]) from None
    except ArgumentValueError as error:
        raise ConfigError([f"model.checkpoint: {error}"]) from None


def _from_cache(config: Config, splits: Splits, path: Path) -> nn.Module | None:
    if not path.is_file():
        return None
    model = _architecture(config, splits, fit_statistics=False)
    try:
        load_state_dict(model, path)
    except MCDropoutError as error:
        # A stale or foreign file in the cache is retrained over, not fatal.
        logger.warning("ignoring the cached model %s: %s", path, error)
        return None
    logger.info("using the cached model %s", path)
    return model


def _store(model: nn.Module, path: Path) -> None:
    # A cache that cannot be written costs time next run, not this result.
    try:
        write_atomic(path, lambda partial: torch.save(model.state_dict(), partial))
    except OSError as error:
        logger.warning("could not cache the trained model in %s: %s", path, error)
        return
    logger.info("cached the trained model in %s", path)


def prepare_model(
    config: Config,
    splits: Splits,
    *,
    on_epoch: EpochCallback | None = None,
) -> PreparedModel:
    """The model of a run: from TorchScript, a checkpoint, the cache, or trained.

    A model trained here is cached (when ``model.cache`` is true) under
    :func:`cache_dir`, keyed by :func:`cache_key`, so the next run with the
    same model and data skips training.
    """
    device = resolve_device(config)
    model_config = config.model
    if model_config.torchscript is not None:
        try:
            model = load_torchscript(model_config.torchscript)
        except ArgumentValueError as error:
            raise ConfigError([f"model.torchscript: {error}"]) from None
        return PreparedModel(model.to(device).eval(), "torchscript")
    if model_config.checkpoint is not None:
        model = _from_checkpoint(config, splits)
        return PreparedModel(model.to(device).eval(), "checkpoint")

    path = cache_dir() / f"{config.name}-{cache_key(config)}.pt"
    if model_config.cache:
        cached = _from_cache(config, splits, path)
        if cached is not None:
            return PreparedModel(cached.to(device).eval(), "cache")
    model, result = train_from_config(config, splits, on_epoch=on_epoch)
    if model_config.cache:
        _store(model, path)
    return PreparedModel(model.eval(), "trained", result)
