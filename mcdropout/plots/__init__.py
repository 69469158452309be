"""Where predictions are drawn: reliability, uncertainty, detection, convergence.

Every function draws with matplotlib into the ``ax`` (or empty ``fig``) it is
given, or into a new pyplot figure; none calls ``show()``, and all work
under the Agg backend. Each returns what it drew, so its artists can be
inspected or restyled.
"""

from mcdropout.plots._common import MEASURES
from mcdropout.plots._convergence import convergence, running_metrics
from mcdropout.plots._ood import ood_histograms
from mcdropout.plots._regression import regression_calibration, regression_intervals
from mcdropout.plots._reliability import (
    ReliabilityAxes,
    reliability_diagram,
    reliability_diagrams,
)
from mcdropout.plots._shift import dataset_shift, shift_table
from mcdropout.plots._uncertainty import risk_coverage, uncertainty_distributions

__all__ = [
    "MEASURES",
    "ReliabilityAxes",
    "convergence",
    "dataset_shift",
    "ood_histograms",
    "regression_calibration",
    "regression_intervals",
    "reliability_diagram",
    "reliability_diagrams",
    "risk_coverage",
    "running_metrics",
    "shift_table",
    "uncertainty_distributions",
]
