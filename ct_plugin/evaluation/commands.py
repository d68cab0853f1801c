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
  ct-plugin reproduce --data-dir DATA --out docs           # the committed docs/results.md

Per dataset: tunes tau and lambda_reg on a validation split of the training rows, then trains a
vanilla baseline and CT (nothing immutable; protected feature immutable) with the paper's Table C.1
settings and with the tuned ones, for each seed, evaluates them with the paper's protocol and the
strict one, and writes OUT/results.md, OUT/figures/*.png and OUT/results/<dataset>/.
"""


THREADS_HELP = "torch CPU threads (default: $OMP_NUM_THREADS if set, else from the model size; 1 for small models)"


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
    """The ``reproduce`` command that gives these settings (recorded in results.md).

    The data folder is left out (it differs between machines): the tables are found the same way
    whichever way it is given.
    """
    parts = ["ct-plugin", "reproduce"]
    if args.datasets:
        parts += ["--datasets", ",".join(d.strip() for v in args.datasets for d in v.split(",") if d.strip())]
    for flag, on in (("--quick", args.quick), ("--no-ablations", args.no_ablations)):
        if on:
            parts.append(flag)
    defaults = {"--out": "reproduce-out", "--runs-dir": "runs/reproduce", "--data-style": "reference"}
    for flag, value in (("--seeds", args.seeds), ("--settings", args.settings), ("--data-style", args.data_style),
                        ("--rounds", args.rounds), ("--out", args.out), ("--runs-dir", args.runs_dir)):
        if value is not None and defaults.get(flag) != value:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _key_values(pairs: list[str] | None) -> dict[str, Any] | None:
    """``--posthoc-option KEY=VALUE`` through the validation layer (typed against the generator later)."""
    return parse_key_values(pairs, "--posthoc-option") if pairs else None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``ct-plugin evaluate``."""
    from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs, replace_config
    from ct_plugin.evaluation.report import summary_markdown, write_evaluation
    from ct_plugin.threads import thread_scope

    check_threads(args.threads, "--threads")
    runs = load_runs(args.run_dirs)
    config = replace_config(
        ProtocolConfig(),
        protocol=args.protocol,
        main_mutability=args.main_mutability,
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
    from ct_plugin.tracking import tracking_from_args

    with tracking_from_args(args):
        # small models get one thread (the library's default), unless --threads or the user says otherwise
        with thread_scope(args.threads, runs[0].model, max(config.attack_rows, config.n_factuals or 100)):
            evaluation = evaluate_runs(runs, config)
        out = Path(args.out) if args.out else Path("evaluation") / evaluation.dataset
        files = write_evaluation(evaluation, out)
        announce_evaluation(evaluation, out, files)
    print(summary_markdown(evaluation))
    print(f"\nwrote {len(files)} files to {out} ({evaluation.seconds:.1f} s)")
    return 0


def announce_evaluation(evaluation, out: Path, files: list[Path]) -> None:
    """Call the ``ct_plugin_evaluation_end`` hook (trackers log the tables there)."""
    from ct_plugin.events import EvaluationEvent
    from ct_plugin.registry import call_lifecycle

    tables = {name: getattr(evaluation, name) for name in ("summary", "comparison", "robustness", "attribution")}
    if evaluation.row_attribution is not None:
        tables["attribution_rows"] = evaluation.row_attribution
    event = EvaluationEvent(evaluation.dataset, [Path(r.path) for r in evaluation.runs], list(evaluation.labels),
                            tables, Path(out), list(files))
    call_lifecycle("ct_plugin_evaluation_end", event)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``ct-plugin reproduce``."""
    import torch

    from ct_plugin.evaluation.reproduce import run_reproduce
    from ct_plugin.evaluation.reproduce_plan import DATASETS, SOURCES, Plan
    from ct_plugin.threads import resolve_threads

    # the work runs in worker processes of one thread each; this process only coordinates
    torch.set_num_threads(resolve_threads(args.threads))
    datasets = [d.strip() for value in args.datasets or () for d in value.split(",") if d.strip()] or list(DATASETS)
    sources = tuple(s.strip() for s in (args.settings or ",".join(SOURCES)).split(",") if s.strip())
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise CTPluginError(f"--settings takes a comma-separated subset of {', '.join(SOURCES)}, got {args.settings!r}")
    if args.seeds is not None and args.seeds < 1:
        raise CTPluginError(f"--seeds must be at least 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise CTPluginError(f"--workers must be at least 1, got {args.workers}")
    plan = Plan.for_mode(args.quick, seeds=args.seeds, sources=sources, data_style=args.data_style)
    result = run_reproduce(
        datasets, plan, Path(args.out), Path(args.runs_dir), args.data_dir, command_line(args), log=_progress,
        rounds=args.rounds, workers=args.workers, ablations=not args.no_ablations, progress=not args.quiet,
    )
    print(result["markdown"].read_text())
    return 0


def register_commands(subparsers) -> None:
    """Add the evaluation sub-commands to the ``ct-plugin`` parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    ev = subparsers.add_parser(
        "evaluate", help="evaluate trained runs against each other (CSV, Markdown, PNG)",
        description="Evaluate trained runs of one dataset with the paper's protocol (see docs/method.md).",
        epilog=EVALUATE_EPILOG, formatter_class=formatter,
    )
    ev.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories; the first is the reference")
    ev.add_argument("--protocol", choices=("paper", "strict"), default=None,
                    help="paper (default: the reference's protocol) or strict (every counterfactual counts, "
                    "paired factual rows, X+ from the training split)")
    ev.add_argument("--main-mutability", choices=("free", "spec"), default=None,
                    help="main search: free (nothing frozen; paper default) or spec (the mutability the runs "
                    "were trained with; strict default). The report lists what each search froze")
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
    ev.add_argument("--n-factuals", type=int,
                    help="factuals per round (default: paper 250 for 2-D data, 100 for tables, 25 for images)")
    ev.add_argument("--epsilons", help="comma-separated robust-accuracy grid (default 0,0.01,...,0.1)")
    ev.add_argument("--seed", type=int, help="seed of every draw (default 0)")
    ev.add_argument("--threads", type=int, help=THREADS_HELP)
    from ct_plugin.tracking import add_tracking_arguments

    add_tracking_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    rp = subparsers.add_parser(
        "reproduce", help="train baseline and CT models and rebuild the paper's results table",
        description="Train vanilla and CT MLPs on the paper's datasets, evaluate them and write results.md.",
        epilog=REPRODUCE_EPILOG, formatter_class=formatter,
    )
    rp.add_argument("--datasets", action="append", metavar="NAMES",
                    help="comma-separated subset (default: the nine of the paper)")
    rp.add_argument("--quick", action="store_true",
                    help="CI-sized run: 1 seed, 15 epochs, nce <= 300, 10 rounds, no ablations")
    rp.add_argument("--seeds", type=int, help="training seeds per model (default 3; 1 with --quick)")
    rp.add_argument("--settings", help="settings sources, comma-separated: paper (Table C.1), tune (default both)")
    rp.add_argument("--data-style", choices=("reference", "project"), default="reference",
                    help="reference: data as the reference builds it (raw synthetic sets, balanced credit tables; "
                    "default); project: the standardised synthetic sets and unbalanced tables")
    rp.add_argument("--no-ablations", action="store_true", help="skip the ablation rows")
    rp.add_argument("--data-dir", help="folder with the real tables' CSV files (else $CT_PLUGIN_DATA)")
    rp.add_argument("--out", default="reproduce-out",
                    help="output folder for results.md, figures/ and results/ (default reproduce-out, git-ignored; "
                    "`--out docs` rewrites the committed docs/results.md)")
    rp.add_argument("--runs-dir", default="runs/reproduce",
                    help="where the trained runs go (default runs/reproduce, git-ignored; complete runs are reused)")
    rp.add_argument("--rounds", type=int, help="evaluation rounds (default 100, 10 with --quick)")
    rp.add_argument("--workers", type=int,
                    help="worker processes of one torch thread each (default: the number of CPUs)")
    rp.add_argument("--threads", type=int, help=THREADS_HELP)
    rp.add_argument("--quiet", action="store_true", help="no progress bars")
    rp.set_defaults(func=cmd_reproduce)
