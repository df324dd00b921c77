"""The ``vicinal`` command line: compare, sweep, report, reproduce, list."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Sequence

EPILOG = """examples:
  vicinal compare --dataset spirals --seeds 5 --out results/spirals
  vicinal compare --dataset digits --methods erm,mixup,kmixup --set epochs=10 k=8
  vicinal sweep sweeps/spirals_eps.toml --store results/eps.sqlite --workers 2
  vicinal report results/eps.sqlite --by method,eps --metrics test_error --format markdown
  vicinal reproduce spirals-eps --quick
  vicinal list
"""


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vicinal",
        description="Locality-aware mixup experiments: Mixup, Local Mixup, k-Mixup and rescaled prediction.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compare", help="several methods x seeds on one dataset: table + figure",
                       description="Train each method on several seeds (resumable), print mean +/- 95%% CI "
                                   "and paired differences against ERM, and draw decision boundaries for 2-D data.")
    p.add_argument("--dataset", default="spirals", help="dataset name (see `vicinal list`), default spirals")
    p.add_argument("--methods", default="erm,mixup,local_mixup,kmixup", type=_split,
                   help="comma-separated methods (default erm,mixup,local_mixup,kmixup)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds per method (default 5)")
    p.add_argument("--out", default="results/compare", help="output folder (default results/compare)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override run settings, e.g. epochs=20 eps=1.5 model_params.widths=[64,64]")

    p = sub.add_parser("sweep", help="run a TOML sweep into a result store (resumable)",
                       description="Expand a sweep file (method x hyper-parameters x seeds) and run what the store "
                                   "does not hold yet. Safe to stop (Ctrl-C or kill) and re-run.")
    p.add_argument("file", nargs="?", help="sweep TOML file (optional when everything is given with --set)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="dotted overrides, e.g. seeds=10 grid.alpha=0.5,1 methods.local_mixup.eps=[1,2]")
    p.add_argument("--store", default="results/sweep.sqlite", help="SQLite result store (default results/sweep.sqlite)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (or Ray tasks)")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="local processes or a Ray cluster")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--batched", action=argparse.BooleanOptionalAction, default=None,
                   help="train compatible small models (MLP/RFF/LeNet) together as stacked ensembles, the rest one "
                        "at a time (default: on, unless --checkpoint-dir; --no-batched trains every run alone)")
    p.add_argument("--max-batch", type=int, default=100, help="members per batched ensemble (default 100)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="checkpoint every run each epoch here, so a killed sweep also resumes the runs in flight")
    p.add_argument("--dry-run", action="store_true", help="print the configs and how many are already stored")

    p = sub.add_parser("report", help="tables (mean +/- 95%% CI) and plots from a result store")
    p.add_argument("store", help="SQLite result store")
    p.add_argument("--by", type=_split, default=["method"], help="settings to group by (default method)")
    p.add_argument("--metrics", type=_split, default=["test_error", "test_nll", "test_ece"], help="metrics to summarise")
    p.add_argument("--baseline", default=None, metavar="KEY=VALUE",
                   help="paired differences against this group over shared seeds, e.g. method=erm")
    p.add_argument("--format", choices=["terminal", "markdown", "csv"], default="terminal")
    p.add_argument("--plot", default=None, metavar="PARAM",
                   help="also plot the first metric against this setting (one line per method) to --out")
    p.add_argument("--out", default=None, help="write the table (and plot) here instead of only printing")

    p = sub.add_parser("reproduce", help="reproduce a figure/table/theorem of the papers")
    p.add_argument("name", help="what to reproduce (see `vicinal list`)")
    p.add_argument("--quick", action="store_true", help="tiny version for CI: seconds, direction checks only")
    p.add_argument("--out", default="docs", help="where reproductions.md sections and figures go (default docs)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--recipe", choices=("authors", "corrected", "both"), default=None,
                   help="spirals-eps: the authors' notebook, the paper's equations, or both with the ablation "
                        "(default both)")

    sub.add_parser("list", help="datasets, models, methods and reproductions")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .sweep import SweepFailed

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SweepFailed as error:
        print(f"vicinal {args.command}: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"vicinal {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nvicinal {args.command}: interrupted; finished runs are stored, re-run to resume.", file=sys.stderr)
        return 130


def _compare(args) -> int:
    from .compare import run_compare

    result = run_compare(args.dataset, methods=args.methods, seeds=args.seeds, out=args.out,
                         overrides=args.overrides, workers=args.workers)
    print(result["summary"])
    print()
    print(result["text"])
    for name, path in result["paths"].items():
        print(f"{name}: {path}")
    return 0


def _sweep(args) -> int:
    from .config import RunConfig
    from .sweep import expand_grid, load_sweep, run_sweep, spec_from_overrides
    from .trainer import run, run_checkpointed

    spec = load_sweep(args.file, args.overrides) if args.file else spec_from_overrides(args.overrides)
    configs = [RunConfig.from_dict(c).to_dict() for c in expand_grid(spec)]  # validate all before training
    if args.dry_run:
        from .store import ResultStore, config_key
        done = ResultStore(args.store).finished_keys() if Path(args.store).exists() else set()
        for config in configs:
            print(("stored  " if config_key(config) in done else "pending ") + str(config))
        return 0
    if args.batched and args.checkpoint_dir:
        raise ValueError("--checkpoint-dir applies to one-at-a-time runs; drop it or drop --batched")
    batched = args.batched if args.batched is not None else not args.checkpoint_dir
    batch, run_fn = {}, run
    if batched:
        from .ensemble import batch_group_key, run_batch
        batch, run_fn = dict(batch_fn=run_batch, group_key=batch_group_key, max_batch=args.max_batch), None
    elif args.checkpoint_dir:
        run_fn = functools.partial(run_checkpointed, checkpoint_dir=args.checkpoint_dir)
    summary = run_sweep(configs, run_fn, store=args.store, executor=args.executor,
                        workers=args.workers, address=args.address, **batch)
    print(summary)
    return 1 if summary.failures else 0


def _report(args) -> int:
    from .config import apply_settings, used_settings
    from .report import paired_differences, summarize
    from .store import ResultStore

    if not Path(args.store).exists():
        raise FileNotFoundError(f"no result store at {args.store}; run `vicinal sweep` or `vicinal compare` first")
    with ResultStore(args.store) as store:
        rows = [dict(config=used_settings(r.config), metrics=r.metrics) for r in store.rows()]
    render = {"terminal": "to_text", "markdown": "to_markdown", "csv": "to_csv"}[args.format]
    text = getattr(summarize(rows, by=args.by, metrics=args.metrics), render)()
    if args.baseline:
        baseline = apply_settings({}, [args.baseline])  # "method=erm" -> {"method": "erm"}
        key = next(iter(baseline))
        diffs = paired_differences(rows, baseline=baseline, compare=(key,),
                                   by=[b for b in args.by if b != key], metrics=args.metrics)
        text += "\n\n" + getattr(diffs, render)()
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        suffix = {"terminal": "txt", "markdown": "md", "csv": "csv"}[args.format]
        (out / f"report.{suffix}").write_text(text + "\n")
        if args.plot:
            print(f"figure: {_plot_by_param(rows, args.plot, args.metrics[0], out)}")
    return 0


def _plot_by_param(rows, param: str, metric: str, out: Path) -> Path:
    """The first metric against one setting (Local Mixup Fig. 3 style): methods that sweep it are lines,
    the others (e.g. ERM, Mixup) horizontal references; seeds give the 95% CI bands."""
    import numpy as np

    from .plots import plot_metric_vs_param

    swept: dict[str, dict] = {}
    references: dict[str, list] = {}
    for row in rows:
        config, metrics = row["config"], row["metrics"]
        if metric not in metrics:
            continue
        if param in config:
            swept.setdefault(config["method"], {}).setdefault(config[param], {})[config["seed"]] = metrics[metric]
        else:
            references.setdefault(config["method"], []).append(metrics[metric])
    if not swept:
        raise ValueError(f"no run sets {param!r} and reports {metric!r}; nothing to plot")
    values = sorted({v for cells in swept.values() for v in cells})
    samples = {}
    for method, cells in swept.items():
        if set(cells) != set(values):
            raise ValueError(f"method {method!r} was not run at every {param} value {values}")
        seeds = sorted(set.intersection(*(set(c) for c in cells.values())))
        samples[method] = np.array([[cells[v][s] for v in values] for s in seeds])
    path = out / f"{metric}_vs_{param}.png"
    plot_metric_vs_param(values, samples, path, param_name=param, metric_name=metric, references=references or None)
    return path


def _reproduce(args) -> int:
    from .reproduce import run_reproduction

    print(run_reproduction(args.name, quick=args.quick, out=args.out, workers=args.workers, recipe=args.recipe))
    return 0


def _list(args) -> int:
    from .config import METHODS
    from .datasets import available_datasets
    from .models import available_models
    from .reproduce import REPRODUCTIONS

    print("datasets:     " + ", ".join(available_datasets()))
    print("models:       " + ", ".join(available_models()))
    print("methods:      " + ", ".join(METHODS))
    print("reproductions:" + "".join(f"\n  {name:18s} {desc}" for name, (desc, _) in REPRODUCTIONS.items()))
    return 0


COMMANDS = {"compare": _compare, "sweep": _sweep, "report": _report, "reproduce": _reproduce, "list": _list}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
