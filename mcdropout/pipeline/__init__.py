"""Runs from a config: data, model (trained, cached or loaded), Monte Carlo
dropout, calibration, dataset shift, and the files written at the end.

The command line calls these; notebooks can too.
"""

from mcdropout.pipeline._evaluate import (
    Evaluation,
    evaluate,
    make_mc,
    predict_inputs,
    shift_name,
)
from mcdropout.pipeline._files import (
    OutputExistsError,
    UsageError,
    check_new_file,
    check_new_folder,
    write_atomic,
)
from mcdropout.pipeline._model import (
    CACHE_ENV,
    PreparedModel,
    cache_dir,
    cache_key,
    prepare_model,
    resolve_device,
    train_from_config,
)
from mcdropout.pipeline._run import (
    PREDICTION_FORMATS,
    ReportRun,
    run_predict,
    run_report,
    run_train,
)

__all__ = [
    "CACHE_ENV",
    "PREDICTION_FORMATS",
    "Evaluation",
    "OutputExistsError",
    "PreparedModel",
    "ReportRun",
    "UsageError",
    "cache_dir",
    "cache_key",
    "check_new_file",
    "check_new_folder",
    "evaluate",
    "make_mc",
    "predict_inputs",
    "prepare_model",
    "resolve_device",
    "run_predict",
    "run_report",
    "run_train",
    "shift_name",
    "train_from_config",
    "write_atomic",
]
