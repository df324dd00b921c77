"""The ``vicinal`` command line: compare, sweep, report, reproduce, list."""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import tempfile
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


def _positive_int(text: str) -> int:
    """argparse type: refuses 0, negatives and non-integers before anything runs (``--seeds 0``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1 or more), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vicinal",
        description="Locality-aware mixup experiments: Mixup, Local Mixup, k-Mixup and rescaled prediction.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from vicinal import __version__  # the library alone: works without the lab extra

    parser.add_argument("--version", action="version", version=f"vicinal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compare", help="several methods x seeds on one dataset: table + figure",
                       description="Train each method on several seeds (resumable), print mean +/- 95% CI "
                                   "and paired differences against ERM, and draw decision boundaries for 2-D data.")
    p.add_argument("--dataset", default="spirals", help="dataset name (see `vicinal list`), default spirals")
    p.add_argument("--methods", default="erm,mixup,local_mixup,kmixup", type=_split,
                   help="comma-separated methods (default erm,mixup,local_mixup,kmixup)")
    p.add_argument("--seeds", type=_positive_int, default=5, help="number of seeds per method (default 5)")
    p.add_argument("--out", default="results/compare", help="output folder (default results/compare)")
    p.add_argument("--workers", type=_positive_int, default=2, help="parallel processes (default 2)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override run settings, e.g. epochs=20 eps=1.5 model_params.widths=[64,64] "
                        "dataset_params.root=/data/cifar (bare text and paths need no quotes)")

    p = sub.add_parser("sweep", help="run a TOML sweep into a result store (resumable)",
                       description="Expand a sweep file (method x hyper-parameters x seeds) and run what the store "
                                   "does not hold yet. Safe to stop (Ctrl-C or kill) and re-run.")
    p.add_argument("file", nargs="?", help="sweep TOML file (optional when everything is given with --set)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="run settings (epochs=20, as for compare) or dotted sweep keys, e.g. seeds=10 "
                        "grid.alpha=0.5,1 methods.local_mixup.eps=[1,2]")
    p.add_argument("--store", default="results/sweep.sqlite", help="SQLite result store (default results/sweep.sqlite)")
    p.add_argument("--workers", type=_positive_int, default=None, help="parallel processes (or Ray tasks)")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="local processes or a Ray cluster")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--batched", action=argparse.BooleanOptionalAction, default=None,
                   help="train compatible small models (MLP/RFF/LeNet) together as stacked ensembles, the rest one "
                        "at a time (default: on, unless --checkpoint-dir; --no-batched trains every run alone)")
    p.add_argument("--max-batch", type=_positive_int, default=100, help="members per batched ensemble (default 100)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="checkpoint every run each epoch here, so a killed sweep also resumes the runs in flight")
    p.add_argument("--dry-run", action="store_true", help="print the configs and how many are already stored")

    p = sub.add_parser("report", help="tables (mean +/- 95%% CI) and plots from a result store",
                       description="Tables (mean +/- 95% CI over seeds) and plots from a result store, opened "
                                   "read-only (a store on a read-only disk can be reported on).")
    p.add_argument("store", help="SQLite result store")
    p.add_argument("--by", type=_split, default=["method"], help="settings to group by (default method)")
    p.add_argument("--metrics", type=_split, default=None,
                   help="metrics to summarise (default: those of test_error, test_nll, test_ece the store holds)")
    p.add_argument("--baseline", default=None, metavar="KEY=VALUE",
                   help="paired differences against this group over shared seeds, e.g. method=erm; pairs on "
                        "the --by settings the baseline runs have (ERM has no eps: every eps meets the same ERM run)")
    p.add_argument("--format", choices=["terminal", "markdown", "csv"], default="terminal")
    p.add_argument("--plot", default=None, metavar="PARAM",
                   help="also plot the first metric against this setting (one line per method and other "
                        "setting) into --out, which it needs")
    p.add_argument("--out", default=None, help="also write the table (and the plot) into this folder")

    p = sub.add_parser("reproduce", help="reproduce a figure/table/theorem of the papers")
    p.add_argument("name", help="what to reproduce (see `vicinal list`)")
    p.add_argument("--quick", action="store_true", help="tiny version for CI: seconds, direction checks only")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where reproductions.md, its sections and figures go (results/ goes beside it); default: "
                        "the checkout's docs/ when run from the vicinal repository, else required")
    p.add_argument("--workers", type=_positive_int, default=2, help="parallel processes (default 2)")
    p.add_argument("--recipe", choices=("authors", "corrected", "both"), default=None,
                   help="spirals-eps: the authors' notebook, the paper's equations, or both with the ablation "
                        "(default both)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="image-benchmark recipes (recipes/*.toml): the directory holding the recipe's dataset")
    p.add_argument("--device", default=None, help="image-benchmark recipes: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--seeds", type=_positive_int, default=None, help="image-benchmark recipes: seeds per cell "
                                                                     "(default: the paper's); a summary recipe reads "
                                                                     "runs made with the same --seeds / --epochs")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="image-benchmark recipes: epochs (default: the paper's; lr milestones scale with it)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="image-benchmark recipes: checkpoint every run each epoch here (a killed run resumes)")

    sub.add_parser("list", help="datasets (with their parameters), models, methods and reproductions")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args) -> int:
    from . import missing_extra_message

    try:
        return COMMANDS[args.command](args)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise
        print(f"vicinal {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nvicinal {args.command}: interrupted; finished runs are stored, re-run to resume.", file=sys.stderr)
        return 130
    except Exception as error:
        if type(error).__name__ == "SweepFailed":  # not imported here: that import needs the lab extra
            print(f"vicinal {args.command}: {error}", file=sys.stderr)
            return 1
        if isinstance(error, (ValueError, TypeError, FileNotFoundError, ConnectionError)):
            print(f"vicinal {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise


def _stop_on_sigterm():
    """SIGTERM stops a command as Ctrl-C does: worker processes are terminated and finished runs stay stored."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


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
    from .config import canonical_config
    from .sweep import expand_grid, load_sweep, run_sweep, spec_from_overrides
    from .trainer import run, run_checkpointed

    source = args.file or "--set"
    spec = load_sweep(args.file, args.overrides) if args.file else spec_from_overrides(args.overrides)
    try:  # validate every config before anything trains
        configs = [canonical_config(c) for c in expand_grid(spec)]
    except (ValueError, TypeError) as error:
        raise type(error)(f"{source}: {error}") from None
    if args.dry_run:
        from .store import ResultStore, config_key
        done = ResultStore(args.store, read_only=True).finished_keys() if Path(args.store).exists() else set()
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
        run_fn = functools.partial(run_checkpointed, checkpoint_dir=str(_checkpoint_dir(args.checkpoint_dir)))
    summary = run_sweep(configs, run_fn, store=args.store, executor=args.executor, workers=args.workers,
                        address=args.address, canonical=canonical_config, **batch)
    print(summary)
    return 1 if summary.failures else 0


