"""Image-scale speed: CT on Fashion-MNIST (60,000 x 784) and MNIST on CPU, against a cost model, in one run.

Prints, for the MLP and the CNN on the user's path (``ct_plugin.train`` with its own thread choice):

* seconds per vanilla and CT epoch (batch 1000, 1000 counterfactuals per epoch; the median of the
  measured epochs after the first);
* the cost model's ideal CT epoch, measured in the same run: the vanilla epoch, plus the search's
  steps x (a forward and an input-gradient backward pass of the model on the searched rows), plus
  the extra passes of the counterfactual batch in the loss (x' and x+ forward, and their backward);
  and the CT epoch's ratio to it;
* the growth of resident memory over the process after its imports and the data load, against the
  encoded training data's size (peak, and after each epoch: flat means no leak);
* counterfactual search throughput (rows x steps per second) of the batched search.

CARLA's and DiCE's methods refuse image data (they are tabular explainers), so no throughput of
theirs on images exists to set beside ours; ``benchmarks/throughput.py`` compares them on tables.

Run: ``python benchmarks/image_speed.py --data-dir ../shared/data [--epochs 3] [--rows 60000] [--dataset mnist]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch

import ct_plugin
from ct_plugin.constraints import SearchConstraints
from ct_plugin.generators.gradient import ECCCoGenerator
from ct_plugin.models import cnn, mlp
from ct_plugin.threads import resolve_threads, thread_scope


def resident_mb() -> float:
    """Resident memory of this process now, in MB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def passes(model: torch.nn.Module, X: torch.Tensor, repeats: int = 5) -> tuple[float, float, float]:
    """Seconds of one forward, one forward + input-gradient backward, one forward + weight backward on X."""
    def best(step) -> float:
        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return min(times)

    def forward() -> None:
        with torch.no_grad():
            model(X)

    frozen = [p.requires_grad_(False) for p in model.parameters()]

    def input_backward() -> None:
        x = X.detach().requires_grad_(True)
        torch.autograd.grad(model(x).logsumexp(1).sum(), x)

    t_input = best(input_backward)
    for p in frozen:
        p.requires_grad_(True)

    def weight_backward() -> None:
        model.zero_grad()
        model(X).logsumexp(1).sum().backward()

    return best(forward), t_input, best(weight_backward)


class MemorySampler(threading.Thread):
    """Samples the resident memory every 20 ms while training runs (the epochs' memory, flat or growing)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.samples.append(resident_mb())

    def thirds(self) -> list[float]:
        """The largest sample of each third of the run (first, middle, last)."""
        parts = np.array_split(np.asarray(self.samples or [resident_mb()]), 3)
        return [float(part.max()) if len(part) else float("nan") for part in parts]


def epochs_of(spec, model_name: str, strategy: str, epochs: int, nce: int) -> dict[str, float]:
    """Train and return the median epoch seconds after the first, mean search steps and the memory of the run."""
    sampler = MemorySampler()
    sampler.start()
    result = ct_plugin.train(spec, model=model_name, strategy=strategy, epochs=epochs, batch_size=1000, nce=nce,
                             quiet=True)
    sampler.stopped.set()
    sampler.join()
    memory = sampler.thirds()
    threads = resolve_threads(None, result.model, 1000 if strategy == "vanilla" else max(1000, nce))  # train's rule
    seconds = [record["epoch_seconds"] for record in result.log]
    later = seconds[1:] or seconds
    return {"epoch": statistics.median(later), "steps": float(np.mean([r.get("mean_steps") or 0 for r in result.log])),
            "search": statistics.median([r.get("search_seconds", 0.0) for r in result.log][1:] or [0.0]),
            "memory": memory, "threads": threads, "model": result.model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data folder holding fashion_mnist/ (default: the resolver's)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=60_000, help="Fashion-MNIST training images (all: 60000)")
    parser.add_argument("--nce", type=int, default=1000)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--dataset", default="fashion_mnist", choices=("fashion_mnist", "mnist"),
                        help="mnist: the reference's MNIST (IDX files) or the 5k subset; --rows applies to IDX files")
    args = parser.parse_args()

    after_imports = resident_mb()
    options = {"n_train": args.rows} if args.dataset == "fashion_mnist" or args.rows != 60_000 else {}
    spec = ct_plugin.load_dataset(args.dataset, data_dir=args.data_dir, **options)
    data_mb = (spec.X_train.nbytes + spec.X_test.nbytes) / 2**20
    after_load = resident_mb()
    print(f"{spec.summary()}; encoded data (train and test) {data_mb:.0f} MB; resident after imports "
          f"{after_imports:.0f} MB, after the load {after_load:.0f} MB")
    X = torch.as_tensor(spec.X_train[:1000])
    targets = (torch.as_tensor(spec.y_train[:1000]) + 1) % spec.n_classes
    for name in args.models.split(","):
        vanilla = epochs_of(spec, name, "vanilla", args.epochs, args.nce)
        ct = epochs_of(spec, name, "ct", args.epochs, args.nce)
        model = ct["model"]
        with thread_scope(ct["threads"]):  # the passes with the threads training used
            t_fwd, t_input, t_weight = passes(model, X)
        searched = args.nce / 1000
        n_batches = int(np.ceil(len(spec.y_train) / 1000))
        # the loss's counterfactual batch: x' and x+ of each batch's share of the nce rows, forward and backward
        extra = 2 * searched * (t_weight)
        ideal = vanilla["epoch"] + ct["steps"] * searched * t_input + searched * t_fwd + extra
        growth = peak_mb() - after_imports
        print(f"\n[{name}] torch threads {ct['threads']} (train's own choice for this model: the user's default path)")
        ratio = ct["epoch"] / vanilla["epoch"]
        print(f"  vanilla epoch {vanilla['epoch']:.3f} s; CT epoch {ct['epoch']:.3f} s ({ratio:.2f}x vanilla; "
              f"search {ct['search']:.3f} s at {ct['steps']:.1f} mean steps)")
        print(f"  passes on 1000 rows: forward {t_fwd * 1e3:.2f} ms, forward + input gradient {t_input * 1e3:.2f} ms, "
              f"forward + weight gradient {t_weight * 1e3:.2f} ms; {n_batches} batches per epoch")
        print(f"  cost model: ideal CT epoch {ideal:.3f} s ({ideal / vanilla['epoch']:.2f}x vanilla); "
              f"measured / ideal = {ct['epoch'] / ideal:.2f}x (target <= 1.3x)")
        print(f"  search throughput: {ct['steps'] * args.nce / max(ct['search'], 1e-9):,.0f} row-steps/s")
        print(f"  resident memory growth over the process after imports: peak {growth:.0f} MB = "
              f"{growth / data_mb:.1f}x the encoded data (target <= 3x); the CT run's largest growth in its first, "
              f"middle and last third: {', '.join(f'{m - after_imports:.0f}' for m in ct['memory'])} MB")
    generator = ECCCoGenerator(preset="reference")
    constraints = SearchConstraints.from_spec(spec)
    model = mlp(spec.n_features, spec.n_classes)
    start = time.perf_counter()
    generator.search(model, X, targets, constraints, tau=1.0, max_steps=30, epsilon=0.3)
    step = (time.perf_counter() - start) / 30
    print(f"\none ECCCo search step on 1000 rows (MLP, this process's threads): {step * 1e3:.2f} ms; "
          f"cnn on the image shape: {sum(p.numel() for p in cnn(784, 10, (28, 28)).parameters()):,} parameters")


if __name__ == "__main__":
    main()
