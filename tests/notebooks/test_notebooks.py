"""The tutorial notebooks: stored without outputs, and each runs top to bottom.

Each notebook is executed by a fresh IPython kernel running this very
interpreter (so the kernel sees the installed mcdropout, whatever kernel
specs the machine has registered), in an empty temporary working directory.
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"calibration", "ood_shift", "quickstart", "regression"}

# Seconds one cell may take before the run fails (a whole notebook takes 10 to
# 20 s); generous because other test runs may share the CPU.
CELL_TIMEOUT = 180

# tqdm.auto's notice, printed on import when ipywidgets is not installed.
TQDM_NOTICE = re.compile(r"TqdmWarning: IProgress not found|from \.autonotebook")


def _client(nb: nbformat.NotebookNode, cwd: Path) -> NotebookClient:
    """A client whose ``python3`` kernel is ``sys.executable``.

    The kernel spec manager searches no kernel directories, so jupyter_client
    falls back to ipykernel's own spec, which launches the interpreter it is
    imported in: a ``python3`` spec registered elsewhere (by another Python,
    on ``JUPYTER_PATH`` or in the user's data directory) cannot win.
    """
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)
    return NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )


def _stream_text(nb: nbformat.NotebookNode, name: str) -> list[str]:
    return [
        output["text"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == name
    ]


def _n_images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.fixture
def single_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels inherit this: tiny models train fastest on one thread, and far
    slower on two when other test runs hold the cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


def test_every_tutorial_is_there():
    assert {path.stem for path in NOTEBOOKS} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    for index, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {index} has outputs"
        assert cell.execution_count is None, f"code cell {index} has a count"
        assert "execution" not in cell.metadata, f"code cell {index} has timings"
    assert "widgets" not in nb.metadata
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_tutorial_layout(path: Path):
    nb = nbformat.read(path, as_version=4)
    first, last = nb.cells[0], nb.cells[-1]

    # A title, and a last section pointing the reader onwards.
    assert first.cell_type == "markdown"
    assert first.source.startswith("# ")
    assert last.cell_type == "markdown"
    assert last.source.startswith("## What to read next")


def test_kernel_is_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A registered "python3" spec that would fail at once if it were used.
    decoy = tmp_path / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    argv = [sys.executable, "-c", "raise SystemExit('decoy kernel')"]
    (decoy / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "decoy", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    cell = nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")
    nb = nbformat.v4.new_notebook(cells=[cell])
    _client(nb, tmp_path).execute()
    assert _stream_text(nb, "stdout") == [sys.executable + "\n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, tmp_path: Path, single_threaded: None):
    nb = nbformat.read(path, as_version=4)

    # Raises CellExecutionError, with the cell and its traceback, on failure.
    _client(nb, tmp_path).execute()

    # Warnings would greet a newcomer in red; tqdm's notice is the library's
    # import, not the notebook's doing.
    stderr = [
        line
        for text in _stream_text(nb, "stderr")
        for line in text.splitlines()
        if line.strip() and not TQDM_NOTICE.search(line)
    ]
    assert stderr == []
    assert _n_images(nb) >= 1

    # Files belong in a tempfile directory, never in the working directory.
    assert list(tmp_path.iterdir()) == []
