"""The three jobs of the command line, callable from Python too."""

import logging
from pathlib import Path

import torch

from mcdropout.config import Config, ConfigError
from mcdropout.data import load_splits, parquet_available
from mcdropout.pipeline._evaluate import predict_inputs
from mcdropout.pipeline._files import UsageError, check_new_file, write_atomic
from mcdropout.pipeline._model import prepare_model, train_from_config
from mcdropout.training import EpochCallback, TrainingResult

__all__ = ["PREDICTION_FORMATS", "run_predict", "run_train"]

logger = logging.getLogger(__name__)

PREDICTION_FORMATS = (".csv", ".parquet")


def run_train(
    config: Config,
    out: str | Path,
    *,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Train the config's architecture and save its state dict to ``out``.

    The file loads back with ``model.checkpoint: out`` in the same config
    (the built-in networks carry their input standardisation with them).

    Examples
    --------
    >>> from mcdropout.config import load_config
    >>> import tempfile, os
    >>> config = load_config(overrides=["model.train.epochs=1"])
    >>> out = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> len(run_train(config, out).train_loss)
    1
    """
    for key in ("torchscript", "checkpoint"):
        if getattr(config.model, key) is not None:
            raise ConfigError(
                [
                    f"model.{key}: `train` trains the architecture from scratch; "
                    f"remove model.{key} (e.g. --set model.{key}=null)"
                ]
            )
    path = check_new_file(out, overwrite=overwrite)
    splits = load_splits(config.data)
    model, result = train_from_config(config, splits, on_epoch=on_epoch)
    write_atomic(path, lambda partial: torch.save(model.state_dict(), partial))
    logger.info("saved the trained weights to %s", path)
    return result


def run_predict(
    config: Config,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> Path:
    """Write per-input predictions and uncertainties of the test split.

    One row per test input (the columns of ``to_frame()`` of a
    classification or regression prediction), Monte Carlo dropout with the
    calibration fitted on the validation split when it is enabled.

    Parameters
    ----------
    config : Config
    out : str or Path
        A ``.csv`` or ``.parquet`` file (Parquet needs pyarrow).
    overwrite : bool
        Replace an existing file.
    progress : bool
        Show progress bars over the Monte Carlo passes.
    on_epoch : callable or None
        Training progress, when the model is trained.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(out)
    if path.suffix.lower() not in PREDICTION_FORMATS:
        raise UsageError(
            f"--out: expected a file ending in .csv or .parquet, got {str(out)!r}"
        )
    if path.suffix.lower() == ".parquet" and not parquet_available():
        raise UsageError(
            "--out: writing Parquet needs pyarrow; install it with "
            "pip install 'mcdropout[parquet]'"
        )
    path = check_new_file(path, overwrite=overwrite)

    splits = load_splits(config.data)
    model = prepare_model(config, splits, on_epoch=on_epoch).model
    frame = predict_inputs(config, splits, model, progress=progress).to_frame()
    if path.suffix.lower() == ".csv":
        write_atomic(path, lambda partial: frame.to_csv(partial, index=False))
    else:
        write_atomic(path, lambda partial: frame.to_parquet(partial, index=False))
    logger.info("wrote %d predictions to %s", len(frame), path)
    return path
