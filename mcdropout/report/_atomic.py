"""Writing a folder of files so that a reader never sees half of it.

Everything is written into a hidden sibling folder, which is renamed into
place at the end. Replacing an existing folder moves the old one aside first
and deletes it only once the new one is in place, so a crash at any moment
leaves either the old folder or the new one, never neither and never a mix.
"""

import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError

__all__ = ["check_out_dir", "write_folder"]

logger = logging.getLogger(__name__)


def check_out_dir(out_dir: object, *, overwrite: bool) -> Path:
    """``out_dir`` as a Path that may be written, else raise.

    Refuses a path that is a file, and a non-empty folder unless
    ``overwrite`` is True.
    """
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"expected `out_dir` to be a str or path, got {type(out_dir).__name__}"
        )
    path = Path(out_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ArgumentValueError(
            f"expected `out_dir` to be a folder, got the existing file {str(path)!r}"
        )
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ArgumentValueError(
            f"expected `out_dir` to be a new or empty folder, got {str(path)!r}, "
            "which holds files; pass overwrite=True to replace it"
        )
    return path


def _sibling(path: Path, tag: str) -> Path:
    """A new, empty, hidden folder next to ``path``."""
    while True:
        candidate = path.with_name(f".{path.name}.{tag}-{secrets.token_hex(6)}")
        try:
            # mkdir, unlike tempfile.mkdtemp, honours the umask, so the
            # finished folder gets the permissions any new folder would.
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


@contextmanager
def _removed_on_error(folder: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _swap_in(new: Path, path: Path, overwrite: bool) -> None:
    """Rename ``new`` to ``path``, replacing the folder there if allowed."""
    if not path.exists():
        new.rename(path)
        return
    if not any(path.iterdir()):
        path.rmdir()
        new.rename(path)
        return
    if not overwrite:
        # Checked empty at the start; someone has written into it since.
        raise ArgumentValueError(
            f"expected `out_dir` to be a new or empty folder, got {str(path)!r}, "
            "which received files while the report was written; pass "
            "overwrite=True to replace it"
        )

    old = _sibling(path, "old")
    old.rmdir()
    path.rename(old)
    try:
        new.rename(path)
    except BaseException:
        # Put the previous report back before giving up.
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_folder(
    path: Path, fill: Callable[[Path], None], *, overwrite: bool = False
) -> Path:
    """Call ``fill(folder)`` on a temporary folder, then move it to ``path``.

    ``path`` must have passed :func:`check_out_dir`. A folder that holds
    files by then is replaced only with ``overwrite``. On any error the
    temporary folder is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new = _sibling(path, "tmp")
    with _removed_on_error(new):
        fill(new)
        _swap_in(new, path, overwrite)
    logger.info("wrote %s", path)
    return path
