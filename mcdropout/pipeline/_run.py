"""The three jobs of the command line, callable from Python too."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mcdropout.config import Config, ConfigError
from mcdropout.data import Splits, load_splits, parquet_available
from mcdropout.pipeline._evaluate import (
    Evaluation,
    check_shifts,
    evaluate,
    ood_dataset,
    predict_inputs,
)
from mcdropout.pipeline._files import (
    UsageError,
    check_new_file,
    check_new_folder,
    write_atomic,
)
from mcdropout.pipeline._model import PreparedModel, prepare_model, train_from_config
from mcdropout.report import CalibrationReport
from mcdropout.training import EpochCallback, TrainingResult

__all__ = ["PREDICTION_FORMATS", "ReportRun", "run_predict", "run_report", "run_train"]

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
    write_atomic(
        path,
        lambda partial: torch.save(model.state_dict(), partial),
        overwrite=overwrite,
    )
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

    def write(partial: Path) -> None:
        if path.suffix.lower() == ".csv":
            frame.to_csv(partial, index=False)
        else:
            frame.to_parquet(partial, index=False)

    write_atomic(path, write, overwrite=overwrite)
    logger.info("wrote %d predictions to %s", len(frame), path)
    return path


@dataclass
class ReportRun:
    """A finished ``report`` job.

    Attributes
    ----------
    report : CalibrationReport
        Its ``metrics`` and ``tables`` stay available after writing.
    path : Path
        The report's folder.
    evaluation : Evaluation
        Every prediction the report compares.
    model : PreparedModel
        The model and where it came from.
    """

    report: CalibrationReport
    path: Path
    evaluation: Evaluation
    model: PreparedModel

    @property
    def index_html(self) -> Path | None:
        """The report's web page, when the HTML format was written."""
        page = self.path / "index.html"
        return page if page.is_file() else None


def _describe_model(config: Config, prepared: PreparedModel) -> str:
    model = config.model
    if prepared.origin == "torchscript":
        return f"TorchScript {model.torchscript.name}"
    args = ", ".join(f"{key}={value}" for key, value in model.args.items())
    text = f"{model.architecture}({args})"
    if prepared.origin == "checkpoint":
        return f"{text} from {model.checkpoint.name}"
    return f"{text}, {prepared.origin}"


def _describe_data(config: Config) -> str:
    data = config.data
    name = (
        getattr(data, "name", None)
        or Path(getattr(data, "path", None) or getattr(data, "root", "")).name
    )
    return f"{data.source} {name}"


def _metadata(
    config: Config, prepared: PreparedModel, evaluation: Evaluation, seconds: float
) -> dict[str, object]:
    metadata: dict[str, object] = {
        "config": config.name,
        "model": _describe_model(config, prepared),
        "data": _describe_data(config),
        "n_passes": config.mc.n_passes,
        "mode": config.mc.mode,
        "seed": config.mc.seed,
    }
    if prepared.training is not None:
        metadata["epochs_trained"] = len(prepared.training.train_loss)
    metadata.update(evaluation.calibration)
    metadata["time_taken"] = f"{seconds:.1f} s"
    return metadata


def _check_options(config: Config, splits: Splits) -> None:
    """Refuse, before any training, what the data cannot support."""
    if splits.info.task == "classification":
        check_shifts(config, splits)
        ood_dataset(config, splits)
        return
    if config.ood.shifts:
        raise ConfigError(
            ["ood.shifts: dataset shift is reported for classification only"]
        )
    if config.ood.dataset is not None:
        raise ConfigError(
            [
                "ood.dataset: out-of-distribution detection is reported for "
                "classification only"
            ]
        )


def run_report(
    config: Config,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> ReportRun:
    """Run a config end to end and write its calibration report.

    Loads the data, gets the model (TorchScript, checkpoint, cache, or
    trained and cached), runs Monte Carlo dropout and the deterministic
    baseline on the test split, fits the calibration on the validation
    split, predicts the shifted and out-of-distribution inputs, and writes
    the report (``index.html``, ``report.md``, ``metrics.json``,
    ``predictions.csv`` as ``report.formats`` says).

    Parameters
    ----------
    config : Config
    out_dir : str, Path or None
        The report's folder; None means ``reports/<config name>``.
    overwrite : bool
        Replace a folder that already holds files (checked before any work).
    progress : bool
        Progress bars over the Monte Carlo passes.
    on_epoch : callable or None
        Training progress, when the model is trained.

    Returns
    -------
    ReportRun
    """
    started = time.perf_counter()
    out_dir = Path("reports") / config.name if out_dir is None else Path(out_dir)
    path = check_new_folder(out_dir, overwrite=overwrite)
    splits = load_splits(config.data)
    _check_options(config, splits)

    prepared = prepare_model(config, splits, on_epoch=on_epoch)
    evaluation = evaluate(config, splits, prepared.model, progress=progress)
    metadata = _metadata(config, prepared, evaluation, time.perf_counter() - started)
    report = CalibrationReport(
        evaluation.mc,
        deterministic=evaluation.deterministic,
        calibrated=evaluation.calibrated,
        ood=evaluation.ood,
        shifted=evaluation.shifted or None,
        class_names=splits.info.class_names,
        n_bins=config.report.n_bins,
        metadata=metadata,
        dpi=config.report.dpi,
        sections=config.report.sections,
    )
    written = report.write(path, overwrite=overwrite, formats=config.report.formats)
    return ReportRun(report, written, evaluation, prepared)
