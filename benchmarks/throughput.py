"""Throughput and memory of Monte Carlo dropout: naive loop against mcdropout.

For each model, on the same inputs in one run, with T passes:

- naive loop: dropout switched on, T forwards, softmax, stack (what most
  code does by hand);
- full replication: the batch repeated T times in one forward, all T outputs
  kept (what peers that "vectorise" do);
- mcdropout: ``MCDropout(model, T).predict(x)`` with its defaults;
- lower bound: the deterministic trunk once plus T stacked passes of the
  stochastic tail, written by hand for that model, with softmax and mean.

Times are the best of ``--repeats`` runs after a warm-up. Peak memory is the
process's peak resident set size, and its growth while predicting 20,000
inputs (2,000 for the transformer), each measurement in a fresh subprocess.

Run: ``python benchmarks/throughput.py`` (about 4 minutes for the speed
table and 15 for the memory table on 2 CPU cores; ``--skip-memory`` or
``--skip-speed`` for one of them); ``--quick`` for a smoke run.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from mcdropout import MCDropout
from mcdropout.dropout import enable_dropout, eval_mode


@dataclass
class Case:
    """A benchmark model: how to build it, its inputs, and its split by hand."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    n_inputs: int
    mode: str = "modules"
    # Inputs of the peak-memory runs, as a share of --memory-inputs: whole
    # passes of the transformer at T=200 over 20,000 inputs take an hour.
    memory_share: float = 1.0
    # (trunk, tail) of the model, for the hand-written lower bound.
    split: Callable[[nn.Module], tuple[Callable, Callable]] | None = None


def mlp() -> nn.Module:
    layers: list[nn.Module] = []
    width = 64
    for _ in range(3):
        layers += [nn.Linear(width, 256), nn.ReLU(), nn.Dropout(0.2)]
        width = 256
    return nn.Sequential(*layers, nn.Linear(256, 10))


def small_cnn() -> nn.Module:
    features = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    head = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )  # fmt: skip
    return nn.Sequential(features, head)


def resnet18() -> nn.Module:
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    model.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(512, 10))
    return model


class Transformer(nn.Module):
    """A small encoder classifier; dropout in attention and feed-forward."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def split_sequential_at(index: int) -> Callable:
    def split(model: nn.Module) -> tuple[Callable, Callable]:
        return model[:index], model[index:]

    return split


def split_resnet(model: nn.Module) -> tuple[Callable, Callable]:
    def trunk(x: Tensor) -> Tensor:
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return torch.flatten(model.avgpool(x), 1)

    return trunk, model.fc


def split_transformer(model: nn.Module) -> tuple[Callable, Callable]:
    def tail(x: Tensor) -> Tensor:
        return model.head(model.encoder(x).mean(dim=1))

    return model.embed, tail


CASES = [
    Case("MLP, dropout after every hidden layer", mlp, (64,), 1024,
         split=split_sequential_at(2)),
    Case("small CNN, BatchNorm, dropout in head", small_cnn, (3, 32, 32), 256,
         split=split_sequential_at(1)),
    Case("ResNet-18 (32x32), dropout head", resnet18, (3, 32, 32), 128,
         split=split_resnet),
    Case("transformer encoder, dropout throughout", Transformer, (16, 16), 256,
         mode="train_except_norm", memory_share=0.1, split=split_transformer),
]  # fmt: skip


def naive_loop(model: nn.Module, x: Tensor, n_passes: int, mode: str) -> Tensor:
    with torch.inference_mode(), eval_mode(model), enable_dropout(model, mode):
        samples = [F.softmax(model(x), dim=-1) for _ in range(n_passes)]
        return torch.stack(samples).mean(0)


def replicated(model: nn.Module, x: Tensor, n_passes: int, mode: str) -> Tensor:
    with torch.inference_mode(), eval_mode(model), enable_dropout(model, mode):
        big = x.repeat(n_passes, *([1] * (x.ndim - 1)))
        samples = F.softmax(model(big), dim=-1).view(n_passes, x.shape[0], -1)
        return samples.mean(0)


def lower_bound(case: Case, model: nn.Module, x: Tensor, n_passes: int) -> Tensor:
    trunk, tail = case.split(model)
    with torch.inference_mode(), eval_mode(model), enable_dropout(model, case.mode):
        features = trunk(x)
        stacked = features.repeat(n_passes, *([1] * (features.ndim - 1)))
        samples = F.softmax(tail(stacked), dim=-1).view(n_passes, x.shape[0], -1)
        return samples.mean(0)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, caches, plans
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_case(case: Case, n_passes: int, repeats: int, quick: bool) -> dict:
    torch.manual_seed(0)
    model = case.build().eval()
    n_inputs = 32 if quick else case.n_inputs
    x = torch.randn(n_inputs, *case.input_shape)
    mc = MCDropout(model, n_passes, mode=case.mode)
    runs = {
        "naive loop": lambda: naive_loop(model, x, n_passes, case.mode),
        "full replication": lambda: replicated(model, x, n_passes, case.mode),
        "mcdropout": lambda: mc.predict(x),
        "lower bound": lambda: lower_bound(case, model, x, n_passes),
    }
    times = {name: best_time(run, repeats) for name, run in runs.items()}
    return {"model": case.name, "n_inputs": n_inputs, **times}


def peak_rss_mib() -> float:
    """The process's peak resident set size (VmHWM), which, unlike
    ``ru_maxrss``, starts afresh at ``exec`` instead of carrying the
    parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_memory_child(case_index: int, n_inputs: int, n_passes: int) -> None:
    """In a subprocess: print the peak RSS, and its growth while predicting."""
    torch.set_num_threads(2)
    case = CASES[case_index]
    torch.manual_seed(0)
    model = case.build().eval()
    x = torch.randn(n_inputs, *case.input_shape)
    mc = MCDropout(model, n_passes, mode=case.mode)
    mc.predict(x[:64])  # plans and allocator warm-up on a small batch
    before = peak_rss_mib()
    mc.predict(x)
    after = peak_rss_mib()
    print(json.dumps({"growth_mib": after - before, "peak_mib": after}))


