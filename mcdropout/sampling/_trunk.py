"""Splitting a model into a deterministic trunk and a stochastic tail.

Everything a model computes before its first active dropout is the same in
every Monte Carlo pass. The split traces the model with ``torch.fx``, marks
every node that a source of randomness influences (the *tail*), and builds two
graph modules: the *trunk* computes, once per batch, the values the tail
needs (the *frontier*); the tail then runs on those values repeated for each
pass. Parameters are shared with the user's model, never copied.

A split is only used once it has been verified on the first rows of a batch:
with dropout switched off, tail(trunk(x)) stacked twice must equal model(x).
Models that do not trace, that draw random numbers other than through dropout
modules, or that fail the check raise :class:`SplitUnavailable` with the
reason; the engine then runs full passes and logs it at debug level.
"""

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.nn.modules.dropout import _DropoutNd

from mcdropout.dropout import eval_mode
from mcdropout.dropout._detect import FUNCTIONAL_DROPOUT
from mcdropout.sampling._batches import Batch, call_model, repeat_tensor

__all__ = ["SplitUnavailable", "TrunkSplit", "split_trunk"]

logger = logging.getLogger(__name__)

# Random operations other than dropout modules. Each pass must draw its own
# numbers, and a stacked forward draws one for all passes of a chunk unless
# the numbers are drawn per row, so a graph holding any of them runs looped.
_RANDOM_FUNCTIONS = frozenset(
    {
        torch.rand,
        torch.randn,
        torch.randint,
        torch.rand_like,
        torch.randn_like,
        torch.randint_like,
        torch.randperm,
        torch.bernoulli,
        torch.normal,
        torch.multinomial,
        torch.poisson,
        F.rrelu,
        F.gumbel_softmax,
    }
)
_RANDOM_METHODS = frozenset(
    {
        "bernoulli",
        "bernoulli_",
        "uniform_",
        "normal_",
        "random_",
        "exponential_",
        "geometric_",
        "cauchy_",
        "log_normal_",
        "multinomial",
    }
)


class SplitUnavailable(Exception):
    """The model cannot be split; the message says why."""


class _Tracer(fx.Tracer):
    """Keeps dropout, and modules with hooks, as single opaque calls.

    A module traced through would lose its hooks, among them the pre-hook
    that :func:`mcdropout.add_dropout` uses.
    """

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        has_hooks = bool(module._forward_hooks or module._forward_pre_hooks)
        return (
            has_hooks
            or isinstance(module, _DropoutNd)
            or super().is_leaf_module(module, qualified_name)
        )


def _has_dropout(module: nn.Module) -> bool:
    return any(isinstance(sub, _DropoutNd) for sub in module.modules())


