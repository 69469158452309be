"""Writing single output files atomically, never over an existing file unasked."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from mcdropout._exceptions import ArgumentValueError

__all__ = [
    "OutputExistsError",
    "UsageError",
    "check_new_file",
    "check_new_folder",
    "write_atomic",
]


class UsageError(ArgumentValueError):
    """A command-line argument (not the config) is not accepted."""


class OutputExistsError(UsageError):
    """An output path already exists and overwriting was not asked for."""


def check_new_file(path: str | Path, *, overwrite: bool, option: str = "--out") -> Path:
    """``path`` as an absolute Path that may be written, else raise.

    Refuses an existing folder always, and an existing file unless
    ``overwrite`` is True.
    """
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise OutputExistsError(
            f"{option}: expected a file path, got the folder {path}"
        )
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{option}: {path} already exists; pass --overwrite to replace it"
        )
    return path


def check_new_folder(
    path: str | Path, *, overwrite: bool, option: str = "--out"
) -> Path:
    """``path`` as an absolute Path for a new report folder, else raise.

    Checked before any work starts; refuses a file, and a folder holding
    files unless ``overwrite`` is True.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{option}: expected a folder, got the file {path}")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{option}: {path} already holds files; pass --overwrite to replace it"
        )
    return path


def write_atomic(
    path: Path, write: Callable[[Path], None], *, overwrite: bool = True
) -> Path:
    """Call ``write(temporary_path)``, then move the result onto ``path``.

    The temporary file sits next to ``path``, so the move is atomic: a
    reader sees the old file or the complete new one, never a partial one.
    Without ``overwrite`` the result is published with a hard link, which
    fails if ``path`` has appeared since it was checked, so a file someone
    else wrote meanwhile is never replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        write(partial)
        if overwrite:
            os.replace(partial, path)
        else:
            _publish_new(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _publish_new(partial: Path, path: Path) -> None:
    try:
        os.link(partial, path)
    except FileExistsError:
        raise OutputExistsError(
            f"--out: {path} appeared while this ran; pass --overwrite to replace it"
        ) from None
    except OSError:
        # A file system without hard links: check, then move (not atomic
        # against a concurrent writer, but never over an existing file).
        if path.exists():
            raise OutputExistsError(
                f"--out: {path} appeared while this ran; pass --overwrite to replace it"
            ) from None
        os.replace(partial, path)
