"""Dataset shift: the test inputs corrupted with noise or rotated.

Used to show how confidence and calibration degrade as inputs move away from
the training distribution (Ovadia et al., 2019, "Can you trust your model's
uncertainty?").
"""

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from mcdropout._exceptions import ArgumentValueError
from mcdropout._validation import check_choice, check_positive_float

__all__ = ["SHIFTS", "ShiftedDataset", "gaussian_noise", "rotate"]

SHIFTS = ("gaussian_noise", "rotation")


def gaussian_noise(
    inputs: Tensor,
    severity: float,
    *,
    scale: float,
    value_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add Gaussian noise of standard deviation ``severity * scale``.

    Parameters
    ----------
    inputs : Tensor
        Any shape.
    severity : float
        Noise standard deviation in units of ``scale``.
    scale : float
        Typically the standard deviation of the training inputs.
    value_range : (float, float) or None
        Clip the result to the range the data can take (pixels stay pixels).
    generator : torch.Generator or None
        Source of the noise, for repeatable shifts.

    Examples
    --------
    >>> x = torch.zeros(3)
    >>> noisy = gaussian_noise(x, 1.0, scale=2.0, generator=torch.Generator())
    >>> noisy.shape
    torch.Size([3])
    """
    noise = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype)
    shifted = inputs + severity * scale * noise
    if value_range is not None:
        shifted = shifted.clamp(*value_range)
    return shifted


def rotate(
    inputs: Tensor, degrees: float, *, image_shape: tuple[int, ...], fill: float = 0.0
) -> Tensor:
    """Rotate an input, read as an image, counter-clockwise by ``degrees``.

    Parameters
    ----------
    inputs : Tensor
        One input with ``prod(image_shape)`` values, e.g. 64 digits features.
    degrees : float
        Angle; the image keeps its size and corners are filled with ``fill``.
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)``.
    fill : float
        Value of the pixels rotated in from outside the image.

    Examples
    --------
    >>> image = torch.zeros(4, 4)
    >>> image[0, :] = 1.0
    >>> turned = rotate(image.flatten(), 90.0, image_shape=(4, 4)).reshape(4, 4)
    >>> turned[:, 0].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    image = inputs.reshape((1, *image_shape) if len(image_shape) == 2 else image_shape)
    turned = TF.rotate(
        image, degrees, interpolation=InterpolationMode.BILINEAR, fill=[fill]
    )
    return turned.reshape(inputs.shape)


class ShiftedDataset(Dataset):
    """A dataset whose inputs are shifted on the fly; targets are unchanged.

    Parameters
    ----------
    dataset : Dataset
        Yields ``(input, target)`` pairs.
    kind : {"gaussian_noise", "rotation"}
    severity : float
        Noise standard deviation (in units of ``scale``) or angle in degrees.
    scale : float
        Standard deviation of the training inputs (noise only).
    value_range : (float, float)
        Range of the training inputs: noise is clipped to it, rotation fills
        with its minimum.
    image_shape : tuple of int or None
        How an input reads as an image; rotation needs it.
    seed : int
        Noise for input ``i`` is drawn from a generator seeded with
        ``(seed, i)``, so the shift repeats exactly, with any number of
        DataLoader workers.
    """

    def __init__(
        self,
        dataset: Dataset,
        kind: str,
        severity: float,
        *,
        scale: float = 1.0,
        value_range: tuple[float, float] | None = None,
        image_shape: tuple[int, ...] | None = None,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.kind = check_choice("kind", kind, SHIFTS)
        self.severity = check_positive_float("severity", severity)
        if kind == "rotation" and image_shape is None:
            raise ArgumentValueError(
                "expected `image_shape` for a rotation shift, got None: the "
                "inputs are plain features, not images"
            )
        self.scale = scale
        self.value_range = value_range
        self.image_shape = image_shape
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, object]:
        inputs, target = self.dataset[index]
        if self.kind == "rotation":
            fill = 0.0 if self.value_range is None else self.value_range[0]
            shifted = rotate(
                inputs, self.severity, image_shape=self.image_shape, fill=fill
            )
            return shifted, target

        # Seeding per input keeps the noise independent of batching order.
        sequence = np.random.SeedSequence([self.seed, index])
        generator = torch.Generator().manual_seed(int(sequence.generate_state(1)[0]))
        noisy = gaussian_noise(
            inputs,
            self.severity,
            scale=self.scale,
            value_range=self.value_range,
            generator=generator,
        )
        return noisy, target
