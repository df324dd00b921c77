"""``vicinal report``: a result store, opened read-only, as tables, paired differences, notes and a plot.

An integration with no paper of its own: it arranges :mod:`vicinal.lab.report` (Student-t intervals,
paired differences) and :mod:`vicinal.lab.plots` (Local Mixup Fig. 3 style) for the command line, and
says in words what a table cannot (which settings the pairing used, when Carratino et al. 2020's
rescaled prediction, eq. 22, is outside its assumptions or hurts).
"""

from __future__ import annotations

from pathlib import Path
from .config import apply_settings, used_settings
from .report import paired_differences, summarize
from .store import ResultStore
from .suggest import did_you_mean

DEFAULT_METRICS = ("test_error", "test_nll", "test_ece")
_RENDER = {"terminal": "to_text", "markdown": "to_markdown", "csv": "to_csv"}
_SUFFIX = {"terminal": "txt", "markdown": "md", "csv": "csv"}


def run_report(args) -> int:
    """The ``vicinal report`` command (arguments of :func:`vicinal.lab.cli.build_parser`)."""
    if args.plot and not args.out:
        raise ValueError(f"--plot {args.plot} needs --out DIR: the folder where the figure (and the table) go")
    with ResultStore(args.store, read_only=True) as store:
        rows = [dict(config=used_settings(r.config), metrics=r.metrics) for r in store.rows()]
    if not rows:
        raise ValueError(f"result store {args.store!r} holds no runs yet")
    if args.metrics is None:
        stored = set().union(*(r["metrics"] for r in rows))
        args.metrics = [m for m in DEFAULT_METRICS if m in stored] or list(DEFAULT_METRICS)
    _check_names(rows, args.by, args.metrics)
    render = _RENDER[args.format]
    text = getattr(summarize(rows, by=args.by, metrics=args.metrics), render)()
    if args.baseline:
        text += "\n\n" + baseline_section(rows, args.baseline, args.by, args.metrics, render)
    if any(m.startswith("rescaled_") for m in args.metrics):
        text += "".join(f"\nnote: {line}" for line in rescaled_notes(rows))
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table = out / f"report.{_SUFFIX[args.format]}"
        table.write_text(text + "\n")
        print(f"table: {table}")
        if args.plot:
            print(f"figure: {plot_by_param(rows, args.plot, args.metrics[0], out)}")
    return 0


def _check_names(rows: list[dict], by: list[str], metrics: list[str]) -> None:
    """Misspelt --by / --metrics names get a did-you-mean before any table is built."""
    settings = set().union(*(r["config"] for r in rows))
    names = set().union(*(r["metrics"] for r in rows))
    for key in by:
        if key not in settings:
            raise ValueError(f"--by {key!r} is no setting of the stored runs{did_you_mean(key, settings)}; "
                             f"settings: {', '.join(sorted(settings))}")
    for metric in metrics:
        name = metric.split("[")[0]
        if name not in names:
            raise ValueError(f"--metrics {metric!r} is not stored{did_you_mean(name, names)}; "
                             f"metrics: {', '.join(sorted(names))}")


def baseline_section(rows: list[dict], baseline_text: str, by: list[str], metrics: list[str], render: str) -> str:
    """Paired differences against ``--baseline KEY=VALUE``, paired on the ``by`` settings the baseline runs have.

    A setting the baseline does not use (ERM has no ``eps``) cannot be matched: every value of it is
    compared with the same baseline run of each seed, and the text says so.
    """
    baseline = apply_settings({}, [baseline_text])  # "method=erm" -> {"method": "erm"}
    if len(baseline) != 1 or isinstance(next(iter(baseline.values())), dict):
        raise ValueError(f"--baseline expects one KEY=VALUE such as method=erm, got {baseline_text!r}")
    key, value = next(iter(baseline.items()))
    base_rows = [r for r in rows if r["config"].get(key) == value]
    if not base_rows:
        values = sorted({str(r["config"].get(key)) for r in rows})
        raise ValueError(f"--baseline {baseline_text}: no stored run has {key}={value!r}"
                         f"{did_you_mean(str(value), values)}; {key} values: {', '.join(values)}")
    others = [b for b in by if b != key]
    pair_on = [b for b in others if all(b in r["config"] for r in base_rows)]
    loose = [b for b in others if b not in pair_on]
    diffs = paired_differences(rows, baseline=baseline, compare=(key, *loose), by=pair_on, metrics=metrics)
    note = f"paired on seed{''.join(', ' + b for b in pair_on)}"
    if loose:
        note += (f"; {key}={value} runs have no {', '.join(loose)}, so every {'/'.join(loose)} value is "
                 f"compared with the same {key}={value} run of each seed")
    return getattr(diffs, render)() + f"\n({note})"


