"""``ct-plugin evaluate``: trained runs against each other under the paper's (or the strict) protocol."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ct_plugin.atomic import claim_folder, safe_name
from ct_plugin.cli.common import THREADS_HELP, add_device_argument, floats, key_values
from ct_plugin.plugins.events import EvaluationEvent
from ct_plugin.plugins.registry import call_lifecycle
from ct_plugin.settings.coerce import check_threads
from ct_plugin.threads import thread_scope
from ct_plugin.tracking import add_tracking_arguments, tracking_from_args

COMMANDS = ("evaluate",)

EVALUATE_EPILOG = """\
examples:
  ct-plugin evaluate runs/circles/baseline runs/circles/ct --out results/circles
  ct-plugin evaluate runs/adult/baseline runs/adult/ct --rounds 20 --lambda-energy 1,5

The first run is the reference every other run is compared with. Writes rounds.csv,
summary.csv, comparison.csv, robustness.csv, attribution.csv, evaluation.md and PNG figures.
"""


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``ct-plugin evaluate``."""
    # torch and pandas: imported when the command runs, not for --help
    from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs, replace_config
    from ct_plugin.evaluation.report import summary_markdown, write_evaluation
    from ct_plugin.torch_utils import resolve_device

    check_threads(args.threads, "--threads")
    device = resolve_device(args.device)
    runs = load_runs(args.run_dirs)
    config = replace_config(
        ProtocolConfig(),
        protocol=args.protocol,
        main_mutability=args.main_mutability,
        generator=args.posthoc,
        generator_options=(key_values(args.posthoc_option, "--posthoc-option") if args.posthoc_option else None),
        lambda_energies=floats(args.lambda_energy),
        tau=args.tau,
        max_steps=args.max_steps,
        cost_tau=args.cost_tau,
        rounds=args.rounds,
        n_factuals=args.n_factuals,
        epsilons=floats(args.epsilons),
        seed=args.seed,
    )
    # the default folder's name comes from the runs' files: only a harmless name is used
    out = Path(args.out) if args.out else Path("runs") / "evaluation" / safe_name(runs[0].spec.name, "dataset")
    claim_folder(out, ("evaluation.md", "summary.csv"), args.overwrite, "evaluation")
    with tracking_from_args(args):
        # small models get one thread (the library's default), unless --threads or the user says otherwise
        with thread_scope(args.threads, runs[0].model, max(config.attack_rows, config.n_factuals or 100)):
            evaluation = evaluate_runs(runs, config, device=device)
        files = write_evaluation(evaluation, out)
        announce_evaluation(evaluation, out, files)
    print(summary_markdown(evaluation))
    print(f"\nwrote {len(files)} files to {out} ({evaluation.seconds:.1f} s)")
    return 0


def announce_evaluation(evaluation: Any, out: Path, files: list[Path]) -> None:
    """Call the ``ct_plugin_evaluation_end`` hook (trackers log the tables there)."""
    tables = {name: getattr(evaluation, name) for name in ("summary", "comparison", "robustness", "attribution")}
    if evaluation.row_attribution is not None:
        tables["attribution_rows"] = evaluation.row_attribution
    event = EvaluationEvent(evaluation.dataset, [Path(r.path) for r in evaluation.runs], list(evaluation.labels),
                            tables, Path(out), list(files))
    call_lifecycle("ct_plugin_evaluation_end", event)


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``evaluate`` sub-command."""
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
                    help="option of the post-hoc generator, merged over the protocol's own (paper, with eccco "
                    "or generic: preset=reference, lambda_cost=0), a given key winning; e.g. step_size=0.05 "
                    "(repeatable)")
    ev.add_argument("--out", help="output folder (default runs/evaluation/<dataset>); an existing one is reused only "
                    "when it holds a previous evaluation")
    ev.add_argument("--overwrite", action="store_true",
                    help="write into an existing --out that holds other files (none of them is removed)")
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
    add_device_argument(ev, "the runs' models are moved there")
    add_tracking_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)
