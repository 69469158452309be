"""Data: sources split into train/validation/test, loaders, and dataset shift."""

from mcdropout.data._loaders import InputStatistics, input_statistics, make_loader
from mcdropout.data._shift import SHIFTS, ShiftedDataset, gaussian_noise, rotate
from mcdropout.data._sources import load_splits, parquet_available
from mcdropout.data._splits import DataInfo, Splits, split_indices, subsample

__all__ = [
    "SHIFTS",
    "DataInfo",
    "InputStatistics",
    "ShiftedDataset",
    "Splits",
    "gaussian_noise",
    "input_statistics",
    "load_splits",
    "make_loader",
    "parquet_available",
    "rotate",
    "split_indices",
    "subsample",
]
