"""The ``mcdropout`` command: ``report``, ``predict`` and ``train``.

Exit codes: 0 success, 2 a usage or config error (found before any work
starts, where possible), 1 a failure while running. Errors are one line on
stderr; ``--debug`` adds the traceback.
"""

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

import pandas as pd
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from mcdropout._exceptions import MCDropoutError
from mcdropout.cli._progress import (
    TrainingProgress,
    configure_logging,
    restore_logging,
)
from mcdropout.config import ConfigError, load_config
from mcdropout.pipeline import ReportRun, UsageError, run_predict, run_report, run_train

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

_EXAMPLES = """\
examples:
  mcdropout report
      the embedded default: digits, an MLP with dropout, T=50 passes,
      temperature scaling, noise and rotation shift; writes reports/digits/
  mcdropout report --config configs/breast_cancer.yaml --set mc.n_passes=100
  mcdropout train --config configs/digits.yaml --out model.pt
  mcdropout report --config configs/digits.yaml --set model.checkpoint=model.pt
  mcdropout predict --config configs/diabetes.yaml --out predictions.csv

Config reference: configs/README.md. Exit codes: 0 success, 2 usage or
config error, 1 failure while running.
"""


def _version() -> str:
    from mcdropout import __version__

    return f"mcdropout {__version__}"


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value by its dotted key, e.g. mc.n_passes=100 "
        "(repeatable; the value is read as YAML and checked by the schema)",
    )
    common.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )
    common.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="PyTorch CPU threads (default 1: fastest for the small built-in "
        "models, and robust on a busy machine; raise it for CNNs)",
    )
    common.add_argument(
        "--debug", action="store_true", help="debug logging and full tracebacks"
    )
    common.add_argument(
        "--quiet", action="store_true", help="only warnings and errors on stderr"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mcdropout`` command."""
    parser = argparse.ArgumentParser(
        prog="mcdropout",
        description="Monte Carlo dropout uncertainty and calibration reports "
        "for PyTorch models.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    common = _common_options()
    formatter = argparse.RawDescriptionHelpFormatter

    report = commands.add_parser(
        "report",
        parents=[common],
        help="run MC dropout on the config's data and write the report",
        description="Run MC dropout on the config's data, compare it with the "
        "deterministic model and temperature scaling, and write the report.",
        epilog=_EXAMPLES,
        formatter_class=formatter,
    )
    report.add_argument(
        "--config", metavar="FILE", help="YAML config (default: the embedded digits)"
    )
    report.add_argument(
        "--out", metavar="DIR", help="report folder (default: reports/<config name>)"
    )

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="write per-input predictions and uncertainties",
        description="Write one row per test input: prediction, confidence and "
        "uncertainties, calibrated when the config says so.",
        formatter_class=formatter,
    )
    predict.add_argument("--config", metavar="FILE", required=True)
    predict.add_argument("--out", metavar="FILE.csv|FILE.parquet", required=True)

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train the config's built-in model and save its state dict",
        description="Train the config's architecture and save its weights; "
        "use them with --set model.checkpoint=FILE.",
        formatter_class=formatter,
    )
    train.add_argument("--config", metavar="FILE", required=True)
    train.add_argument("--out", metavar="FILE.pt", required=True)
    return parser


def _summary_table(run: ReportRun) -> str:
    """Deterministic against MC dropout (and calibrated): the key metrics."""
    table: pd.DataFrame = run.report.tables["metrics"]
    columns = ["accuracy", "nll", "ece"]
    if "accuracy" not in table.columns:
        columns = ["rmse", "nll", "calibration_error"]
    names = {
        "deterministic": "deterministic",
        "mc_dropout": f"MC dropout (T={run.report.mc.n_passes})",
        "mc_dropout_temperature_scaled": "MC dropout, temperature-scaled",
        "mc_dropout_variance_scaled": "MC dropout, variance-scaled",
    }
    shown = table[columns].rename(index=names)
    shown.index.name = None
    return shown.to_string(float_format=lambda value: f"{value:.4f}")


def _report(args: argparse.Namespace, bar: bool) -> None:
    config = load_config(args.config, args.overrides)
    with TrainingProgress(bar=bar) as on_epoch:
        run = run_report(
            config, args.out, overwrite=args.overwrite, progress=bar, on_epoch=on_epoch
        )
    print(_summary_table(run))
    page = run.index_html
    print(f"report: {page if page is not None else run.path}")


def _predict(args: argparse.Namespace, bar: bool) -> None:
    config = load_config(args.config, args.overrides)
    with TrainingProgress(bar=bar) as on_epoch:
        path = run_predict(
            config, args.out, overwrite=args.overwrite, progress=bar, on_epoch=on_epoch
        )
    print(f"predictions: {path}")


def _train(args: argparse.Namespace, bar: bool) -> None:
    config = load_config(args.config, args.overrides)
    with TrainingProgress(bar=bar) as on_epoch:
        result = run_train(
            config, args.out, overwrite=args.overwrite, on_epoch=on_epoch
        )
    print(
        f"trained {len(result.train_loss)} epochs, final training loss "
        f"{result.train_loss[-1]:.4f}; weights: {args.out}"
    )


_COMMANDS = {"report": _report, "predict": _predict, "train": _train}


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, MCDropoutError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mcdropout`` command; return its exit code.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after the program name; None reads ``sys.argv``.

    Examples
    --------
    >>> main(["report", "--config", "missing.yaml"])  # doctest: +SKIP
    2
    """
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        build_parser().error(
            f"--threads: expected a positive integer, got {args.threads}"
        )
    level = logging.DEBUG if args.debug else logging.INFO
    logging_state = configure_logging(logging.WARNING if args.quiet else level)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    bar = sys.stderr.isatty() and not args.quiet
    try:
        # Log lines are printed above open progress bars, not through them.
        with logging_redirect_tqdm([logging.getLogger("mcdropout")]):
            _COMMANDS[args.command](args, bar)
        return EXIT_OK
    except (ConfigError, UsageError) as error:
        return _fail(error, args.debug, EXIT_USAGE)
    except KeyboardInterrupt:
        print("mcdropout: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last resort: any failure is one line
        return _fail(error, args.debug, EXIT_FAILURE)
    finally:
        torch.set_num_threads(previous_threads)
        restore_logging(logging_state)


def _fail(error: BaseException, debug: bool, code: int) -> int:
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    print(f"mcdropout: error: {_one_line(error)}", file=sys.stderr)
    return code
