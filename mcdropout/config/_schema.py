"""The typed schema of a run's config: one class per YAML section.

Every section refuses unknown keys, so a misspelt key is an error rather
than a silently ignored setting. The loader (:mod:`mcdropout.config._load`)
turns validation errors into one line per problem with the key path.
"""

import difflib
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mcdropout.config._types import (
    Bool,
    ExistingDir,
    ExistingFile,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PathValue,
    PositiveFloat,
    PositiveInt,
    Probability,
)
from mcdropout.dropout import MODES
from mcdropout.sampling import DEFAULT_MEMORY_BUDGET, PRECISIONS, STRATEGIES

__all__ = [
    "ARCHITECTURES",
    "SKLEARN_DATASETS",
    "TORCHVISION_DATASETS",
    "CalibrationConfig",
    "Config",
    "DataConfig",
    "ImageFolderData",
    "MCConfig",
    "ModelConfig",
    "NestedConfigError",
    "NpzData",
    "OODConfig",
    "ReportConfig",
    "ShiftConfig",
    "SklearnData",
    "SplitConfig",
    "TableData",
    "TorchvisionData",
    "TrainConfig",
    "import_factory",
]

Task = Literal["classification", "regression"]

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
TORCHVISION_DATASETS = (
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CIFAR100",
    "SVHN",
    "FakeData",
)
ARCHITECTURES = ("mlp", "small_cnn", "resnet18")

# ``package.module:factory``, each part a Python identifier.
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class NestedConfigError(ValueError):
    """Carries a nested section's validation errors up to the loader.

    Pydantic reports a validator's ``ValueError`` at the validated field; the
    loader expands this one into the nested errors with their full key paths.
    """

    def __init__(self, error: ValidationError, schema: type[BaseModel]) -> None:
        self.error = error
        self.schema = schema
        super().__init__(str(error))


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, validate_default=True
    )


# --- model ----------------------------------------------------------------


class MLPArgs(_Section):
    """Arguments of the built-in ``mlp``."""

    hidden_sizes: list[PositiveInt] = Field(default=[128, 128], min_length=1)
    dropout: Probability = 0.3


class SmallCNNArgs(_Section):
    """Arguments of the built-in ``small_cnn``."""

    channels: list[PositiveInt] = Field(default=[32, 64], min_length=1)
    hidden: PositiveInt = 128
    dropout2d: Probability = 0.1
    dropout: Probability = 0.5


class ResNet18Args(_Section):
    """Arguments of the built-in ``resnet18``."""

    dropout: Probability = 0.5
    small_input: Bool = True


_ARGS: dict[str, type[_Section]] = {
    "mlp": MLPArgs,
    "small_cnn": SmallCNNArgs,
    "resnet18": ResNet18Args,
}


class TrainConfig(_Section):
    """How a built-in (or factory) model is trained when no checkpoint is given."""

    epochs: PositiveInt = 30
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-4
    patience: PositiveInt | None = None
    seed: NonNegativeInt = 0


class ModelConfig(_Section):
    """The ``model`` section: what network is run and where it comes from."""

    architecture: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    checkpoint: ExistingFile | None = None
    torchscript: ExistingFile | None = None
    allow_pickle: Bool = False
    heteroscedastic: Bool = False
    train: TrainConfig = Field(default_factory=TrainConfig)
    cache: Bool = True

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: str | None) -> str | None:
        if value is None or value in ARCHITECTURES:
            return value
        if not _FACTORY.match(value):
            names = ", ".join(repr(name) for name in ARCHITECTURES)
            raise ValueError(
                f"expected one of {names} or 'package.module:factory', got {value!r}"
            )
        _import_factory(value)
        return value

    @field_validator("args")
    @classmethod
    def _typed_args(cls, value: dict[str, Any], info: ValidationInfo) -> dict:
        schema = _ARGS.get(info.data.get("architecture") or "")
        if schema is None:
            return value
        try:
            return schema.model_validate(value).model_dump()
        except ValidationError as error:
            raise NestedConfigError(error, schema) from None

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.architecture is None) == (self.torchscript is None):
            raise ValueError(
                "expected exactly one of `architecture` (a built-in name or "
                "'package.module:factory') and `torchscript`, got "
                f"architecture={self.architecture!r}, torchscript="
                f"{None if self.torchscript is None else str(self.torchscript)!r}"
            )
        if self.torchscript is not None and self.checkpoint is not None:
            raise ValueError(
                "expected `checkpoint` (a state dict) or `torchscript`, not both"
            )
        return self


def _import_factory(spec: str) -> Any:
    module_name, name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r}: {error}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"module {module_name!r} has no callable {name!r}")
    return factory


def import_factory(spec: str) -> Any:
    """The callable named by ``'package.module:factory'``, imported (no eval)."""
    return _import_factory(spec)


# --- data -----------------------------------------------------------------


class SplitConfig(_Section):
    """How the inputs are split into train, validation and test parts.

    ``val`` and ``test`` are shares of all inputs; sources with an official
    test set (torchvision) keep it, and ``test`` is then unused.
    """

    val: Fraction = 0.15
    test: Fraction = 0.25
    seed: NonNegativeInt = 0
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None

    @model_validator(mode="after")
    def _room_for_training(self) -> "SplitConfig":
        if self.val + self.test >= 1:
            raise ValueError(
                "expected `val` + `test` < 1 to leave inputs for training, got "
                f"{self.val} + {self.test}"
            )
        return self


