"""What the terminal shows while a job runs: logging, warnings, progress bars.

Only the command line configures these; the library just logs and warns.
"""

import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from tqdm import tqdm

__all__ = ["TrainingProgress", "configure_logging", "restore_logging"]

_LOGGER = logging.getLogger("mcdropout")


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return " ".join(text.split("\n"))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    # One line, like every other message, instead of Python's two.
    _LOGGER.warning("%s", message)


@dataclass
class LoggingState:
    """What :func:`configure_logging` changed, to put back afterwards."""

    handler: logging.Handler
    level: int
    propagate: bool
    showwarning: Callable


def configure_logging(level: int) -> LoggingState:
    """Send mcdropout's log records and warnings to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("mcdropout: %(message)s"))
    state = LoggingState(
        handler, _LOGGER.level, _LOGGER.propagate, warnings.showwarning
    )
    _LOGGER.addHandler(handler)
    _LOGGER.setLevel(level)
    _LOGGER.propagate = False
    warnings.showwarning = _show_warning
    return state


def restore_logging(state: LoggingState) -> None:
    """Undo :func:`configure_logging` (``main`` may run inside a Python)."""
    _LOGGER.removeHandler(state.handler)
    _LOGGER.propagate = state.propagate
    _LOGGER.setLevel(state.level)
    warnings.showwarning = state.showwarning


class TrainingProgress:
    """Training progress: a bar on a terminal, else a log line per tenth.

    Passed as ``on_epoch`` to the training loop; use as a context manager so
    the bar is closed.
    """

    def __init__(self, *, bar: bool) -> None:
        self.use_bar = bar
        self._bar: tqdm | None = None

    def __call__(
        self,
        epoch: int,
        epochs: int,
        train_loss: float,
        val_loss: float | None,
        last: bool,
    ) -> None:
        val = "" if val_loss is None else f", validation loss {val_loss:.4f}"
        if not self.use_bar:
            if last or epoch % max(1, epochs // 10) == 0:
                _LOGGER.info("epoch %d/%d: loss %.4f%s", epoch, epochs, train_loss, val)
            return
        if self._bar is None:
            self._bar = tqdm(
                total=epochs, desc="training", unit="epoch", file=sys.stderr
            )
        self._bar.set_postfix_str(f"loss {train_loss:.4f}{val}", refresh=False)
        self._bar.update(1)
        if last:
            # Closed now, so the bars and lines that follow start below it.
            self.close()

    def close(self) -> None:
        """Close the bar, if one is open."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "TrainingProgress":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
