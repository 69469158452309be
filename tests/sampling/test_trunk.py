import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcdropout import MCDropout, add_dropout
from mcdropout._exceptions import ArgumentValueError
from mcdropout.dropout import enable_dropout
from mcdropout.sampling import PassEngine
from mcdropout.sampling._engine import CPU_CHUNK_BYTES
from mcdropout.sampling._memory import AllocationCounter
from mcdropout.sampling._trunk import SplitUnavailable, split_trunk
from tests.conftest import assert_unchanged, snapshot


def head_dropout_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(32, 3),
    ).eval()  # fmt: skip


class Flattening(nn.Module):
    """Reads the batch size in the trunk and uses it after the dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.drop = nn.Dropout2d(0.3)
        self.fc = nn.Linear(3 * 5 * 5, 4)

    def forward(self, x):
        n = x.size(0)
        features = F.relu(self.conv(x))
        return self.fc(self.drop(features).view(n, -1))


class Residual(nn.Module):
    """The trunk's features reach the output both through dropout and around it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 16)
        self.drop = nn.Dropout(0.4)
        self.head = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        features = torch.tanh(self.body(x))
        return self.out(features + self.head(self.drop(features)))


class Noisy(nn.Module):
    """Adds noise of its own, which stacked passes would share."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.fc(self.drop(x) + 0.1 * torch.randn(x.shape[1]))


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        if x.sum() > 0:  # cannot be traced symbolically
            x = -x
        return self.drop(self.fc(x))


def with_inserted_dropout() -> nn.Module:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return add_dropout(plain, 0.3)


MODELS = {
    "head_mlp": (head_dropout_mlp, (12, 6)),
    "flattening": (lambda: Flattening().eval(), (12, 1, 5, 5)),
    "residual": (lambda: Residual().eval(), (12, 6)),
    "inserted": (with_inserted_dropout, (12, 6)),
}


@pytest.mark.parametrize("name", MODELS)
def test_trunk_equals_full_stacked_passes(name):
    # The tail draws the same masks, of the same shapes in the same order, as
    # full stacked passes do, so with one seed the results agree to rounding.
    factory, shape = MODELS[name]
    model = factory()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    before = snapshot(model)

    kwargs = {"seed": 3, "keep_samples": True, "max_batch_size": 48}
    stacked = MCDropout(model, 8, strategy="stacked", **kwargs).predict(x)
    trunk = MCDropout(model, 8, strategy="trunk", **kwargs).predict(x)

    torch.testing.assert_close(trunk.samples, stacked.samples, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trunk.probs, stacked.probs, rtol=1e-5, atol=1e-6)
    assert (trunk.variance.sum(-1) > 0).all()
    assert_unchanged(model, before)


def test_split_computes_only_the_head_per_pass():
    model = head_dropout_mlp()
    x = torch.randn(5, 6)
    with torch.inference_mode(), enable_dropout(model):
        split = split_trunk(model, x, 5)
    tail_modules = [
        node.target for node in split.tail.graph.nodes if node.op == "call_module"
    ]
    assert tail_modules == ["4", "5"]
    assert split.repeated == [True]


def test_dropout_on_the_inputs_leaves_nothing_to_cache(mlp, inputs):
    model = nn.Sequential(nn.Dropout(0.2), mlp)
    with (
        torch.inference_mode(),
        enable_dropout(model),
        pytest.raises(SplitUnavailable, match="dropout acts on the inputs"),
    ):
        split_trunk(model, inputs, 10)
    auto = MCDropout(model, 6, seed=0).predict(inputs)
    stacked = MCDropout(model, 6, seed=0, strategy="stacked").predict(inputs)
    torch.testing.assert_close(auto.probs, stacked.probs)


class SharedNoise(nn.Module):
    """Adds one noise draw per forward; fx bakes ``torch.randn(1)`` in as a
    constant, so only running the model reveals it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.drop = nn.Dropout(0.01)

    def forward(self, x):
        return self.drop(self.fc(x)) + 5 * torch.randn(1)


