"""Integrated gradients: captum (as shipped, and with the summed-gradient swap the evaluation uses)
against the hand-written batched version it replaced.

All three compute the midpoint Riemann sum of the target logit's gradient along the baseline-to-input
line, all steps of a chunk of rows in one forward/backward pass. The script prints, per input size,
the median wall time of each, the ratios captum / hand-written (measured in the same run, with the
torch thread count a user gets by default unless ``--threads`` is given), and the largest absolute
difference between the two attributions (they must agree to float precision).

    python benchmarks/ig_speed.py            # MLP 32 hidden, d in {2, 13, 64}, n in {100, 1000}, 32 steps
    python benchmarks/ig_speed.py --short    # CI-sized
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ct_plugin.evaluation.attribution import integrated_gradients_with_delta
from ct_plugin.models import mlp
from ct_plugin.torch_utils import frozen


def handwritten_integrated_gradients(
    model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, baseline: torch.Tensor,
    steps: int = 32, chunk_rows: int = 8192,
) -> torch.Tensor:
    """The evaluation's former implementation (ct_plugin <= 0.1.0), kept here as the baseline."""
    base = baseline.to(x).reshape(-1)
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    rows_per_chunk = max(1, chunk_rows // steps)
    parts = []
    with frozen(model):
        for xs, ts in zip(torch.split(x.detach(), rows_per_chunk), torch.split(targets, rows_per_chunk), strict=True):
            m = len(xs)
            path = (base + alphas[:, None, None] * (xs - base)[None]).reshape(steps * m, -1).requires_grad_(True)
            picked = model(path).gather(1, ts.repeat(steps)[:, None]).sum()
            (grad,) = torch.autograd.grad(picked, path)
            parts.append(grad.reshape(steps, m, -1).mean(dim=0) * (xs - base))
    return torch.cat(parts)


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default, what a user gets)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [(13, 100)] if args.short else [(2, 100), (2, 1000), (13, 100), (13, 1000), (64, 100), (64, 1000)]
    repeats = 3 if args.short else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, median of {repeats}")
    print(f"{'d':>4} {'n':>6} {'hand-written ms':>16} {'captum stock ms':>16} {'stock/hand':>11} "
          f"{'captum+sum ms':>14} {'sum/hand':>9} {'max |diff|':>11}")
    for d, n in sizes:
        torch.manual_seed(0)
        model = mlp(d, 2, hidden=(32,))
        x = torch.randn(n, d)
        targets = torch.randint(0, 2, (n,))
        baseline = x.mean(dim=0)
        inputs = (model, x, targets, baseline, args.steps)
        ours = _median_seconds(lambda inputs=inputs: handwritten_integrated_gradients(*inputs), repeats)
        stock = _median_seconds(
            lambda inputs=inputs: integrated_gradients_with_delta(*inputs, fast_gradients=False), repeats)
        fast = _median_seconds(lambda inputs=inputs: integrated_gradients_with_delta(*inputs), repeats)
        reference = handwritten_integrated_gradients(model, x, targets, baseline, args.steps)
        diff = max(
            float((reference - integrated_gradients_with_delta(model, x, targets, baseline, args.steps,
                                                               fast_gradients=flag)[0]).abs().max())
            for flag in (False, True)
        )
        print(f"{d:>4} {n:>6} {ours * 1e3:>16.2f} {stock * 1e3:>16.2f} {stock / ours:>11.2f} "
              f"{fast * 1e3:>14.2f} {fast / ours:>9.2f} {diff:>11.2e}")


if __name__ == "__main__":
    main()
