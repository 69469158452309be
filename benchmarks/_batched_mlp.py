"""A grid of one-hidden-layer dropout networks trained as one batched model.

The grid search of the UCI protocol trains one network per (dropout rate,
tau) pair on the same data. Here the ``n_configs`` networks share nothing but
their tensors: their weights are stacked, ``(n_configs, n_features,
n_hidden)`` and so on, and every step runs all of them with a few batched
matrix products. Networks this small spend most of a step in Python and
dispatch overhead: on one CPU thread a step of twelve networks (batch 128,
8 inputs, 50 hidden units) takes about twice the time of one network's step,
and the grid's whole training, random draws included, about five times the
time of one network rather than twelve.

Each network is the same function as the Keras model of Gal & Ghahramani's
experiments::

    Dropout(p) -> Dense(n_hidden, ReLU) -> Dropout(p) -> Dense(1)

trained on the loss of a mini-batch of ``B`` rows

    L = 1/B sum_i (f(x_i) - y_i)^2 + lambda (||W_1||^2 + ||W_2||^2)

(Keras' ``l2(lambda)`` regulariser on both kernels, not on the biases, so the
gradient gains ``2 lambda W``), with Adam in Keras' form:
``W <- W - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``. The
gradients are written out by hand (two layers make that short): a step is
five to seven times faster than autograd with ``torch.optim.Adam``, and the
tests check the result against autograd.

Randomness is per network, from its own NumPy generator
(``numpy.random.Generator(numpy.random.SFC64(seed))``, about twice as fast as
torch's Mersenne Twister, and the masks are most of the random numbers), so a
network trains the same alone or beside others. Its initial weights come
first: Glorot-uniform ``W_1`` then ``W_2``, each ``2 a (u - 1/2)`` with ``u``
from ``random(shape)`` and ``a = sqrt(6 / (fan_in + fan_out))``; biases start
at zero. Then in each epoch it draws, in this order: ``permutation(n_rows)``
(the mini-batch order), ``random((n_rows, n_features))`` and
``random((n_rows, n_hidden))`` (the input and hidden dropout masks of the
rows in permuted order: a unit is kept where the draw is at least ``p``, and
scaled by ``1 / (1 - p)``). Draws are float32 or float64 as the weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mcdropout import ArgumentValueError

__all__ = ["AdamSettings", "BatchedMLP", "weight_decay"]

# Epochs whose shuffles and masks are drawn at once: few enough to bound
# memory (n_configs * EPOCH_CHUNK * n_rows * (n_features + n_hidden) values).
EPOCH_CHUNK = 8

# Values per configuration in one chunk of Monte Carlo passes.
PASS_CHUNK_VALUES = 1 << 20


def weight_decay(
    dropout_rate: float, tau: float, n_rows: int, length_scale: float = 1e-2
) -> float:
    """Weight decay of the protocol, ``lambda = l^2 (1 - p) / (2 N tau)``.

    It is the coefficient of ``||W||^2`` in the loss, as Keras' ``l2``.

    Examples
    --------
    >>> weight_decay(0.5, tau=0.1, n_rows=100)
    2.5e-06
    """
    return length_scale**2 * (1.0 - dropout_rate) / (2.0 * n_rows * tau)


@dataclass(frozen=True)
class AdamSettings:
    """Adam's step size, moment decays and epsilon (Keras 1 defaults)."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


def _glorot_uniform(
    shape: tuple[int, int], generator: np.random.Generator, dtype: np.dtype
) -> Tensor:
    limit = math.sqrt(6.0 / sum(shape))
    draws = generator.random(shape, dtype=dtype)
    return torch.from_numpy(2.0 * limit * (draws - 0.5))


