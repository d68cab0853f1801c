"""CLI sub-commands of the evaluation: ``ct-plugin evaluate`` and ``ct-plugin reproduce``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.validation import check_threads, parse_key_values

EVALUATE_EPILOG = """\
examples:
  ct-plugin evaluate runs/circles/baseline runs/circles/ct --out results/circles
  ct-plugin evaluate runs/adult/baseline runs/adult/ct --rounds 20 --lambda-energy 1,5

The first run is the reference every other run is compared with. Writes rounds.csv,
summary.csv, comparison.csv, robustness.csv, attribution.csv, evaluation.md and PNG figures.
"""

REPRODUCE_EPILOG = """\
examples:
  ct-plugin reproduce --quick --datasets circles,moons --out /tmp/ct-quick
  ct-plugin reproduce --data-dir ../shared/data            # the full table into docs/results.md

Trains a vanilla baseline and a CT model (MLP, reference defaults) per dataset into
--runs-dir (complete runs with the same settings are reused), evaluates them and writes
OUT/results.md, OUT/figures/*.png and OUT/results/<dataset>/.
"""


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}")
    return values


def command_line(args: argparse.Namespace) -> str:
    """The ``reproduce`` command that gives these settings (recorded in results.md)."""
    parts = ["ct-plugin", "reproduce"]
    if args.datasets:
        parts += ["--datasets", ",".join(d.strip() for v in args.datasets for d in v.split(",") if d.strip())]
    if args.quick:
        parts.append("--quick")
    for flag, value in (("--data-dir", args.data_dir), ("--out", args.out), ("--runs-dir", args.runs_dir),
                        ("--results-md", args.results_md), ("--rounds", args.rounds), ("--seed", args.seed),
                        ("--threads", args.threads)):
        if value is not None and not (flag == "--seed" and value == 0) and not (flag == "--out" and value == "docs") \
                and not (flag == "--runs-dir" and value == "runs/reproduce"):
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _key_values(pairs: list[str] | None) -> dict[str, Any] | None:
    """``--posthoc-option KEY=VALUE`` through the validation layer (typed against the generator later)."""
    return parse_key_values(pairs, "--posthoc-option") if pairs else None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``ct-plugin evaluate``."""
    import torch

    from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs, replace_config
    from ct_plugin.evaluation.report import summary_markdown, write_evaluation

    # small models: one thread each is fastest, and keeps a shared machine usable
    torch.set_num_threads(check_threads(args.threads, "--threads") or 1)
    runs = load_runs(args.run_dirs)
    config = replace_config(
        ProtocolConfig(),
        generator=args.posthoc,
        generator_options=_key_values(args.posthoc_option),
        lambda_energies=_floats(args.lambda_energy),
        tau=args.tau,
        max_steps=args.max_steps,
        cost_tau=args.cost_tau,
        rounds=args.rounds,
        n_factuals=args.n_factuals,
        epsilons=_floats(args.epsilons),
        seed=args.seed,
    )
    evaluation = evaluate_runs(runs, config)
    out = Path(args.out) if args.out else Path("evaluation") / evaluation.dataset
    files = write_evaluation(evaluation, out)
    print(summary_markdown(evaluation))
    print(f"\nwrote {len(files)} files to {out} ({evaluation.seconds:.1f} s)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``ct-plugin reproduce``."""
    import torch

    from ct_plugin.evaluation.reproduce import DATASETS, ReproduceSettings, run_reproduce

    # small models: one thread each is fastest, and keeps a shared machine usable
    torch.set_num_threads(check_threads(args.threads, "--threads") or 1)
    datasets = [d.strip() for value in args.datasets or () for d in value.split(",") if d.strip()] or list(DATASETS)
    settings = ReproduceSettings.for_mode(args.quick, seed=args.seed, rounds=args.rounds)
    out = Path(args.out)
    runs_dir = Path(args.runs_dir)
    result = run_reproduce(datasets, settings, out, runs_dir, args.data_dir, command_line(args), log=_progress,
                           results_md=Path(args.results_md) if args.results_md else None)
    from ct_plugin.evaluation.report import markdown_table

    print(markdown_table(result["table"]))
    return 0


def register_commands(subparsers) -> None:
    """Add the evaluation sub-commands to the ``ct-plugin`` parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    ev = subparsers.add_parser(
        "evaluate", help="evaluate trained runs against each other (CSV, Markdown, PNG)",
        description="Evaluate trained runs of one dataset with the paper's protocol (METHOD.md section 5).",
        epilog=EVALUATE_EPILOG, formatter_class=formatter,
    )
    ev.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories; the first is the reference")
    ev.add_argument("--posthoc", default=None, metavar="GENERATOR",
                    help="post-hoc generator for test-time counterfactuals (default eccco)")
    ev.add_argument("--posthoc-option", action="append", metavar="KEY=VALUE",
                    help="option of the post-hoc generator, e.g. step_size=0.05 (repeatable)")
    ev.add_argument("--out", help="output folder (default evaluation/<dataset>)")
    ev.add_argument("--lambda-energy", help="comma-separated ECCCo energy weights (default 0.1,0.5,1,5,10)")
    ev.add_argument("--tau", type=float, help="decision threshold of the main setting (default 0.95)")
    ev.add_argument("--max-steps", type=int, help="search steps T (default 50)")
    ev.add_argument("--cost-tau", type=float, help="decision threshold of the protected setting (default 0.5)")
    ev.add_argument("--rounds", type=int, help="bootstrap rounds (default 100)")
    ev.add_argument("--n-factuals", type=int, help="factuals per round (default 100)")
    ev.add_argument("--epsilons", help="comma-separated robust-accuracy grid (default 0,0.01,...,0.1)")
    ev.add_argument("--seed", type=int, help="seed of every draw (default 0)")
    ev.add_argument("--threads", type=int, help="torch CPU threads (default 1)")
    ev.set_defaults(func=cmd_evaluate)

    rp = subparsers.add_parser(
        "reproduce", help="train baseline and CT models and rebuild the paper's results table",
        description="Train vanilla and CT MLPs on the paper's datasets, evaluate them and write results.md.",
        epilog=REPRODUCE_EPILOG, formatter_class=formatter,
    )
    rp.add_argument("--datasets", action="append", metavar="NAMES",
                    help="comma-separated subset (default: the nine of the paper)")
    rp.add_argument("--quick", action="store_true", help="CI-sized run: fewer epochs, rounds and factuals")
    rp.add_argument("--data-dir", help="folder with the real tables' CSV files (else $CT_PLUGIN_DATA)")
    rp.add_argument("--out", default="docs", help="output folder for results.md, figures/ and results/ (default docs)")
    rp.add_argument("--runs-dir", default="runs/reproduce",
                    help="where the trained runs go (default runs/reproduce, git-ignored)")
    rp.add_argument("--results-md", help="path of the Markdown report (default OUT/results.md)")
    rp.add_argument("--rounds", type=int, help="bootstrap rounds (default 100, 10 with --quick)")
    rp.add_argument("--seed", type=int, default=0, help="seed of training and evaluation (default 0)")
    rp.add_argument("--threads", type=int, help="torch CPU threads (default 1)")
    rp.set_defaults(func=cmd_reproduce)