#: Why eq. 22 (derived for Mixup: random pairs, every pair weighted 1) does not cover a method's training.
_OUTSIDE_EQ22 = {
    "local_mixup": "Local Mixup weights pairs by locality (and weighted sampling draws partners from the graph)",
    "kmixup": "k-Mixup pairs by optimal transport (k > 1), not at random",
    "erm": "ERM has no mixup shrinkage to undo (the paper's control)",
}


def rescaled_notes(rows: list[dict]) -> list[str]:
    """Caveats for the rescaled rows (Carratino et al. 2020, eq. 22): where its assumptions do not hold, and
    where rescaling raised a method's mean test error."""
    notes = []
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        if "rescaled_test_error" in row["metrics"] and "test_error" in row["metrics"]:
            by_method.setdefault(row["config"].get("method"), []).append(row)
    for method, group in sorted(by_method.items(), key=lambda item: str(item[0])):
        reason = _OUTSIDE_EQ22.get(method)
        if method == "kmixup" and all(r["config"].get("k") == 1 for r in group):
            reason = None  # k = 1 is Mixup
        if reason:
            notes.append(f"rescaled {method}: eq. 22 is derived for Mixup's random, unweighted pairs; {reason}")
        plain = sum(r["metrics"]["test_error"] for r in group) / len(group)
        rescaled = sum(r["metrics"]["rescaled_test_error"] for r in group) / len(group)
        if rescaled > plain:
            notes.append(f"rescaled {method}: rescaling raised the mean test error from {plain:.4g} to "
                         f"{rescaled:.4g} over {len(group)} runs; prefer the plain predictions")
    return notes


def plot_by_param(rows: list[dict], param: str, metric: str, out: Path) -> Path:
    """The metric against one setting (Local Mixup Fig. 3 style), seeds giving 95% CI bands.

    One line per method and per value of every other setting that varies between the runs (two eps of
    Local Mixup are two lines when plotting against alpha, never pooled); runs without ``param``
    (ERM, Mixup against eps) are horizontal references.
    """
    import numpy as np

    from .plots import plot_metric_vs_param

    usable = [r for r in rows if metric in r["metrics"]]
    varying = _varying_settings([r["config"] for r in usable], exclude={param, "seed", "method"})
    swept: dict[str, dict] = {}
    references: dict[str, list] = {}
    for row in usable:
        config, value = row["config"], row["metrics"][metric]
        label = ", ".join([str(config.get("method"))] + [f"{k}={config[k]}" for k in varying if k in config])
        if param in config:
            cell = swept.setdefault(label, {}).setdefault(config[param], {})
            if config["seed"] in cell:
                raise ValueError(f"two runs of line {label!r} share {param}={config[param]} and seed "
                                 f"{config['seed']}; they differ in a list or table setting that cannot label a line")
            cell[config["seed"]] = value
        else:
            references.setdefault(label, []).append(value)
    if not swept:
        raise ValueError(f"no run sets {param!r} and reports {metric!r}; nothing to plot")
    values = sorted({v for cells in swept.values() for v in cells})
    samples = {}
    for label, cells in swept.items():
        if set(cells) != set(values):
            raise ValueError(f"line {label!r} was not run at every {param} value {values}")
        seeds = sorted(set.intersection(*(set(c) for c in cells.values())))
        samples[label] = np.array([[cells[v][s] for v in values] for s in seeds])
    path = out / f"{metric}_vs_{param}.png"
    plot_metric_vs_param(values, samples, path, param_name=param, metric_name=metric.replace("_", " "),
                         references=references or None)
    return path


def _varying_settings(configs: list[dict], exclude: set[str]) -> list[str]:
    """Scalar settings with more than one value among ``configs`` (sorted), apart from ``exclude``."""
    seen: dict[str, set] = {}
    for config in configs:
        for key, value in config.items():
            if key not in exclude and isinstance(value, (str, int, float, bool)):
                seen.setdefault(key, set()).add(value)
    return sorted(key for key, values in seen.items() if len(values) > 1)
