"""The GPU path, measured in one run: CT and vanilla on Fashion-MNIST, MLP and CNN, on each placement.

The one prepared script for a machine with a GPU (issue: "The GPU path, measured"). For each model
(``--models``) and placement (``--placements``: ``cuda``, ``cpu:2`` for two torch threads as on a
2-core CI machine, ``cpu:all`` for every core), it trains vanilla and CT through ``ct_plugin.train``
(the user's path: data resident on the device, batched search) and prints the median seconds per
epoch after the first, the CT/vanilla ratio, the search's mean steps, the peak memory (CUDA
allocator peak on the GPU, resident growth on the CPU) and each placement's speed-up over
``cpu:2``. Then it evaluates one vanilla/CT pair of the last model with the paper protocol
(few rounds) on every placement and prints the seconds and the largest difference of the
per-round figures from the first placement's (the draws are made on the CPU, so only float
arithmetic differs).

What the host syncs cost, per model and placement: the search's seconds per epoch against its
ideal (mean steps x the forward and input-gradient passes of the searched rows, queued back to back
with no sync between them: the gap is what the per-step reads of the search and its bookkeeping
cost), and the training batch with and without the loop's one per-batch read of the loss values
(its finite check). On a GPU it also counts the synchronising CUDA calls of one CT epoch
(``torch.cuda.set_sync_debug_mode``).

Run (here, CPU only, small)::

    python benchmarks/gpu_path.py --data-dir ../shared/data --rows 2000 --epochs 2 --placements cpu:1,cpu:2

On a lent GPU machine (``../shared`` does not travel: copy ``fashion_mnist/`` into an ignored folder
named in ``carry``, e.g. ``gpu-data/fashion_mnist``; install from the project's own files)::

    pip install -e . && python benchmarks/gpu_path.py --data-dir gpu-data --out $OUT/gpu_path.md

Targets (issue 28): the CNN's CT epoch on the GPU at least 10x faster than on ``cpu:2``; the MLP's
no slower.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import ct_plugin
from benchmarks.common import RSSSampler, table
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs
from ct_plugin.threads import thread_scope


def parse_placement(text: str) -> tuple[str, int | None]:
    """``cuda[:i]`` -> (device, None); ``cpu:N`` -> ("cpu", N); ``cpu:all`` -> ("cpu", every core)."""
    if text.startswith("cuda"):
        return text, None
    if text.startswith("cpu:"):
        count = text.split(":", 1)[1]
        return "cpu", (os.cpu_count() or 1) if count == "all" else int(count)
    raise SystemExit(f"placement {text!r}: use cuda, cuda:INDEX, cpu:N or cpu:all")


def synchronise(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def input_gradient_seconds(model: torch.nn.Module, X: torch.Tensor, device: str, repeats: int = 20) -> float:
    """Seconds of one forward + input-gradient pass on ``X``, queued back to back (one sync at the end)."""
    model = copy.deepcopy(model).to(device).requires_grad_(False)
    X = X.to(device)

    def once() -> None:
        x = X.detach().requires_grad_(True)
        torch.autograd.grad(model(x).logsumexp(1).sum(), x)

    once()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    synchronise(device)
    return (time.perf_counter() - start) / repeats


def loss_read_ms(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, device: str, batches: int = 60
                 ) -> tuple[float, float]:
    """Milliseconds per training batch with and without reading its loss back (the loop's finite check)."""
    model = copy.deepcopy(model).to(device).requires_grad_(True)
    X, y = X.to(device), y.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)

    def run(read: bool) -> float:
        synchronise(device)
        start = time.perf_counter()
        for _ in range(batches):
            loss = torch.nn.functional.cross_entropy(model(X), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if read:
                torch.stack([loss.detach(), loss.detach()]).tolist()  # as the loop reads its terms
        synchronise(device)
        return (time.perf_counter() - start) / batches * 1e3

    run(True)
    with_read = min(run(True), run(True))
    without = min(run(False), run(False))
    return with_read, without


def count_syncs(spec: Any, model: str, device: str, nce: int, out: Path) -> float:
    """The synchronising CUDA calls of one CT epoch on ``device`` (set-up included), as torch reports them."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ct_plugin.train(spec, model=model, strategy="ct", epochs=1, batch_size=1000, nce=nce, device=device,
                            quiet=True, out=out)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return float(sum("synchroniz" in str(w.message) for w in caught))


def train_on(spec: Any, model: str, strategy: str, placement: str, epochs: int, nce: int, out: Path
             ) -> dict[str, Any]:
    """Train one run on ``placement``; median epoch seconds after the first, mean steps, peak memory (MB)."""
    device, threads = parse_placement(placement)
    sampler = RSSSampler(device)
    with thread_scope(threads), sampler:
        result = ct_plugin.train(spec, model=model, strategy=strategy, epochs=epochs, batch_size=1000, nce=nce,
                                 device=device, quiet=True, out=out)
    seconds = [record["epoch_seconds"] for record in result.log]
    searches = [record.get("search_seconds", 0.0) for record in result.log]
    return {"epoch": statistics.median(seconds[1:] or seconds), "first": seconds[0],
            "search": statistics.median(searches[1:] or searches), "model": result.model,
            "steps": float(np.mean([r.get("mean_steps") or 0 for r in result.log])), "memory": sampler.increase,
            "accuracy": float(result.log[-1].get("test_accuracy", float("nan")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="folder holding fashion_mnist/ (default: the resolver's)")
    parser.add_argument("--rows", type=int, default=60_000, help="training images (all: 60000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nce", type=int, default=1000)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--placements", default="cuda,cpu:2,cpu:all")
    parser.add_argument("--rounds", type=int, default=5, help="evaluation rounds of the pair")
    parser.add_argument("--out", help="also write the tables here (Markdown)")
    args = parser.parse_args()

    placements = [p.strip() for p in args.placements.split(",") if p.strip()]
    for placement in placements:
        if placement.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit(f"placement {placement}: torch {torch.__version__} sees no CUDA device")
    spec = ct_plugin.load_dataset("fashion_mnist", data_dir=args.data_dir, n_train=args.rows)
    where = (f"torch {torch.__version__}, {os.cpu_count()} CPU cores"
             + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA device"))
    lines = [f"# The GPU path: {spec.summary()}", "", f"{where}; {args.epochs} epochs, batch 1000, nce {args.nce}", ""]
    print("\n".join(lines), flush=True)
    rows, epoch_of, sync_rows = [], {}, []
    X_batch = torch.as_tensor(spec.X_train[:1000])
    y_batch = torch.as_tensor(spec.y_train[:1000])
    with tempfile.TemporaryDirectory() as scratch:
        runs: dict[tuple[str, str], Path] = {}
        for model in args.models.split(","):
            for placement in placements:
                for strategy in ("vanilla", "ct"):
                    out = Path(scratch) / f"{model}-{placement.replace(':', '-')}-{strategy}"
                    figures = train_on(spec, model, strategy, placement, args.epochs, args.nce, out)
                    epoch_of[(model, placement, strategy)] = figures["epoch"]
                    runs[(placement, strategy)] = out
                    base = epoch_of.get((model, "cpu:2", strategy))
                    rows.append([model, placement, strategy, figures["epoch"], figures["first"], figures["steps"],
                                 figures["memory"], figures["accuracy"],
                                 (base / figures["epoch"]) if base else float("nan")])
                    print(f"  {model} {placement} {strategy}: {figures['epoch']:.3f} s/epoch", flush=True)
                device, threads = parse_placement(placement)
                with thread_scope(threads):
                    ideal = figures["steps"] * args.nce / 1000 * input_gradient_seconds(figures["model"], X_batch,
                                                                                         device)
                    with_read, without = loss_read_ms(figures["model"], X_batch, y_batch, device)
                syncs = (count_syncs(spec, model, device, args.nce, out.with_name(out.name + "-syncs"))
                         if device.startswith("cuda") else float("nan"))
                sync_rows.append([model, placement, figures["search"], ideal, figures["search"] / ideal,
                                  with_read, without, with_read - without, syncs])
        for row in rows:  # speed-ups once cpu:2 is known whatever the order
            base = epoch_of.get((row[0], "cpu:2", row[2]))
            row[-1] = base / row[3] if base else float("nan")
        text = table("Seconds per epoch (median after the first)",
                     ["model", "placement", "strategy", "s/epoch", "first epoch s", "mean steps", "peak growth MB",
                      "test accuracy", "speed-up vs cpu:2"], rows,
                     note="peak growth MB: over the run's start (the CUDA allocator's on a GPU, resident on a CPU)")
        print(text)
        lines.append(text)
        text = table("What the host syncs cost (CT runs)",
                     ["model", "placement", "search s/epoch", "ideal search s", "search / ideal",
                      "batch ms with loss read", "batch ms without", "read ms", "syncs in one CT epoch"],
                     sync_rows,
                     note="ideal search: mean steps x nce/1000 x one forward + input-gradient pass on 1000 rows, "
                          "queued with no sync between passes; batch ms: a plain training step on 1000 rows with and "
                          "without the loop's per-batch read of the loss values; syncs: torch's sync debug mode "
                          "over one CT epoch and its set-up (GPU only)")
        print(text)
        lines.append(text)
        model = args.models.split(",")[-1]
        config = ProtocolConfig(rounds=args.rounds, lambda_energies=(1.0,), epsilons=(0.0, 0.1), ig_rows=50,
                                attack_rows=500)
        evaluated, first = [], None
        for placement in placements:
            device, threads = parse_placement(placement)
            pair = load_runs([runs[(placements[0], "vanilla")], runs[(placements[0], "ct")]])
            start = time.perf_counter()
            with thread_scope(threads):
                evaluation = evaluate_runs(pair, config, device=device)
            seconds = time.perf_counter() - start
            frame = evaluation.rounds[["validity", "ip", "cost"]].to_numpy(dtype=float)
            first = frame if first is None else first
            difference = float(np.nanmax(np.abs(frame - first))) if frame.size else float("nan")
            evaluated.append([model, placement, seconds, difference])
        text = table(f"Evaluating one vanilla/CT pair ({model}, paper protocol, {args.rounds} rounds)",
                     ["model", "placement", "seconds", "largest abs. difference vs the first placement"], evaluated)
        print(text)
        lines.append(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
