"""Running Monte Carlo dropout on a config's splits: plain, calibrated, shifted."""

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import DataLoader, Dataset

from mcdropout._exceptions import NoDropoutError
from mcdropout.calibration import (
    VarianceScaleFit,
    fit_noise_precision,
    fit_temperature,
    fit_variance_scale,
)
from mcdropout.config import Config, ConfigError
from mcdropout.data import (
    ShiftedDataset,
    Splits,
    input_statistics,
    load_splits,
    make_loader,
)
from mcdropout.predictions import ClassificationPrediction, RegressionPrediction
from mcdropout.sampling import MCDropout

__all__ = ["Evaluation", "evaluate", "make_mc", "predict_inputs", "shift_name"]

logger = logging.getLogger(__name__)

Prediction = ClassificationPrediction | RegressionPrediction


@dataclass
class Evaluation:
    """Every prediction a report compares, on the test split unless named.

    Attributes
    ----------
    mc : Prediction
        Monte Carlo dropout, ``mc.n_passes`` passes.
    deterministic : Prediction
        The same model with dropout off (one pass).
    calibrated : Prediction or None
        Monte Carlo dropout recalibrated on the validation split
        (temperature or variance scaling); None when calibration is off.
    shifted : dict of str to Prediction
        The final model (calibrated when calibration is on) on shifted test
        inputs, keyed like ``"gaussian_noise 0.5"``.
    ood : Prediction or None
        The final model on the test split of ``ood.dataset``.
    calibration : dict
        What the recalibration fitted (``temperature``, ``variance_scale`` or
        ``noise_precision``, and the validation NLL before and after).
    """

    mc: Prediction
    deterministic: Prediction
    calibrated: Prediction | None = None
    shifted: dict[str, Prediction] = field(default_factory=dict)
    ood: Prediction | None = None
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> Prediction:
        """The prediction a user should act on: calibrated if available."""
        return self.mc if self.calibrated is None else self.calibrated


def make_mc(
    config: Config,
    model: nn.Module,
    task: str,
    *,
    progress: bool,
    keep_samples: bool = False,
) -> MCDropout:
    """The MCDropout wrapper the ``mc`` section describes."""
    try:
        return _wrapper(config, model, task, progress, keep_samples)
    except NoDropoutError as error:
        raise ConfigError([f"mc.mode: {error}"]) from None


def _wrapper(
    config: Config, model: nn.Module, task: str, progress: bool, keep_samples: bool
) -> MCDropout:
    mc = config.mc
    return MCDropout(
        model,
        mc.n_passes,
        task=task,
        mode=mc.mode,
        seed=mc.seed,
        max_batch_size=mc.max_batch_size,
        heteroscedastic=config.model.heteroscedastic and task == "regression",
        noise_precision=mc.noise_precision if task == "regression" else None,
        progress=progress,
        keep_samples=keep_samples,
        strategy=mc.strategy,
        memory_budget=mc.memory_budget_mb * 2**20,
        precision=mc.precision,
    )


def shift_name(kind: str, severity: float) -> str:
    """Key of a shifted prediction, e.g. ``"rotation 30"``."""
    return f"{kind} {severity:g}"


def _loader(config: Config, dataset: Dataset) -> DataLoader:
    return make_loader(
        dataset, config.data.batch_size, num_workers=config.data.num_workers
    )


@dataclass
class _FinalModel:
    """The wrapper that makes the final predictions, and a variance factor
    applied to each of them (regression variance scaling)."""

    mc: MCDropout
    variance_fit: VarianceScaleFit | None = None

    def predict(self, loader: DataLoader) -> Prediction:
        prediction = self.mc.predict(loader)
        if self.variance_fit is not None:
            prediction = self.variance_fit.apply(prediction)
        return _one_column_as_vector(prediction)


def _one_column_as_vector(prediction: Prediction) -> Prediction:
    """A single-output regression prediction with ``(n_inputs,)`` tensors.

    Regression targets and outputs are ``(n_inputs, 1)`` columns; tables and
    reports read better with plain ``target`` and ``mean`` columns.
    """
    if not isinstance(prediction, RegressionPrediction):
        return prediction
    if prediction.mean.ndim != 2 or prediction.mean.shape[1] != 1:
        return prediction
    targets = prediction.targets
    return dataclasses.replace(
        prediction,
        mean=prediction.mean[:, 0],
        epistemic_variance=prediction.epistemic_variance[:, 0],
        aleatoric_variance=prediction.aleatoric_variance[:, 0],
        targets=None if targets is None else targets.reshape(-1),
        samples=None if prediction.samples is None else prediction.samples[..., 0],
    )


