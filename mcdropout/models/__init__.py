"""Models: built-in dropout networks and loading trained ones safely."""

from mcdropout.models._architectures import (
    ARCHITECTURES,
    Standardize,
    TargetScale,
    build_model,
    mlp,
    resnet18,
    small_cnn,
)
from mcdropout.models._loading import (
    PickleRefusedError,
    load_pickled_model,
    load_state_dict,
    load_torchscript,
)

__all__ = [
    "ARCHITECTURES",
    "PickleRefusedError",
    "Standardize",
    "TargetScale",
    "build_model",
    "load_pickled_model",
    "load_state_dict",
    "load_torchscript",
    "mlp",
    "resnet18",
    "small_cnn",
]
