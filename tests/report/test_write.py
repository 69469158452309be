import base64
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from mcdropout import (
    ArgumentTypeError,
    ArgumentValueError,
    RegressionPrediction,
    UndefinedMetricWarning,
)
from mcdropout.report import CalibrationReport
from tests.report.conftest import CLASS_NAMES

FIGURES = {
    "reliability",
    "reliability_overlay",
    "uncertainty_distributions",
    "risk_coverage",
    "ood",
    "convergence",
    "shift",
}


class Page(HTMLParser):
    """Every tag, attribute and piece of text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.fixture(scope="module")
def page(written) -> tuple[str, Page]:
    raw = (written / "index.html").read_text(encoding="utf-8")
    parser = Page()
    parser.feed(raw)
    parser.close()
    return raw, parser


def listing(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones too), by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_writes_every_file(written):
    files = set(listing(written))
    expected = {"index.html", "report.md", "metrics.json", "predictions.csv"}
    assert files == expected | {f"figures/{name}.png" for name in FIGURES}
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]


def test_html_embeds_every_figure_as_png(page):
    _, parser = page
    images = parser.all("img")
    assert len(images) == len(FIGURES)
    for image in images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        assert base64.b64decode(image["src"][len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"
    ids = {attrs["id"] for attrs in parser.all("figure")}
    assert ids == {f"figure-{name}" for name in FIGURES}


def test_html_holds_every_metric_value(page, report):
    _, parser = page
    cells = {attrs.get("title") for attrs in parser.all("td")}
    for name in ("deterministic", "mc_dropout", "mc_dropout_temperature_scaled"):
        for value in report.metrics[name].values():
            assert repr(value) in cells
    for measure in report.metrics["ood"].values():
        assert repr(measure["auroc"]) in cells
    text = " ".join(parser.text)
    for heading in ("What was run", "Out-of-distribution detection", "Dataset shift"):
        assert heading in text
    assert "version: scikit-learn" in text and "gaussian_noise=2.0" in text


def test_html_escapes_data_and_loads_nothing(page):
    raw, parser = page
    tags = {name for name, _ in parser.tags}
    assert "script" not in tags and "b" not in tags
    assert "<script>alert(1)</script>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    # Parsed back, the names read as they were given.
    text = " ".join(parser.text)
    assert all(name in text for name in CLASS_NAMES) and "<b>MLP</b>" in text
    for name, attrs in parser.tags:
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http", "//")), (name, attrs)
    assert not parser.all("link")


def test_markdown_links_existing_figures_and_escapes(written, report):
    text = (written / "report.md").read_text(encoding="utf-8")
    for name in FIGURES:
        assert f"](figures/{name}.png)" in text
    assert "| &lt;script&gt;alert(1)&lt;/script&gt; |" in text
    assert "| b\\|c |" in text
    assert "<script>" not in text
    row = report.tables["metrics"].loc["mc_dropout"]
    assert f"| mc\\_dropout | {row['accuracy']:.4f} | {row['nll']:.4f} |" in text


def test_markdown_cells_cannot_become_links_or_emphasis(predictions, tmp_path):
    names = ["[click](http://x)", "*loud*", "`code`"]
    report = CalibrationReport(predictions["mc"], class_names=names, n_bins=5)
    text = (report.write(tmp_path / "r", formats=("md",)) / "report.md").read_text()
    assert "\\[click\\](http://x)" in text and "[click](" not in text
    assert "\\*loud\\*" in text and "\\`code\\`" in text


def reject_nan(constant: str) -> None:
    raise AssertionError(f"metrics.json holds {constant}")


def test_metrics_json_is_the_metrics(written, report):
    text = (written / "metrics.json").read_text(encoding="utf-8")
    assert json.loads(text, parse_constant=reject_nan) == report.metrics


def test_predictions_csv_has_one_row_per_input(written, predictions):
    frame = pd.read_csv(written / "predictions.csv")
    mc = predictions["mc"]
    assert len(frame) == len(mc)
    assert frame["target"].tolist() == mc.targets.tolist()
    assert frame["predicted_name"].tolist() == [CLASS_NAMES[k] for k in mc.predicted]
    assert frame["confidence"].to_numpy() == pytest.approx(mc.confidence.numpy())
    for column in ("predictive_entropy", "expected_entropy", "mutual_information"):
        assert column in frame


def test_nan_is_written_as_null(tmp_path):
    # A regression baseline without spread has no likelihood: NaN, then null.
    mean = torch.linspace(0, 1, 5, dtype=torch.float64)
    mc = RegressionPrediction(
        mean,
        torch.ones(5, dtype=torch.float64),
        torch.zeros(5, dtype=torch.float64),
        n_passes=4,
        targets=mean + 0.5,
    )
    flat = RegressionPrediction(mean, mean * 0, mean * 0, n_passes=1)
    with pytest.warns(UndefinedMetricWarning, match="reporting NaN"):
        report = CalibrationReport(mc, deterministic=flat, dpi=40)
    out = report.write(tmp_path / "regression", formats=("json", "md"))

    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=reject_nan)
    assert metrics["deterministic"]["nll"] is None
    assert math.isfinite(metrics["mc_dropout"]["nll"])
    assert set(listing(out)) == {
        "metrics.json",
        "report.md",
        "figures/calibration.png",
        "figures/intervals.png",
    }


def test_refuses_a_non_empty_folder_or_a_file(tmp_path, report):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ArgumentValueError, match="expected `out_dir` to be a new or"):
        report.write(tmp_path / "taken", formats=("json",))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentValueError, match="`out_dir` to be a folder"):
        report.write(tmp_path / "file", formats=("json",))
    assert listing(tmp_path) == {"taken/notes.txt": b"mine", "file": b"x"}


def test_writes_into_an_empty_folder_and_replaces_with_overwrite(tmp_path, report):
    (tmp_path / "out").mkdir()
    report.write(tmp_path / "out", formats=("json",))
    (tmp_path / "out" / "stale.txt").write_text("old")

    out = report.write(tmp_path / "out", overwrite=True, formats=("json", "csv"))
    assert out == (tmp_path / "out").absolute()
    assert set(listing(tmp_path)) == {"out/metrics.json", "out/predictions.csv"}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_write_leaves_nothing_behind(tmp_path, report, monkeypatch, overwrite):
    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("disk full")

    target = tmp_path / "report"
    if overwrite:
        report.write(target, formats=("json",))
    before = listing(tmp_path)

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        report.write(target, overwrite=overwrite)
    assert listing(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["report"] if overwrite else []
    )


def test_a_failed_swap_puts_the_old_report_back(tmp_path, report, monkeypatch):
    target = tmp_path / "report"
    report.write(target, formats=("json",))
    before = listing(tmp_path)
    rename = Path.rename

    def failing_rename(self, destination):
        # Moving the old report aside works; moving the new one in fails.
        if Path(destination) == target.absolute() and ".tmp-" in self.name:
            raise OSError("rename failed")
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="rename failed"):
        report.write(target, overwrite=True, formats=("json", "csv"))
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("formats", "error", "message"),
    [
        (("pdf",), ArgumentValueError, "expected `formats` to be one of"),
        ((), ArgumentValueError, "at least one"),
        ("html", ArgumentTypeError, "sequence of names"),
    ],
)
def test_bad_formats(tmp_path, report, formats, error, message):
    with pytest.raises(error, match=message):
        report.write(tmp_path / "r", formats=formats)
    assert not list(tmp_path.iterdir())


def test_figures_are_let_go_after_writing_and_redrawn(tmp_path, predictions):
    report = CalibrationReport(predictions["mc"], n_bins=5, dpi=40)
    first = report.figures["reliability"]
    report.write(tmp_path / "r", formats=("md",))
    assert report.figures["reliability"] is not first
    assert set(report.figures) == {
        "reliability",
        "uncertainty_distributions",
        "risk_coverage",
        "convergence",
    }


def test_sections_choose_what_the_pages_show(predictions, tmp_path):
    report = CalibrationReport(predictions["mc"], sections=["uncertainty"], n_bins=5)
    folder = report.write(tmp_path / "r", formats=("html", "md"))
    text = (folder / "report.md").read_text()
    assert "## Uncertainty and errors" in text
    assert "## Number of passes" not in text and "## Per class" not in text
    figures = sorted(path.stem for path in (folder / "figures").iterdir())
    assert figures == ["reliability", "risk_coverage", "uncertainty_distributions"]
    with pytest.raises(ArgumentValueError, match=r"`sections`.*got 'plots'"):
        CalibrationReport(predictions["mc"], sections=["plots"])


def test_a_folder_filled_while_writing_is_not_replaced(report, tmp_path, monkeypatch):
    out = tmp_path / "r"
    fill = CalibrationReport._fill

    def fill_while_someone_writes(self, folder, formats):
        fill(self, folder, formats)
        out.mkdir()
        (out / "theirs.txt").write_text("keep me")

    monkeypatch.setattr(CalibrationReport, "_fill", fill_while_someone_writes)
    with pytest.raises(ArgumentValueError, match="received files while"):
        report.write(out, formats=("json",))
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
