"""``CalibrationReport``: metrics, tables and figures of MC dropout predictions."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure

from mcdropout._exceptions import (
    ArgumentTypeError,
    ArgumentValueError,
    UndefinedMetricWarning,
)
from mcdropout._validation import check_choice, check_positive_int
from mcdropout.plots._shift import shift_table
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction
from mcdropout.report._atomic import check_out_dir, write_folder
from mcdropout.report._content import (
    class_table,
    classification_metrics,
    library_versions,
    ood_table,
    regression_metrics,
    run_table,
)
from mcdropout.report._figures import (
    CAPTIONS,
    classification_figures,
    regression_figures,
)
from mcdropout.report._render import (
    Section,
    format_number,
    render_html,
    render_markdown,
)
from mcdropout.report._sections import (
    OPTIONAL_SECTIONS,
    classification_sections,
    regression_sections,
)

__all__ = ["FORMATS", "CalibrationReport"]

logger = logging.getLogger(__name__)

FORMATS = ("html", "md", "json", "csv")

Prediction = ClassificationPrediction | RegressionPrediction

# The name of each compared prediction in tables and in metrics.json; the
# calibrated one is named by what calibrates it, per kind of prediction.
DETERMINISTIC, MC = "deterministic", "mc_dropout"
CALIBRATED = {
    ClassificationPrediction: "mc_dropout_temperature_scaled",
    RegressionPrediction: "mc_dropout_variance_scaled",
}


def _check_mc(mc: object) -> Prediction:
    if not isinstance(mc, (ClassificationPrediction, RegressionPrediction)):
        raise ArgumentTypeError(
            "expected `mc` to be a ClassificationPrediction or RegressionPrediction, "
            f"got {type(mc).__name__}"
        )
    if mc.targets is None:
        raise ArgumentValueError(
            "expected `mc` to carry its targets (predict(..., targets=...)), got "
            "a prediction without them"
        )
    return mc


def _same_inputs(name: str, prediction: object, mc: Prediction) -> Prediction:
    """``prediction`` of the same kind and inputs as ``mc``, with its targets."""
    if type(prediction) is not type(mc):
        raise ArgumentTypeError(
            f"expected `{name}` to be a {type(mc).__name__} like `mc`, got "
            f"{type(prediction).__name__}"
        )
    if len(prediction) != len(mc):
        raise ArgumentValueError(
            f"expected `{name}` to predict the {len(mc)} inputs of `mc`, got "
            f"{len(prediction)}"
        )
    if prediction.targets is None:
        # Same inputs, so the targets of `mc` are its targets too.
        return dataclasses.replace(prediction, targets=mc.targets)
    if not torch.equal(prediction.targets.cpu(), mc.targets.cpu()):
        raise ArgumentValueError(
            f"expected `{name}` to have the targets of `mc` (the same inputs), "
            "got different targets"
        )
    return prediction


def _compared(
    mc: Prediction, deterministic: object, calibrated: object
) -> dict[str, Prediction]:
    """The predictions to compare, by name, in the order tables show them."""
    compared = {}
    if deterministic is not None:
        compared[DETERMINISTIC] = _same_inputs("deterministic", deterministic, mc)
    compared[MC] = mc
    if calibrated is not None:
        name = CALIBRATED[type(mc)]
        compared[name] = _same_inputs("calibrated", calibrated, mc)
    return compared


def _check_sections(sections: object) -> tuple[str, ...]:
    if isinstance(sections, str) or not isinstance(sections, Sequence):
        raise ArgumentTypeError(
            f"expected `sections` to be a sequence of section names, got "
            f"{type(sections).__name__}"
        )
    for name in sections:
        check_choice("sections", name, OPTIONAL_SECTIONS)
    return tuple(sections)


def _check_metadata(metadata: object) -> dict[str, object]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ArgumentTypeError(
            f"expected `metadata` to be a mapping, got {type(metadata).__name__}"
        )
    return dict(metadata)


def _check_class_names(class_names: object, n_classes: int) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ArgumentTypeError(
            "expected `class_names` to be a sequence of strings, got "
            f"{type(class_names).__name__}"
        )
    if len(class_names) != n_classes:
        raise ArgumentValueError(
            f"expected `class_names` to name the {n_classes} classes, got "
            f"{len(class_names)} names"
        )
    return [str(name) for name in class_names]


def _check_shifted(
    shifted: object, mc: ClassificationPrediction
) -> dict[str, ClassificationPrediction]:
    if not isinstance(shifted, Mapping) or not shifted:
        raise ArgumentTypeError(
            "expected `shifted` to be a non-empty mapping of shift names to "
            f"predictions, got {type(shifted).__name__}"
        )
    checked = {}
    for name, prediction in shifted.items():
        where = f"shifted[{name!r}]"
        if not isinstance(prediction, ClassificationPrediction):
            raise ArgumentTypeError(
                f"expected `{where}` to be a ClassificationPrediction, got "
                f"{type(prediction).__name__}"
            )
        if prediction.targets is None or prediction.n_classes != mc.n_classes:
            raise ArgumentValueError(
                f"expected `{where}` to carry targets and {mc.n_classes} classes "
                f"like `mc`, got targets={prediction.targets is not None}, "
                f"n_classes={prediction.n_classes}"
            )
        checked[str(name)] = prediction
    return checked


def _json_safe(value: object) -> object:
    """Floats NaN and infinity become None (JSON null); the rest as is."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class CalibrationReport:
    """Calibration and uncertainty report of Monte Carlo dropout predictions.

    Compares the MC dropout prediction with an optional deterministic
    (dropout off) baseline and an optional temperature-scaled MC prediction
    of the same inputs, and optionally measures out-of-distribution
    detection and the effect of dataset shift. Metrics and tables are
    computed when the report is built; figures when first asked for.
    :meth:`write` saves it all as a folder.

    Parameters
    ----------
    mc : ClassificationPrediction or RegressionPrediction
        The MC dropout prediction of the test inputs, with their targets.
        Its kind decides the kind of report.
    deterministic : prediction, optional
        The deterministic prediction of the same inputs
        (``mc.predict(inputs, deterministic=True)``).
    calibrated : prediction, optional
        The MC dropout prediction after post-hoc calibration on validation
        data, same inputs: temperature scaling for classification (named
        ``"mc_dropout_temperature_scaled"``), a variance scale or noise
        precision for regression (``"mc_dropout_variance_scaled"``).
    ood : ClassificationPrediction, optional
        The MC dropout prediction of out-of-distribution inputs (no targets
        needed). Classification only.
    shifted : Mapping[str, ClassificationPrediction], optional
        Shift name (e.g. ``"gaussian_noise=0.5"``) to the MC dropout
        prediction of shifted test inputs, with targets, in increasing
        severity. Classification only.
    class_names : sequence of str, optional
        One name per class, used in the per-class table and in
        ``predictions.csv``. Classification only.
    n_bins : int, default 15
        Number of confidence bins of every calibration error and diagram.
    metadata : Mapping[str, object], optional
        What was run, shown as given: e.g. ``model``, ``data``,
        ``n_passes``, ``seed``, ``time_taken``. The report adds the number
        of passes, inputs and classes when absent, and the library versions.
    dpi : int, default 100
        Resolution of the PNG figures.
    sections : sequence of str, optional
        The optional sections to write, of ``"uncertainty"``, ``"ood"``,
        ``"shift"``, ``"convergence"``, ``"classes"`` (classification) and
        ``"intervals"`` (regression); all that apply when None. The metrics
        and "what was run" are always written.

    Attributes
    ----------
    metrics : dict
        As written to ``metrics.json``: one dict of floats per compared
        prediction (``"deterministic"``, ``"mc_dropout"``, and the
        calibrated one); ``"ood"`` maps each
        uncertainty measure to its detection scores and ``"shift"`` each
        shift name (``"clean"`` first) to its metrics, when given.
        Classification keys: ``accuracy``, ``nll``, ``brier``, ``ece``,
        ``adaptive_ece`` (quantile bins), ``mce``, ``classwise_ece``,
        ``aurc`` (ranking by predictive entropy). Regression keys:
        ``rmse``, ``mae``, ``nll``, ``coverage_95``,
        ``interval_width_95``, ``sharpness``, ``miscalibration_area``,
        ``calibration_error``. Undefined values are NaN.
    tables : dict[str, pandas.DataFrame]
        ``"metrics"`` (one row per compared prediction), ``"ood"``,
        ``"shift"``, ``"classes"`` (per class, classification) when they
        apply, and ``"run"`` (what was run).
    compared : dict[str, prediction]
        The compared predictions by name, as in ``metrics``.
    mc, ood, shifted, class_names, n_bins, metadata, dpi
        The arguments, checked.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from mcdropout import MCDropout
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.Linear(16, 3))
    >>> inputs, targets = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> mc = MCDropout(model, n_passes=10, seed=0)
    >>> report = CalibrationReport(
    ...     mc.predict(inputs, targets=targets),
    ...     deterministic=mc.predict(inputs, targets=targets, deterministic=True),
    ...     metadata={"model": "toy MLP", "seed": 0},
    ... )
    >>> sorted(report.metrics)
    ['deterministic', 'mc_dropout']
    >>> report.tables["metrics"].shape
    (2, 8)
    """

    def __init__(
        self,
        mc: Prediction,
        *,
        deterministic: Prediction | None = None,
        calibrated: Prediction | None = None,
        ood: ClassificationPrediction | None = None,
        shifted: Mapping[str, ClassificationPrediction] | None = None,
        class_names: Sequence[str] | None = None,
        n_bins: int = 15,
        metadata: Mapping[str, object] | None = None,
        dpi: int = 100,
        sections: Sequence[str] | None = None,
    ) -> None:
        self.mc = _check_mc(mc)
        self.classification = isinstance(mc, ClassificationPrediction)
        self.compared = _compared(self.mc, deterministic, calibrated)
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.dpi = check_positive_int("dpi", dpi)
        self.sections = None if sections is None else _check_sections(sections)

        self._check_classification_only(
            ood=ood, shifted=shifted, class_names=class_names
        )
        self.ood = self._check_ood(ood)
        self.shifted = None if shifted is None else _check_shifted(shifted, mc)
        self.class_names = self._class_names(class_names)
        self._named = class_names is not None
        self.metadata = _check_metadata(metadata)

        scores = self._scores()
        self._warn_undefined(scores)
        self.tables = self._tables(scores)
        self.metrics = scores | {
            name: self.tables[name].to_dict(orient="index")
            for name in ("ood", "shift")
            if name in self.tables
        }
        self._figures: dict[str, Figure] | None = None

    # ------------------------------------------------------------ checks --

    def _check_classification_only(self, **options: object) -> None:
        if self.classification:
            return
        for name, value in options.items():
            if value is not None:
                raise ArgumentValueError(
                    f"expected no `{name}` for a regression report: it applies to "
                    f"classification only, got {type(value).__name__}"
                )

    def _check_ood(self, ood: object) -> ClassificationPrediction | None:
        if ood is None:
            return None
        if not isinstance(ood, ClassificationPrediction):
            raise ArgumentTypeError(
                "expected `ood` to be a ClassificationPrediction, got "
                f"{type(ood).__name__}"
            )
        if ood.n_classes != self.mc.n_classes:
            raise ArgumentValueError(
                f"expected `ood` to have the {self.mc.n_classes} classes of `mc`, "
                f"got {ood.n_classes}"
            )
        return ood

    def _class_names(self, class_names: object) -> list[str] | None:
        if not self.classification:
            return None
        if class_names is None:
            return [str(k) for k in range(self.mc.n_classes)]
        return _check_class_names(class_names, self.mc.n_classes)

    # ----------------------------------------------------------- content --

    def _scores(self) -> dict[str, dict[str, float]]:
        """The metrics of each compared prediction."""
        if self.classification:
            return {
                name: classification_metrics(p, self.n_bins)
                for name, p in self.compared.items()
            }
        return {name: regression_metrics(p, name) for name, p in self.compared.items()}

    def _warn_undefined(self, scores: dict[str, dict[str, float]]) -> None:
        if self.classification:
            return
        for name, values in scores.items():
            if math.isnan(values["nll"]):
                # stacklevel 3: past this method and __init__, to the caller.
                warnings.warn(
                    f"`{name}` predicts a standard deviation of 0 for some "
                    "inputs, so its nll, miscalibration_area and "
                    "calibration_error are undefined; reporting NaN",
                    UndefinedMetricWarning,
                    stacklevel=3,
                )

    def _shift_predictions(self) -> dict[str, ClassificationPrediction]:
        # The unshifted test set first: the point every shift departs from.
        return {"clean": self.mc} | self.shifted

    def _tables(self, scores: dict[str, dict[str, float]]) -> dict[str, pd.DataFrame]:
        metrics = pd.DataFrame.from_dict(scores, orient="index")
        metrics.index.name = "prediction"
        tables = {"metrics": metrics}
        if self.ood is not None:
            tables["ood"] = ood_table(self.mc, self.ood)
        if self.shifted is not None:
            tables["shift"] = shift_table(self._shift_predictions(), self.n_bins)
        if self.classification:
            tables["classes"] = class_table(self.mc, self.class_names)
        tables["run"] = run_table(self.metadata, self._facts())
        return tables

    def _facts(self) -> dict[str, object]:
        facts = {
            "task": "classification" if self.classification else "regression",
            "n_passes": self.mc.n_passes,
            "n_inputs": len(self.mc),
        }
        if self.classification:
            facts["n_classes"] = self.mc.n_classes
        facts["n_bins"] = self.n_bins
        facts["compared"] = list(self.compared)
        if self.ood is not None:
            facts["n_ood_inputs"] = len(self.ood)
        return facts

    # ----------------------------------------------------------- figures --

    @property
    def figures(self) -> dict[str, Figure]:
        """Name to :class:`~matplotlib.figure.Figure`, drawn on first use.

        :meth:`write` lets go of them once saved; asking again redraws.
        """
        if self._figures is None:
            self._figures = self._draw()
        return self._figures

    def _draw(self) -> dict[str, Figure]:
        if not self.classification:
            return regression_figures(self.compared, self.mc)
        return classification_figures(
            self.compared,
            self.mc,
            deterministic=self.compared.get(DETERMINISTIC),
            ood=self.ood,
            shifted=None if self.shifted is None else self._shift_predictions(),
            n_bins=self.n_bins,
        )

    def close(self) -> None:
        """Let go of the figures (they are redrawn if asked for again)."""
        self._figures = None

    # ------------------------------------------------------------ output --

    @property
    def predictions(self) -> pd.DataFrame:
        """One row per input of ``mc``, as written to ``predictions.csv``.

        :meth:`ClassificationPrediction.to_frame` (or the regression one),
        with ``target_name`` and ``predicted_name`` columns when
        ``class_names`` were given.
        """
        frame = self.mc.to_frame()
        if self._named:
            names = pd.Series(self.class_names)
            for column in ("target", "predicted"):
                position = frame.columns.get_loc(column) + 1
                labels = names.iloc[frame[column].to_numpy()].to_numpy()
                frame.insert(position, f"{column}_name", labels)
        return frame

    def _sections(self) -> list[Section]:
        if self.classification:
            sections = classification_sections(
                self._summary(),
                ood=self.ood is not None,
                shift=self.shifted is not None,
                convergence=self.mc.samples is not None,
                n_classes=self.mc.n_classes,
            )
        else:
            sections = regression_sections(self._summary())

        if self.sections is not None:
            kept = {"metrics", "run", *self.sections}
            sections = [s for s in sections if s.key in kept]
        # Leave out the figures this report did not draw.
        drawn = set(self.figures)
        return [
            dataclasses.replace(s, figures=tuple(f for f in s.figures if f in drawn))
            for s in sections
        ]

    def _summary(self) -> str:
        key = "ece" if self.classification else "miscalibration_area"
        parts = [
            f"{name}: {key} {format_number(self.metrics[name][key])}, "
            f"nll {format_number(self.metrics[name]['nll'])}"
            for name in self.compared
        ]
        return (
            f"{len(self.mc)} test inputs, {self.mc.n_passes} MC dropout passes. "
            + "; ".join(parts)
            + "."
        )

    def _titles(self) -> tuple[str, str, str]:
        model = self.metadata.get("model")
        title = "MC dropout report" + ("" if model is None else f": {model}")
        data = self.metadata.get("data")
        subtitle = (
            f"{'Classification' if self.classification else 'Regression'} of "
            f"{len(self.mc)} inputs"
            + ("" if data is None else f" from {data}")
            + f", {self.mc.n_passes} passes"
        )
        footer = f"Made with mcdropout {library_versions()['mcdropout']}."
        return title, subtitle, footer

    def _pngs(self) -> dict[str, bytes]:
        pngs = {}
        for name, figure in self.figures.items():
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=self.dpi)
            pngs[name] = buffer.getvalue()
        return pngs

    def _fill(self, folder: Path, formats: tuple[str, ...]) -> None:
        """Write every requested file into ``folder``."""
        if "html" in formats or "md" in formats:
            sections = self._sections()
            shown = {name for section in sections for name in section.figures}
            pngs = {k: v for k, v in self._pngs().items() if k in shown}
            (folder / "figures").mkdir()
            for name, png in pngs.items():
                (folder / "figures" / f"{name}.png").write_bytes(png)
            title, subtitle, footer = self._titles()
        if "html" in formats:
            page = render_html(
                title, subtitle, sections, self.tables, pngs, CAPTIONS, footer
            )
            (folder / "index.html").write_text(page, encoding="utf-8")
        if "md" in formats:
            text = render_markdown(
                title, subtitle, sections, self.tables, CAPTIONS, footer
            )
            (folder / "report.md").write_text(text, encoding="utf-8")
        if "json" in formats:
            text = json.dumps(_json_safe(self.metrics), indent=2, allow_nan=False)
            (folder / "metrics.json").write_text(text + "\n", encoding="utf-8")
        if "csv" in formats:
            self.predictions.to_csv(folder / "predictions.csv", index=False)

    def write(
        self,
        out_dir: str | Path,
        *,
        overwrite: bool = False,
        formats: Sequence[str] = FORMATS,
    ) -> Path:
        """Write the report into the folder ``out_dir``.

        Files: ``index.html`` (one self-contained page, figures embedded),
        ``report.md`` with ``figures/*.png``, ``metrics.json`` (NaN as
        ``null``) and ``predictions.csv``, as chosen by ``formats``. The
        PNG figures are written with ``"html"`` or ``"md"``.

        Everything is written into a hidden temporary folder beside
        ``out_dir`` and renamed into place at the end, so a failure leaves
        no half-written report: the temporary folder is removed and any
        earlier report at ``out_dir`` is untouched.

        Parameters
        ----------
        out_dir : str or Path
            The report's folder; created with its parents if missing.
        overwrite : bool, default False
            Replace an existing non-empty ``out_dir``. The old folder is
            moved aside, the new one renamed in, and only then the old one
            deleted.
        formats : sequence of {"html", "md", "json", "csv"}, default all

        Returns
        -------
        Path
            The absolute path of the written folder.

        Raises
        ------
        ArgumentValueError
            If ``out_dir`` is a file, or a non-empty folder and
            ``overwrite`` is False.
        """
        if not isinstance(overwrite, bool):
            raise ArgumentTypeError(
                f"expected `overwrite` to be True or False, got {overwrite!r}"
            )
        formats = _check_formats(formats)
        path = check_out_dir(out_dir, overwrite=overwrite)
        try:
            return write_folder(
                path, lambda folder: self._fill(folder, formats), overwrite=overwrite
            )
        finally:
            # Figures hold most of a report's memory; redrawn if needed.
            self.close()


def _check_formats(formats: object) -> tuple[str, ...]:
    if isinstance(formats, str) or not isinstance(formats, Sequence | set | frozenset):
        raise ArgumentTypeError(
            f"expected `formats` to be a sequence of names from {FORMATS}, got "
            f"{formats!r}"
        )
    if not formats:
        raise ArgumentValueError(
            f"expected `formats` to name at least one of {FORMATS}, got none"
        )
    return tuple(check_choice("formats", name, FORMATS) for name in formats)