class _DataBase(_Section):
    split: SplitConfig = Field(default_factory=SplitConfig)
    batch_size: PositiveInt = 256
    num_workers: NonNegativeInt = 0


class SklearnData(_DataBase):
    """A dataset bundled with scikit-learn (no download)."""

    source: Literal["sklearn"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]


class TableData(_DataBase):
    """A CSV or Parquet table: feature columns and a target column."""

    source: Literal["csv", "parquet"]
    path: ExistingFile
    target: str
    features: list[str] | None = None
    task: Task = "classification"
    image_shape: list[PositiveInt] | None = None

    @field_validator("source")
    @classmethod
    def _reader_installed(cls, value: str) -> str:
        if value == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ValueError(
                "reading Parquet needs pyarrow, an optional dependency; install "
                "it with pip install 'mcdropout[parquet]'"
            )
        return value


class NpzData(_DataBase):
    """NumPy ``.npz`` arrays: inputs and targets under two keys."""

    source: Literal["npz"]
    path: ExistingFile
    inputs_key: str = "inputs"
    targets_key: str = "targets"
    task: Task = "classification"
    image_shape: list[PositiveInt] | None = None


class TorchvisionData(_DataBase):
    """A torchvision dataset by name; ``FakeData`` makes random images."""

    source: Literal["torchvision"]
    name: Literal["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN", "FakeData"]
    root: PathValue = Path("data")
    download: Bool = False
    args: dict[str, Any] = Field(default_factory=dict)


class ImageFolderData(_DataBase):
    """A torchvision ``ImageFolder``: one sub-folder of images per class."""

    source: Literal["image_folder"]
    root: ExistingDir
    image_size: list[PositiveInt] = Field(default=[32, 32], min_length=2, max_length=2)
    grayscale: Bool = False


DataConfig = Annotated[
    SklearnData | TableData | NpzData | TorchvisionData | ImageFolderData,
    Field(discriminator="source"),
]


# --- what is run on the model ---------------------------------------------


def _one_of(value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a message with a hint."""
    if value in choices:
        return value  # type: ignore[return-value]
    names = ", ".join(repr(choice) for choice in choices)
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"expected one of {names}, got {value!r}{hint}")


class MCConfig(_Section):
    """The ``mc`` section: how the stochastic passes are run.

    The choices of ``mode``, ``strategy`` and ``precision`` are those of
    :class:`mcdropout.MCDropout`.
    """

    n_passes: PositiveInt = 50
    mode: str = "modules"
    seed: NonNegativeInt | None = 0
    max_batch_size: PositiveInt | None = None
    memory_budget_mb: PositiveInt = DEFAULT_MEMORY_BUDGET // 2**20
    strategy: str = "auto"
    precision: str = "float32"
    noise_precision: PositiveFloat | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: object) -> str:
        return _one_of(value, MODES)

    @field_validator("strategy", mode="before")
    @classmethod
    def _known_strategy(cls, value: object) -> str:
        return _one_of(value, STRATEGIES)

    @field_validator("precision", mode="before")
    @classmethod
    def _known_precision(cls, value: object) -> str:
        return _one_of(value, PRECISIONS)


class CalibrationConfig(_Section):
    """The ``calibration`` section: recalibration fitted on the validation split.

    Classification: temperature scaling of every pass's logits. Regression:
    a factor on the predictive variance when the model predicts a spread of
    its own (``model.heteroscedastic`` or ``mc.noise_precision``), else the
    noise precision itself.
    """

    enabled: Bool = True


class ShiftConfig(_Section):
    """One kind of dataset shift applied to the test inputs.

    ``gaussian_noise`` severities are noise standard deviations in units of
    the training inputs' standard deviation; ``rotation`` severities are
    angles in degrees.
    """

    kind: Literal["gaussian_noise", "rotation"]
    severities: list[PositiveFloat] = Field(min_length=1)


class OODConfig(_Section):
    """The ``ood`` section: inputs unlike the training data."""

    dataset: DataConfig | None = None
    shifts: list[ShiftConfig] = Field(default_factory=list)
    seed: NonNegativeInt = 0


class ReportConfig(_Section):
    """The ``report`` section: how the calibration report is written."""

    n_bins: PositiveInt = 15
    formats: list[Literal["html", "md", "json", "csv"]] = Field(
        default=["html", "md", "json", "csv"], min_length=1
    )
    dpi: PositiveInt = 100
    convergence: Bool = True
    sections: (
        list[
            Literal[
                "uncertainty", "ood", "shift", "convergence", "classes", "intervals"
            ]
        ]
        | None
    ) = None


class Config(_Section):
    """A whole run: model, data, Monte Carlo passes, calibration, OOD, report.

    Examples
    --------
    >>> config = Config.model_validate(
    ...     {
    ...         "model": {"architecture": "mlp"},
    ...         "data": {"source": "sklearn", "name": "iris"},
    ...     }
    ... )
    >>> config.mc.n_passes
    50
    """

    name: str | None = None
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    model: ModelConfig
    data: DataConfig
    mc: MCConfig = Field(default_factory=MCConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    ood: OODConfig = Field(default_factory=OODConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        # The name becomes a folder under reports/, so no separators.
        safe = value is None or re.fullmatch(r"[\w.-]+", value)
        if not safe or (value is not None and set(value) == {"."}):
            raise ValueError(
                f"expected letters, digits, '_', '-' or '.' (not dots alone), "
                f"got {value!r}"
            )
        return value