def _checkpoint_dir(path: str) -> Path:
    """``--checkpoint-dir`` as a writable directory, checked before any run starts."""
    directory = Path(path).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--checkpoint-dir {str(directory)!r} is a file; expected a directory for the checkpoints "
                         f"(e.g. {str(directory.with_suffix(''))!r}-checkpoints)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".vicinal-probe-"):
            pass
    except OSError as error:
        raise ValueError(f"--checkpoint-dir {str(directory)!r} is not a writable directory "
                         f"({type(error).__name__}: {error})") from None
    return directory


def _report(args) -> int:
    from .report_command import run_report

    return run_report(args)


def _reproduce(args) -> int:
    from .reproduce import run_reproduction

    out = Path(args.out) if args.out is not None else _checkout_docs()
    checkpoint_dir = None if args.checkpoint_dir is None else str(_checkpoint_dir(args.checkpoint_dir))
    print(run_reproduction(args.name, quick=args.quick, out=out, workers=args.workers, recipe=args.recipe,
                           data_dir=args.data_dir, device=args.device, seeds=args.seeds, epochs=args.epochs,
                           checkpoint_dir=checkpoint_dir))
    return 0


def _checkout_docs() -> Path:
    """The default of ``reproduce --out``: ``docs/`` of the vicinal checkout this command runs from.

    Anywhere else the reproductions would scatter ``docs/`` and ``results/`` into an unrelated folder,
    so ``--out`` is required there.
    """
    here = Path.cwd()
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and 'name = "vicinal"' in pyproject.read_text() and (here / "docs").is_dir():
        return here / "docs"
    raise ValueError(f"{str(here)!r} is not a vicinal checkout; give --out DIR for reproductions.md, its sections "
                     f"and figures (the training results go to DIR/../results)")


def _list(args) -> int:
    import inspect

    from .config import METHODS
    from .datasets import available_datasets, dataset_parameters
    from .models import available_models, model_parameters
    from .reproduce import REPRODUCTIONS

    def params(accepted: dict) -> str:
        shown = [f"{k}=<required>" if d is inspect.Parameter.empty else f"{k}={d!r}" for k, d in accepted.items()]
        return ", ".join(shown) or "-"

    print("datasets (parameters: --set dataset_params.NAME=VALUE; <required> must be given):")
    print("".join(f"  {name:14s} {params(dataset_parameters(name))}\n" for name in available_datasets()), end="")
    print("models (parameters: --set model_params.NAME=VALUE):")
    print("".join(f"  {name:16s} {params(model_parameters(name))}\n" for name in available_models()), end="")
    print("methods:      " + ", ".join(METHODS))
    print("reproductions:" + "".join(f"\n  {name:18s} {desc}" for name, (desc, _) in REPRODUCTIONS.items()))
    from .recipes import available_recipes, load_recipe, load_summary
    print("image-benchmark recipes (vicinal reproduce NAME --data-dir DIR):"
          + "".join(f"\n  {name:34s} {load_recipe(name).title}" for name in available_recipes()))
    print("summaries of recipes (vicinal reproduce NAME: trains nothing, reads the recipes' stored runs):"
          + "".join(f"\n  {name:34s} {load_summary(name).title}" for name in available_recipes(summaries=True)))
    return 0


COMMANDS = {"compare": _compare, "sweep": _sweep, "report": _report, "reproduce": _reproduce, "list": _list}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
