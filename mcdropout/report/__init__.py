"""Where predictions become a report: tables, figures, HTML, Markdown, JSON, CSV."""

from mcdropout.report._report import FORMATS, CalibrationReport

__all__ = ["FORMATS", "CalibrationReport"]