def peak_memory(case_index: int, n_inputs: int, n_passes: int) -> dict:
    command = [
        sys.executable, __file__, "--child", str(case_index), str(n_inputs),
        str(n_passes),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def speed_table(rows: list[dict], n_passes: int) -> str:
    lines = [
        f"| model (T={n_passes}) | inputs | naive loop | full replication | "
        "mcdropout | lower bound | mcdropout speed-up vs naive | "
        "mcdropout / lower bound |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        naive, ours, bound = row["naive loop"], row["mcdropout"], row["lower bound"]
        lines.append(
            f"| {row['model']} | {row['n_inputs']} | {naive:.3f} s | "
            f"{row['full replication']:.3f} s | {ours:.3f} s | {bound:.3f} s | "
            f"{naive / ours:.1f}x | {ours / bound:.2f} |"
        )
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    lines = [
        "| model | inputs | peak RSS, T=10 | peak RSS, T=200 | ratio | "
        "growth while predicting, T=10 | T=200 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        low, high = row["T=10"], row["T=200"]
        lines.append(
            f"| {row['model']} | {row['n_inputs']} | {low['peak_mib']:.0f} MiB | "
            f"{high['peak_mib']:.0f} MiB | {high['peak_mib'] / low['peak_mib']:.2f} | "
            f"{low['growth_mib']:.0f} MiB | {high['growth_mib']:.0f} MiB |"
        )
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-passes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-inputs", type=int, default=20_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        peak_memory_child(*args.child)
        return

    torch.set_num_threads(2)
    print(f"Machine: {machine()}\n")
    if not args.skip_speed:
        repeats = 1 if args.quick else args.repeats
        rows = [time_case(case, args.n_passes, repeats, args.quick) for case in CASES]
        print(speed_table(rows, args.n_passes), end="\n\n", flush=True)
    if args.skip_memory:
        return
    memory_rows = []
    for index, case in enumerate(CASES):
        n_inputs = int((500 if args.quick else args.memory_inputs) * case.memory_share)
        memory_rows.append(
            {
                "model": case.name,
                "n_inputs": n_inputs,
                "T=10": peak_memory(index, n_inputs, 10),
                "T=200": peak_memory(index, n_inputs, 200),
            }
        )
    print(memory_table(memory_rows))


if __name__ == "__main__":
    main()