def _calibrate(
    config: Config, mc: MCDropout, splits: Splits
) -> tuple[_FinalModel, dict[str, Any]]:
    """Fit the recalibration on the validation split; say what was fitted."""
    val = _loader(config, splits.val)
    if mc.task == "classification":
        fit = fit_temperature(mc, val)
        final, summary = _FinalModel(fit.apply(mc)), {"temperature": fit.temperature}
    elif mc.heteroscedastic or mc.noise_precision is not None:
        # The model has its own spread: rescale it rather than replace it.
        fit = fit_variance_scale(mc.predict(val))
        final, summary = _FinalModel(mc, fit), {"variance_scale": fit.scale}
    else:
        fit = fit_noise_precision(mc, val)
        final = _FinalModel(fit.apply(mc))
        summary = {"noise_precision": fit.noise_precision}
    summary.update(nll_before=fit.nll_before, nll_after=fit.nll_after)
    return final, summary


def _shifted(
    config: Config, splits: Splits, predict: Callable[[Dataset], Prediction]
) -> dict[str, Prediction]:
    shifts = config.ood.shifts
    if not shifts:
        return {}
    check_shifts(config, splits)
    per_channel = len(splits.info.input_shape) == 3
    stats = input_statistics(splits.train, per_channel=per_channel)
    predictions = {}
    for shift in shifts:
        for severity in shift.severities:
            dataset = ShiftedDataset(
                splits.test,
                shift.kind,
                severity,
                scale=stats.scale,
                value_range=stats.value_range,
                image_shape=splits.info.image_shape,
                seed=config.ood.seed,
            )
            logger.info("predicting under %s", shift_name(shift.kind, severity))
            predictions[shift_name(shift.kind, severity)] = predict(dataset)
    return predictions


def check_shifts(config: Config, splits: Splits) -> None:
    """Refuse a rotation of data that are not images."""
    shifts = config.ood.shifts
    if any(s.kind == "rotation" for s in shifts) and splits.info.image_shape is None:
        index = next(i for i, s in enumerate(shifts) if s.kind == "rotation")
        raise ConfigError(
            [
                f"ood.shifts[{index}].kind: rotation needs image inputs; the data "
                "has plain features (set data.image_shape for a table of pixels)"
            ]
        )


def ood_dataset(config: Config, splits: Splits) -> Dataset | None:
    """The test split of ``ood.dataset``, checked against the data's shape."""
    if config.ood.dataset is None:
        return None
    ood = load_splits(config.ood.dataset, key="ood.dataset")
    if ood.info.input_shape != splits.info.input_shape:
        raise ConfigError(
            [
                f"ood.dataset: expected inputs of shape {splits.info.input_shape} "
                f"like data, got {ood.info.input_shape}"
            ]
        )
    return ood.test


def evaluate(
    config: Config, splits: Splits, model: nn.Module, *, progress: bool = False
) -> Evaluation:
    """Run every prediction of a report on a prepared model.

    Parameters
    ----------
    config : Config
    splits : Splits
        The data; the validation split fits the calibration.
    model : torch.nn.Module
        Trained, in eval mode.
    progress : bool
        Show progress bars over the batches of Monte Carlo passes.

    Returns
    -------
    Evaluation
    """
    # Kept samples let the report show how the metrics settle with T.
    keep = config.report.convergence and splits.info.task == "classification"
    mc = make_mc(config, model, splits.info.task, progress=progress, keep_samples=keep)
    test = _loader(config, splits.test)
    logger.info("%d passes over %d test inputs", mc.n_passes, len(splits.test))
    result = Evaluation(
        mc=_one_column_as_vector(mc.predict(test)),
        deterministic=_one_column_as_vector(mc.predict(test, deterministic=True)),
    )

    final = _FinalModel(mc)
    if config.calibration.enabled:
        final, result.calibration = _calibrate(config, mc, splits)
        result.calibrated = final.predict(test)
        logger.debug("calibration: %s", result.calibration)

    def predict(dataset: Dataset) -> Prediction:
        return final.predict(_loader(config, dataset))

    result.shifted = _shifted(config, splits, predict)
    ood = ood_dataset(config, splits)
    if ood is not None:
        result.ood = predict(ood)
    return result


def predict_inputs(
    config: Config, splits: Splits, model: nn.Module, *, progress: bool = False
) -> Prediction:
    """The final (calibrated when enabled) prediction on the test split."""
    mc = make_mc(config, model, splits.info.task, progress=progress)
    final = _FinalModel(mc)
    if config.calibration.enabled:
        final = _calibrate(config, mc, splits)[0]
    return final.predict(_loader(config, splits.test))
