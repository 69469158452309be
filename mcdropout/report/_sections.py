"""The sections of a report, in reading order, with the text that opens each."""

import dataclasses

from mcdropout.report._content import (
    CLASSIFICATION_METRICS,
    OOD_COLUMNS,
    REGRESSION_METRICS,
)
from mcdropout.report._render import Section

__all__ = ["OPTIONAL_SECTIONS", "classification_sections", "regression_sections"]

# Sections a report may leave out; "metrics" and "run" are always written.
OPTIONAL_SECTIONS = (
    "uncertainty",
    "ood",
    "shift",
    "convergence",
    "classes",
    "intervals",
)

# Above this many classes the per-class table starts folded away.
FOLD_CLASSES_ABOVE = 20

UNCERTAINTY = Section(
    "uncertainty",
    "Uncertainty and errors",
    "How well each uncertainty measure of the MC dropout prediction separates "
    "its correct from its wrong predictions, and what error rate remains when "
    "only the least uncertain inputs are kept.",
    figures=("uncertainty_distributions", "risk_coverage"),
)
OOD = Section(
    "ood",
    "Out-of-distribution detection",
    "How well each uncertainty measure flags out-of-distribution inputs, "
    "treating them as positives and the test inputs as negatives.",
    tables=("ood",),
    figures=("ood",),
    glossary=OOD_COLUMNS,
)
SHIFT = Section(
    "shift",
    "Dataset shift",
    "The MC dropout prediction on the clean test inputs and on shifted copies "
    "of them. A well-calibrated model loses confidence as fast as accuracy.",
    tables=("shift",),
    figures=("shift",),
)
CONVERGENCE = Section(
    "convergence",
    "Number of passes",
    "The metrics of the mean of the first t passes, for every t up to the "
    "number run: choose the number of passes where the curves have settled.",
    figures=("convergence",),
)
CLASSES = Section(
    "classes",
    "Per class",
    "For the test inputs of each class: how many there are, the share "
    "predicted right, and the mean confidence and mutual information of their "
    "MC dropout predictions.",
    tables=("classes",),
)
INTERVALS = Section(
    "intervals",
    "Prediction intervals",
    "Each test input's 95% prediction interval against its target.",
    figures=("intervals",),
)
RUN = Section(
    "run",
    "What was run",
    "The model, data and settings of this report, and the library versions.",
    tables=("run",),
)


def _metrics(summary: str, figures: tuple[str, ...], glossary: dict) -> Section:
    return Section(
        "metrics",
        "Metrics",
        summary,
        tables=("metrics",),
        figures=figures,
        glossary=glossary,
    )


def classification_sections(
    summary: str, *, ood: bool, shift: bool, convergence: bool, n_classes: int
) -> list[Section]:
    """The sections of a classification report; optional ones when given."""
    figures = ("reliability", "reliability_overlay")
    sections = [_metrics(summary, figures, CLASSIFICATION_METRICS), UNCERTAINTY]
    optional = ((ood, OOD), (shift, SHIFT), (convergence, CONVERGENCE))
    sections += [section for wanted, section in optional if wanted]

    classes = dataclasses.replace(CLASSES, collapsed=n_classes > FOLD_CLASSES_ABOVE)
    return [*sections, classes, RUN]


def regression_sections(summary: str) -> list[Section]:
    """The sections of a regression report."""
    return [_metrics(summary, ("calibration",), REGRESSION_METRICS), INTERVALS, RUN]