def _is_random(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _RANDOM_FUNCTIONS or node.target in FUNCTIONAL_DROPOUT
    return node.op == "call_method" and node.target in _RANDOM_METHODS


@dataclass
class _Taint:
    stochastic: set[fx.Node]
    input_dependent: set[fx.Node]


def _taint(gm: fx.GraphModule) -> _Taint:
    """Mark nodes influenced by dropout, and nodes influenced by the inputs."""
    stochastic: set[fx.Node] = set()
    input_dependent: set[fx.Node] = set()
    for node in gm.graph.nodes:
        inputs = node.all_input_nodes
        if node.op == "placeholder" or any(n in input_dependent for n in inputs):
            input_dependent.add(node)
        if _is_random(node):
            raise SplitUnavailable(f"node {node.name!r} draws random numbers")
        seed = node.op == "call_module" and _has_dropout(gm.get_submodule(node.target))
        if seed or any(n in stochastic for n in inputs):
            stochastic.add(node)
    return _Taint(stochastic, input_dependent)


def _bind(signature: inspect.Signature, inputs: Batch) -> list[Any]:
    """The batch as the positional arguments of the traced forward."""
    if isinstance(inputs, dict):
        args, kwargs = (), inputs
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    else:
        args, kwargs = (inputs,), {}
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return list(bound.arguments.values())


class _TypeRecorder(fx.Interpreter):
    """Runs the graph once, recording whether each node yields a Tensor."""

    def run_node(self, node: fx.Node) -> Any:
        value = super().run_node(node)
        node.meta["mcdropout_is_tensor"] = isinstance(value, Tensor)
        return value


def _frontier(gm: fx.GraphModule, taint: _Taint) -> tuple[list[fx.Node], set]:
    """Trunk values the tail reads, and non-tensor nodes it recomputes.

    Input-dependent values that are not tensors (sizes, shapes, tuples) are
    recomputed in the tail from the repeated tensors, so that a
    ``x.view(x.size(0), -1)`` sees the stacked batch size.
    """
    frontier: dict[fx.Node, None] = {}
    recomputed: set[fx.Node] = set()

    def need(node: fx.Node) -> None:
        if node in taint.stochastic or node in recomputed or node in frontier:
            return
        keep = (
            node.op in ("placeholder", "get_attr")
            or node.meta.get("mcdropout_is_tensor", False)
            or node not in taint.input_dependent
        )
        if keep:
            frontier[node] = None
            return
        recomputed.add(node)
        for parent in node.all_input_nodes:
            need(parent)

    for node in gm.graph.nodes:
        if node in taint.stochastic or node.op == "output":
            for parent in node.all_input_nodes:
                need(parent)
    return list(frontier), recomputed


def _copy_graph(
    gm: fx.GraphModule, keep: set[fx.Node], inputs: list[fx.Node]
) -> tuple[fx.Graph, dict[fx.Node, fx.Node]]:
    """A graph of the nodes in ``keep``, in order, reading ``inputs`` as its
    placeholders; and the map from old nodes to new ones."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in inputs:
        env[node] = graph.placeholder(node.name)
    for node in gm.graph.nodes:
        if node in keep and node not in env:
            env[node] = graph.node_copy(node, lambda n: env[n])
    return graph, env


@dataclass
class TrunkSplit:
    """A verified split of a model into trunk and tail graph modules.

    ``repeated[i]`` says whether frontier value ``i`` is per-input (repeated
    once per pass) or shared (parameters, constants), passed as it is.
    """

    trunk: fx.GraphModule
    tail: fx.GraphModule
    repeated: list[bool]
    signature: inspect.Signature

    def run_trunk(self, inputs: Batch) -> tuple:
        """The frontier values for one batch of inputs."""
        return self.trunk(*_bind(self.signature, inputs))

    def run_tail(self, values: tuple, n_passes: int) -> Any:
        """The model's output for ``n_passes`` passes, stacked along dim 0."""
        stacked = [
            repeat_tensor(value, n_passes) if repeat else value
            for value, repeat in zip(values, self.repeated, strict=True)
        ]
        return self.tail(*stacked)

    def summary(self) -> str:
        """How many nodes each part has, for the log."""
        n_trunk = sum(node.op != "placeholder" for node in self.trunk.graph.nodes)
        n_tail = sum(node.op != "placeholder" for node in self.tail.graph.nodes)
        return (
            f"{n_trunk} trunk nodes once, {n_tail} tail nodes per pass, "
            f"{len(self.repeated)} values between them"
        )


def _build(
    gm: fx.GraphModule, taint: _Taint, signature: inspect.Signature
) -> TrunkSplit:
    frontier, recomputed = _frontier(gm, taint)
    if all(node.op in ("placeholder", "get_attr") for node in frontier):
        raise SplitUnavailable("dropout acts on the inputs; nothing to compute once")

    tail_nodes = (
        taint.stochastic
        | recomputed
        | {node for node in gm.graph.nodes if node.op == "output"}
    )
    tail = fx.GraphModule(gm, _copy_graph(gm, tail_nodes, frontier)[0])

    trunk_nodes = {
        node
        for node in gm.graph.nodes
        if node not in taint.stochastic and node.op != "output"
    }
    trunk_graph, env = _copy_graph(gm, trunk_nodes, [])
    trunk_graph.output(tuple(env[node] for node in frontier))
    trunk = fx.GraphModule(gm, trunk_graph)
    trunk.graph.eliminate_dead_code()
    trunk.recompile()

    repeated = [node in taint.input_dependent for node in frontier]
    return TrunkSplit(trunk, tail, repeated, signature)


def _verify(split: TrunkSplit, model: nn.Module, inputs: Batch, n_rows: int) -> None:
    """Check, with dropout off, that two stacked tail passes equal the model."""
    with eval_mode(model):
        expected = call_model(model, inputs)
        values = split.run_trunk(inputs)
        _check_batch_major(values, split.repeated, n_rows)
        actual = split.run_tail(values, 2)
    if not isinstance(expected, Tensor) or not isinstance(actual, Tensor):
        raise SplitUnavailable("the model does not return a single tensor")
    if actual.shape != (2 * n_rows, *expected.shape[1:]):
        raise SplitUnavailable(
            f"the stacked tail returned shape {tuple(actual.shape)}, "
            f"expected {(2 * n_rows, *expected.shape[1:])}"
        )
    for half in actual.view(2, *expected.shape):
        if not torch.allclose(half, expected, rtol=1e-4, atol=1e-5):
            raise SplitUnavailable("the split does not reproduce the model")


def _check_batch_major(values: tuple, repeated: list[bool], n_rows: int) -> None:
    for value, repeat in zip(values, repeated, strict=True):
        if not repeat:
            continue
        if not isinstance(value, Tensor) or value.ndim == 0 or value.shape[0] != n_rows:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value)
            raise SplitUnavailable(
                f"a per-input trunk value has shape {shape}, not {n_rows} rows first"
            )


def split_trunk(model: nn.Module, inputs: Batch, n_rows: int) -> TrunkSplit:
    """Split ``model`` into a verified trunk and tail for this kind of batch.

    Raises :class:`SplitUnavailable` with the reason when it cannot.
    Call it with dropout switched on as it will run (so ``if self.training``
    branches are traced as they will be taken) and under
    ``torch.inference_mode``.
    """
    if model._forward_hooks or model._forward_pre_hooks:
        raise SplitUnavailable("the model has hooks of its own")
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
        signature = inspect.signature(model.forward)
        args = _bind(signature, inputs)
    except Exception as error:  # tracing fails in many ways: all mean "no"
        raise SplitUnavailable(f"it does not trace ({error})") from error

    taint = _taint(gm)
    if not any(node.op == "output" for node in taint.stochastic):
        raise SplitUnavailable("no dropout module influences the output")
    try:
        _TypeRecorder(gm).run(*args)
        split = _build(gm, taint, signature)
        _verify(split, model, inputs, n_rows)
    except SplitUnavailable:
        raise
    except Exception as error:
        raise SplitUnavailable(f"running the split failed ({error!r})") from error
    return split