class BatchedMLP:
    """``n_configs`` dropout networks with stacked weights, trained together.

    Parameters
    ----------
    n_features, n_hidden : int
        Input width and number of hidden ReLU units.
    dropout_rates : sequence of float
        Dropout rate ``p`` of each network, on its input and hidden layer.
    weight_decays : sequence of float
        Coefficient ``lambda`` of ``||W||^2`` in each network's loss.
    seeds : sequence of int
        Seed of each network's generator (initial weights, mini-batch order
        and dropout masks).
    dtype : torch.dtype, default torch.float32
        ``torch.float32`` or ``torch.float64``.
    adam : AdamSettings or None, default None
        None means ``AdamSettings()``.

    Attributes
    ----------
    w1 : Tensor
        ``(n_configs, n_features, n_hidden)`` hidden-layer kernels.
    b1 : Tensor
        ``(n_configs, 1, n_hidden)`` hidden-layer biases.
    w2 : Tensor
        ``(n_configs, 1, n_hidden)`` output kernels, stored as rows.
    b2 : Tensor
        ``(n_configs, 1, 1)`` output biases.

    Examples
    --------
    >>> x, y = torch.randn(64, 3), torch.randn(64)
    >>> grid = BatchedMLP(3, 8, [0.05, 0.1], [1e-4, 1e-5], seeds=[0, 1])
    >>> grid.fit(x, y, n_epochs=2)
    >>> grid.sample_outputs(x[:5], n_passes=10).shape
    torch.Size([2, 10, 5])
    """

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        dropout_rates: Sequence[float],
        weight_decays: Sequence[float],
        seeds: Sequence[int],
        *,
        dtype: torch.dtype = torch.float32,
        adam: AdamSettings | None = None,
    ) -> None:
        n_configs = len(dropout_rates)
        if not n_configs or len(weight_decays) != n_configs or len(seeds) != n_configs:
            raise ArgumentValueError(
                "expected `dropout_rates`, `weight_decays` and `seeds` of one "
                f"equal, non-zero length, got {len(dropout_rates)}, "
                f"{len(weight_decays)} and {len(seeds)}"
            )
        if dtype not in (torch.float32, torch.float64):
            raise ArgumentValueError(
                f"expected `dtype` torch.float32 or torch.float64, got {dtype}"
            )
        self.n_features, self.n_hidden, self.dtype = n_features, n_hidden, dtype
        self._np_dtype = np.float32 if dtype == torch.float32 else np.float64
        self.dropout_rates = tuple(float(p) for p in dropout_rates)
        self.adam = adam or AdamSettings()
        self.generators = [np.random.Generator(np.random.SFC64(s)) for s in seeds]
        self._allocate(weight_decays)
        self._initialise()

    @property
    def n_configs(self) -> int:
        """Number of networks."""
        return len(self.dropout_rates)

    def _allocate(self, weight_decays: Sequence[float]) -> None:
        # One flat buffer each for weights, gradients and Adam's moments, so
        # a step updates every tensor of every network in a handful of calls.
        g, d, h = self.n_configs, self.n_features, self.n_hidden
        shapes = [(g, d, h), (g, 1, h), (g, 1, h), (g, 1, 1)]
        sizes = [math.prod(shape) for shape in shapes]

        def views(flat: Tensor) -> list[Tensor]:
            return [
                part.view(shape)
                for part, shape in zip(flat.split(sizes), shapes, strict=True)
            ]

        self.theta = torch.zeros(sum(sizes), dtype=self.dtype)
        self.w1, self.b1, self.w2, self.b2 = views(self.theta)
        self.grad = torch.zeros_like(self.theta)
        self._grads = views(self.grad)
        self._m, self._v = torch.zeros_like(self.theta), torch.zeros_like(self.theta)
        self._denom = torch.zeros_like(self.theta)
        self.n_steps = 0

        # d(lambda ||W||^2)/dW = 2 lambda W on the kernels; biases undecayed.
        self._decay = torch.zeros_like(self.theta)
        twice = 2.0 * torch.tensor(weight_decays, dtype=self.dtype).view(-1, 1, 1)
        for kernel in views(self._decay)[0::2]:
            kernel.copy_(twice.expand_as(kernel))

    def _initialise(self) -> None:
        d, h, dtype = self.n_features, self.n_hidden, self._np_dtype
        for config, generator in enumerate(self.generators):
            self.w1[config] = _glorot_uniform((d, h), generator, dtype)
            self.w2[config] = _glorot_uniform((h, 1), generator, dtype).T

    def _masks(self, uniforms: np.ndarray) -> Tensor:
        """Inverted-dropout masks from uniforms ``(n_configs, ...)``."""
        shape = (-1,) + (1,) * (uniforms.ndim - 1)
        rates = torch.tensor(self.dropout_rates, dtype=self.dtype).view(shape)
        keep = torch.from_numpy(uniforms).ge_(rates)
        return keep.div_(1.0 - rates)

    def fit(
        self, inputs: Tensor, targets: Tensor, n_epochs: int, batch_size: int = 128
    ) -> None:
        """Train every network for ``n_epochs`` on the same rows.

        Parameters
        ----------
        inputs : Tensor
            ``(n_rows, n_features)``, standardised.
        targets : Tensor
            ``(n_rows,)``, standardised.
        n_epochs : int
        batch_size : int, default 128
            Rows per step; the last step of an epoch takes the remainder.
        """
        inputs, targets = inputs.to(self.dtype), targets.to(self.dtype)
        n_rows = inputs.shape[0]
        for first in range(0, n_epochs, EPOCH_CHUNK):
            n_chunk = min(EPOCH_CHUNK, n_epochs - first)
            dropped, hidden_masks, shuffled = self._epochs(inputs, targets, n_chunk)
            for epoch in range(n_chunk):
                for start in range(0, n_rows, batch_size):
                    rows = slice(start, start + batch_size)
                    self._step(
                        dropped[:, epoch, rows],
                        hidden_masks[:, epoch, rows],
                        shuffled[:, epoch, None, rows],
                    )

    def _epochs(
        self, inputs: Tensor, targets: Tensor, n_epochs: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Each network's dropped-out inputs ``(n_configs, n_epochs, n_rows,
        n_features)``, hidden masks ``(..., n_hidden)`` and targets
        ``(n_configs, n_epochs, n_rows)``, rows in each epoch's order."""
        n_rows = inputs.shape[0]
        g, d, h = self.n_configs, self.n_features, self.n_hidden
        order = np.empty((g, n_epochs, n_rows), dtype=np.int64)
        input_draws = np.empty((g, n_epochs, n_rows, d), dtype=self._np_dtype)
        hidden_draws = np.empty((g, n_epochs, n_rows, h), dtype=self._np_dtype)
        for epoch in range(n_epochs):
            for config, generator in enumerate(self.generators):
                order[config, epoch] = generator.permutation(n_rows)
                generator.random(out=input_draws[config, epoch], dtype=self._np_dtype)
                generator.random(out=hidden_draws[config, epoch], dtype=self._np_dtype)

        order = torch.from_numpy(order)
        dropped = inputs[order].mul_(self._masks(input_draws))
        return dropped, self._masks(hidden_draws), targets[order]

    def _step(self, dropped: Tensor, hidden_mask: Tensor, targets: Tensor) -> None:
        """One Adam step of every network on its mini-batch: inputs, already
        dropped out, ``(n_configs, batch, n_features)``, hidden masks
        ``(n_configs, batch, n_hidden)``, targets ``(n_configs, 1, batch)``."""
        grad_w1, grad_b1, grad_w2, grad_b2 = self._grads
        hidden = torch.baddbmm(self.b1, dropped, self.w1).relu_()
        # ReLU's derivative times the dropout mask, one 0-or-1/(1-p) factor
        # for the forward and the backward pass; sign() of a ReLU output is
        # its derivative and costs less than a comparison.
        mask = hidden.sign().mul_(hidden_mask)
        hidden.mul_(hidden_mask)
        outputs = torch.baddbmm(self.b2, self.w2, hidden.transpose(1, 2))

        d_outputs = outputs.sub_(targets).mul_(2.0 / dropped.shape[1])
        torch.bmm(d_outputs, hidden, out=grad_w2)
        torch.sum(d_outputs, dim=2, keepdim=True, out=grad_b2)
        d_hidden = (d_outputs.transpose(1, 2) * self.w2).mul_(mask)
        torch.bmm(dropped.transpose(1, 2), d_hidden, out=grad_w1)
        torch.sum(d_hidden, dim=1, keepdim=True, out=grad_b1)
        self.grad.addcmul_(self.theta, self._decay)
        self._adam_step()

    def _adam_step(self) -> None:
        adam = self.adam
        self.n_steps += 1
        t = self.n_steps
        step = adam.lr * math.sqrt(1.0 - adam.beta2**t) / (1.0 - adam.beta1**t)
        self._m.mul_(adam.beta1).add_(self.grad, alpha=1.0 - adam.beta1)
        self._v.mul_(adam.beta2).addcmul_(self.grad, self.grad, value=1.0 - adam.beta2)
        torch.sqrt(self._v, out=self._denom).add_(adam.eps)
        self.theta.addcdiv_(self._m, self._denom, value=-step)

    @torch.no_grad()
    def sample_outputs(self, inputs: Tensor, n_passes: int) -> Tensor:
        """Every network's outputs over ``n_passes`` dropout passes.

        Network ``g`` draws, for each chunk of ``k`` passes, its input masks
        ``random((k, n_rows, n_features))`` then its hidden masks
        ``random((k, n_rows, n_hidden))``; ``k`` depends on the input size
        only, never on ``n_configs``.

        Parameters
        ----------
        inputs : Tensor
            ``(n_rows, n_features)``, standardised.
        n_passes : int

        Returns
        -------
        Tensor
            ``(n_configs, n_passes, n_rows)``, in standardised units.
        """
        inputs = inputs.to(self.dtype)
        n_rows = inputs.shape[0]
        g, d, h = self.n_configs, self.n_features, self.n_hidden
        per_chunk = max(1, PASS_CHUNK_VALUES // (n_rows * (d + h)))
        chunks = []
        for done in range(0, n_passes, per_chunk):
            k = min(per_chunk, n_passes - done)
            input_draws = np.empty((g, k, n_rows, d), dtype=self._np_dtype)
            hidden_draws = np.empty((g, k, n_rows, h), dtype=self._np_dtype)
            for config, generator in enumerate(self.generators):
                generator.random(out=input_draws[config], dtype=self._np_dtype)
                generator.random(out=hidden_draws[config], dtype=self._np_dtype)

            dropped = (inputs * self._masks(input_draws)).view(g, k * n_rows, d)
            hidden = torch.baddbmm(self.b1, dropped, self.w1).relu_()
            hidden.mul_(self._masks(hidden_draws).view(g, k * n_rows, h))
            outputs = torch.baddbmm(self.b2, self.w2, hidden.transpose(1, 2))
            chunks.append(outputs.view(g, k, n_rows))
        return torch.cat(chunks, dim=1)

    def network(self, config: int) -> nn.Sequential:
        """Network ``config`` as an ordinary ``nn.Sequential`` (a copy)::

        Dropout(p), Linear(n_features, n_hidden), ReLU, Dropout(p),
        Linear(n_hidden, 1)
        """
        p = self.dropout_rates[config]
        hidden = nn.Linear(self.n_features, self.n_hidden, dtype=self.dtype)
        output = nn.Linear(self.n_hidden, 1, dtype=self.dtype)
        with torch.no_grad():
            hidden.weight.copy_(self.w1[config].T)
            hidden.bias.copy_(self.b1[config, 0])
            output.weight.copy_(self.w2[config])
            output.bias.copy_(self.b2[config, 0])
        return nn.Sequential(nn.Dropout(p), hidden, nn.ReLU(), nn.Dropout(p), output)
