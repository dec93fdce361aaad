"""Would the twin critics of a SAC step be faster as one batched ensemble, or compiled? Measured, not assumed.

Times the critic part of a SAC gradient step (forward of both critics on a batch, then the backward pass into
their weights) at SB3's MLP shapes, three ways: the two critics as separate products (what SB3 and the sparse
algorithms do), the two as one ensemble of batched products (``torch.bmm`` over stacked weights), and the
separate critics through ``torch.compile`` (its compile time reported apart). Interleaved, one thread by
default; the median ratio to the separate products over the repeats is reported. With compilation, also the whole
critic update (forward, backward and Adam's step) compiled, against the same update run eagerly with SB3's default
Adam (a loop over the tensors on the CPU) and with the fused Adam the sparse algorithms use
(:func:`sb3_sparse.core.optim.prefer_fused`): what compiling away the Python around the products could save::

    python -m benchmarks.step_variants --out docs/benchmarks/throughput/step-variants
    python -m benchmarks.step_variants --widths 256 --no-compile
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch as th
from torch import nn

from benchmarks.throughput import machine, report_cpu_rows

#: HalfCheetah's observation + action size: the critics' input
INPUT_SIZE = 23


def twin_critics(width: int) -> nn.ModuleList:
    """SB3's two MLP critics at ``width``: [input, width, width, 1] with ReLU."""

    def critic() -> nn.Sequential:
        return nn.Sequential(nn.Linear(INPUT_SIZE, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))

    return nn.ModuleList([critic(), critic()])


def separate_step(critics: nn.ModuleList, x: th.Tensor) -> None:
    th.stack([network(x).square().mean() for network in critics]).sum().backward()


def ensemble_step(weights: list[th.Tensor], biases: list[th.Tensor], x: th.Tensor) -> None:
    """The same computation with every layer of both critics as one batched product."""
    hidden = x.expand(len(weights[0]), *x.shape)
    for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        hidden = th.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
        if index < len(weights) - 1:
            hidden = th.relu(hidden)
    hidden.square().mean(dim=(1, 2)).sum().backward()


def adam_update(critics: nn.ModuleList, x: th.Tensor, compiled: bool, fused: bool = False) -> Callable[[], None]:
    """One critic update (gradients reset, forward, backward, Adam's step), eager or compiled by ``torch.compile``
    (the forward and backward as one function, the optimizer step as another); ``fused``: PyTorch's fused Adam."""
    optimizer = th.optim.Adam(critics.parameters(), lr=3e-4, fused=fused or None)

    def forward_backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        separate_step(critics, x)

    run_forward_backward, step = (
        (th.compile(forward_backward), th.compile(optimizer.step))
        if compiled
        else (
            forward_backward,
            optimizer.step,
        )
    )

    def update() -> None:
        run_forward_backward()
        step()

    return update


def stacked(critics: nn.ModuleList) -> tuple[list[th.Tensor], list[th.Tensor]]:
    """The critics' weights and biases stacked layer by layer (leaf tensors of the ensemble)."""
    layers = [[m for m in network.modules() if isinstance(m, nn.Linear)] for network in critics]
    weights = [th.stack([layer.weight.detach() for layer in group]).requires_grad_() for group in zip(*layers, strict=True)]
    biases = [th.stack([layer.bias.detach() for layer in group]).requires_grad_() for group in zip(*layers, strict=True)]
    return weights, biases


def timed(step: Callable[[], None], passes: int) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        step()
    return (time.perf_counter() - start) / passes


def measure_width(width: int, args: argparse.Namespace) -> dict[str, Any]:
    """The variants' median time ratios to the separate products at ``width`` (and the compile time)."""
    critics = twin_critics(width)
    x = th.randn(args.batch, INPUT_SIZE)
    weights, biases = stacked(critics)
    variants: dict[str, Callable[[], None]] = {
        "separate": lambda: separate_step(critics, x),
        "ensemble": lambda: ensemble_step(weights, biases, x),
    }
    compile_seconds = None
    if not args.no_compile:
        compiled = nn.ModuleList([cast(nn.Module, th.compile(network)) for network in critics])
        start = time.perf_counter()
        separate_step(compiled, x)
        compile_seconds = time.perf_counter() - start
        variants["compiled"] = lambda: separate_step(compiled, x)
        variants["update"] = adam_update(twin_critics(width), x, compiled=False)
        variants["fused update"] = adam_update(twin_critics(width), x, compiled=False, fused=True)
        variants["compiled update"] = adam_update(twin_critics(width), x, compiled=True)
        start = time.perf_counter()
        variants["compiled update"]()
        compile_seconds += time.perf_counter() - start
    for step in variants.values():
        step()  # warm up
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            times[name].append(timed(variants[name], args.passes))
    # the compiled update against both eager updates, the rest against the separate products
    pairs: dict[str, tuple[str, str]] = {name: (name, "separate") for name in ("ensemble", "compiled") if name in times}
    if "compiled update" in times:
        pairs["compiled update"] = ("compiled update", "update")
        pairs["compiled update / fused"] = ("compiled update", "fused update")
    ratios = {
        name: statistics.median(t / s for t, s in zip(times[timed_name], times[baseline], strict=True))
        for name, (timed_name, baseline) in pairs.items()
    }
    print(f"width {width}: " + ", ".join(f"{name} {r:.2f}x" for name, r in ratios.items()), flush=True)
    separate_ms = statistics.median(times["separate"]) * 1e3
    return {"width": width, "separate_ms": separate_ms, "ratios": ratios, "compile_seconds": compile_seconds}


def cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--passes", type=int, default=20, help="timed steps per variant and repeat")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (the median ratio is kept)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    parser.add_argument("--out", type=Path, default=None, help="write step_variants.json and .md here")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    rows = [measure_width(width, args) for width in args.widths]
    header = (
        f"Twin SAC critics, forward + backward on a batch of {args.batch}, time relative to separate products (median of "
        f"{args.repeats} interleaved repeats x {args.passes} steps, {args.threads} thread(s)); {machine(th.device('cpu'))}, "
        f"torch {th.__version__}"
    )
    lines = [
        header,
        "",
        "| width | separate (ms) | ensemble / separate | compiled / separate | compiled update / eager update "
        "(+ SB3's Adam) | compiled update / eager update (+ fused Adam) | compile time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['width']} | {row['separate_ms']:.2f} | {row['ratios']['ensemble']:.2f}x | "
            f"{cell(row['ratios'].get('compiled'), '{:.2f}x')} | {cell(row['ratios'].get('compiled update'), '{:.2f}x')} | "
            f"{cell(row['ratios'].get('compiled update / fused'), '{:.2f}x')} | "
            f"{cell(row['compile_seconds'], '{:.0f}')} |"
        )
    return report_cpu_rows("step_variants", args, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