@pytest.mark.parametrize("factory", [Noisy, SharedNoise])
@pytest.mark.parametrize("mode", ["modules", "train_except_norm"])
def test_own_random_numbers_make_auto_loop_on_every_call(inputs, caplog, factory, mode):
    torch.manual_seed(0)
    model = factory().eval()
    mc = MCDropout(model, 40, seed=0, mode=mode, task="regression")
    with caplog.at_level(logging.DEBUG, logger="mcdropout"):
        first = mc.predict(inputs)
    assert "draws random numbers" in caplog.text
    # The decision is kept with the cached plan: the second call loops too.
    second = mc.predict(inputs)
    looped = MCDropout(model, 40, seed=0, mode=mode, task="regression", strategy="loop")
    expected = looped.predict(inputs)
    torch.testing.assert_close(first.mean, expected.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(second.mean, expected.mean, rtol=0, atol=1e-12)


def test_untraceable_model_falls_back_and_forced_trunk_says_why(inputs, caplog):
    model = DataDependent().eval()
    with caplog.at_level(logging.DEBUG, logger="mcdropout"):
        auto = MCDropout(model, 6, seed=0, task="regression").predict(inputs)
    assert "does not trace" in caplog.text
    stacked = MCDropout(model, 6, seed=0, strategy="stacked", task="regression")
    torch.testing.assert_close(auto.mean, stacked.predict(inputs).mean)
    with pytest.raises(ArgumentValueError, match=r"strategy='trunk'.*does not trace"):
        MCDropout(model, 6, strategy="trunk", task="regression").predict(inputs)


def test_allocation_counter_counts_created_tensors_not_views():
    linear = nn.Linear(4, 8)
    x = torch.randn(16, 4)
    with torch.inference_mode(), AllocationCounter() as counter:
        hidden = F.relu(linear(x))  # addmm output and relu output
        hidden.view(-1).t()  # views allocate nothing
    assert counter.n_bytes == 2 * 16 * 8 * 4


@pytest.mark.parametrize("budget", [1, 4_000, 10**9])
def test_memory_budget_sets_chunks_without_changing_statistics(budget):
    model = head_dropout_mlp()
    x = torch.randn(40, 6)
    prediction = MCDropout(
        model, 10, seed=0, keep_samples=True, memory_budget=budget
    ).predict(x)
    samples = prediction.samples.double()
    torch.testing.assert_close(prediction.probs, samples.mean(0), atol=1e-7, rtol=0)


def test_layout_follows_the_measured_pass():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5)).eval()
    x = torch.randn(100, 4)
    # What dropout allocates differs between torch versions, so the test
    # reads the measurement and checks the arithmetic built on it.
    engine = PassEngine(model, "stacked", memory_budget=20_000)
    with torch.inference_mode(), enable_dropout(model):
        chunks = [(start, out.shape[0]) for start, _, out in engine.run(x, 100, 7)]
    plan = next(iter(engine.plans.values()))
    per_row = plan.pass_bytes_per_row
    rows_per_block = min(100, int(20_000 // plan.full_bytes_per_row))
    passes = max(1, int(20_000 // per_row) // rows_per_block)
    assert engine.passes_per_chunk == passes
    assert sum(k for start, k in chunks if start == 0) == 7
    assert {start for start, _ in chunks} == set(range(0, 100, rows_per_block))


class RunsOutOfMemory(nn.Module):
    def __init__(self, max_rows: int) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.drop = nn.Dropout(0.3)
        self.max_rows = max_rows

    def forward(self, x):
        if x.shape[0] > self.max_rows:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return self.fc(self.drop(x))


def test_out_of_memory_halves_the_chunk_and_retries(inputs, caplog):
    model = RunsOutOfMemory(max_rows=35).eval()
    mc = MCDropout(model, 16, strategy="stacked", max_batch_size=160, keep_samples=True)
    with caplog.at_level(logging.WARNING, logger="mcdropout"):
        prediction = mc.predict(inputs)
    # 160, 80 and 40 rows exceed the 35 that fit; 2 passes of 10 rows do.
    assert "running 16 passes" in caplog.text
    assert "retrying with 2" in caplog.text
    assert prediction.samples.shape == (16, 10, 3)

    with pytest.raises(torch.OutOfMemoryError, match="simulated"):
        MCDropout(RunsOutOfMemory(max_rows=5), 4, max_batch_size=40).predict(inputs)


def test_bfloat16_autocast_accumulates_in_float64(mlp, inputs):
    full = MCDropout(mlp, 20, seed=0, strategy="loop").predict(inputs)
    low = MCDropout(mlp, 20, seed=0, strategy="loop", precision="bfloat16")
    prediction = low.predict(inputs)
    assert prediction.probs.dtype == torch.float64
    torch.testing.assert_close(prediction.probs, full.probs, atol=0.03, rtol=0)
    with pytest.raises(ArgumentValueError, match=r"`precision`.*got 'float16'"):
        MCDropout(mlp, 2, precision="float16").predict(inputs)


def test_cpu_chunks_stay_within_the_cache_friendly_size():
    model = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Dropout(0.5)).eval()
    x = torch.randn(100, 4)
    engine = PassEngine(model, "stacked", memory_budget=10**12)
    with torch.inference_mode(), enable_dropout(model):
        for _ in engine.run(x, 100, 1000):
            pass
    plan = next(iter(engine.plans.values()))
    # The budget would allow every pass at once; the CPU cap does not.
    expected = int(CPU_CHUNK_BYTES // plan.pass_bytes_per_row) // 100
    assert engine.passes_per_chunk == expected < 1000
