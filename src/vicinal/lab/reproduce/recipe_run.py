"""``vicinal reproduce <recipe> --data-dir DIR``: one published image-benchmark table from its recipe.

Runs every cell x seed of a :mod:`vicinal.lab.recipes` recipe through the resumable result store
(one run at a time: the device loop and the BatchNorm networks train alone; with a checkpoint
directory each run also resumes from its last finished epoch), then writes a section with the
measured table beside the paper's numbers and a verdict by :func:`base.judge`: each claim
compares the best cell of two rows, paired over seeds. Integration of the papers' protocols with
the lab (no equation of its own).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..datasets import load_dataset
from ..config import RunConfig
from ..recipes import Claim, Recipe
from ..run_metrics import run_metric_names
from ..suggest import did_you_mean
from ..sweep import run_sweep
from ..trainer import run, run_checkpointed
from .base import Context, Section, judge, markdown_table, paired_below, paired_ci
from .runs import calibrated_alphas, cell

#: File beside a recipe's store recording the calibrated alpha_k of each data root (:func:`record_alphas`).
ALPHA_RECORD = "alpha_k.json"


def load_recipe_data(recipe: Recipe, data_dir) -> object:
    """The recipe's dataset from ``data_dir``, or a FileNotFoundError naming the parameter and the files."""
    params = {**recipe.run.get("dataset_params", {}), "root": str(data_dir)}
    try:
        return load_dataset(recipe.dataset, seed=0, **params)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"recipe {recipe.name!r} reads dataset {recipe.dataset!r} from --data-dir "
                                f"(its dataset_params.root = {str(data_dir)!r}): {error}") from None


def run_recipe(ctx: Context, recipe: Recipe, data_dir, *, device: str | None = None, seeds: int | None = None,
               epochs: int | None = None, checkpoint_dir: str | None = None) -> Section:
    """Train (or resume) every run of ``recipe`` on the data in ``data_dir`` and report it.

    Parameters
    ----------
    ctx : Context
        Where the store and sections go; ``ctx.quick`` selects the recipe's ``[quick]`` version.
    recipe : Recipe
        From :func:`vicinal.lab.recipes.load_recipe`.
    data_dir : path
        The dataset's local directory (its ``root`` parameter).
    device, seeds, epochs : optional
        Overrides of the recipe (``--device``, ``--seeds``, ``--epochs``; milestones scale with epochs).
    checkpoint_dir : str, optional
        Checkpoint every run each epoch there (``trainer.run_checkpointed``).

    Returns
    -------
    Section
    """
    version = recipe.quick_version() if ctx.quick else recipe
    if not ctx.quick and recipe.claims and (seeds if seeds is not None else recipe.seeds) < 2:
        raise ValueError(f"recipe {recipe.name!r}: seeds={seeds if seeds is not None else recipe.seeds} cannot decide its claims (each is a paired 95% CI "
                         f"over seeds); use --seeds 2 or more, or --quick for a one-seed check of the path")
    data = load_recipe_data(version, data_dir)
    check_stored_metrics(recipe, classification=data.num_classes is not None)  # before any training
    alphas = None
    if any(row.calibrate_alpha for row in version.rows):
        pairs = {(s["k"], s["alpha"]) for row, _, s in version.cells() if row.calibrate_alpha}
        calib = calibrated_alphas(data.x_train, sorted({k for k, _ in pairs}), sorted({a for _, a in pairs}),
                                  n_trials=version.alpha_trials)
        alphas = {key: round(calib[key].alpha_k, 6) for key in pairs}
    root = str(Path(data_dir).expanduser().resolve())
    if alphas is not None:
        record_alphas(ctx.store_path, root, alphas)
    runs = version.configs(root, seeds=seeds, epochs=epochs, device=device, alphas=alphas)
    run_fn = run if checkpoint_dir is None else functools.partial(run_checkpointed, checkpoint_dir=str(checkpoint_dir))
    run_sweep([config for _, _, config in runs], run_fn, store=ctx.store_path, workers=1, progress=not ctx.quick)
    from ..store import ResultStore, config_key

    with ResultStore(ctx.store_path) as store:
        stored = {row.key: row.metrics for row in store.rows()}
    values: dict[str, dict[str, list[float]]] = {column.label: {} for column in version.table_columns()}
    for name, seed, config in runs:
        metrics = stored[config_key(config)]
        if metrics.get("diverged"):  # stored without test metrics (trainer.diverged_metrics): no number to show
            raise ValueError(f"recipe {recipe.name!r}: the run of cell {name!r}, seed {seed} diverged at epoch "
                             f"{metrics.get('diverged_epoch')} (its training loss or test outputs became NaN / Inf; "
                             f"stored as diverged, with no test metrics), so the table has no number for that cell. "
                             f"Lower the lr of the recipe (a copy of it), or check the data in {str(data_dir)!r}")
        for column in version.table_columns():
            if column.metric not in metrics:
                raise ValueError(f"recipe {recipe.name!r}: column {column.label!r} reads metric {column.metric!r}, "
                                 f"which run {name!r} did not store; stored metrics: {sorted(metrics)}")
            values[column.label].setdefault(name, []).append(metrics[column.metric])
    section = _section(ctx, recipe, version, values, alphas, data_dir, device, epochs)
    if version.histogram:
        section.figures.append(histogram_figure(ctx, version, [(name, stored[config_key(config)])
                                                               for name, _, config in runs]))
    return section


def check_stored_metrics(recipe: Recipe, *, classification: bool) -> None:
    """Refuse a recipe whose columns or histogram read a metric its runs will not store, before they train.

    Checked for the full recipe and its ``[quick]`` version alike (a quick check of the path also finds a
    mistake of the full table). Raises ValueError naming the file, the key, the metric, the cell whose runs
    lack it, what they store and the fix. Integration step, no paper.
    """
    reads = [(f"columns.{c.label!r}" if recipe.named_columns else "metric", c.metric) for c in recipe.table_columns()]
    if recipe.histogram:
        reads.append(("histogram", recipe.histogram))
    for version in (recipe, recipe.quick_version()):
        for name, _, config in version.configs("/data", seeds=1):
            stored = run_metric_names(RunConfig.from_dict(config), classification=classification)
            for key, metric in reads:
                if metric not in stored:
                    where = "" if version is recipe else " (its [quick] version)"
                    raise ValueError(
                        f"{recipe.path}: {key} reads metric {metric!r}, which the runs of cell {name!r}{where} do "
                        f"not store{did_you_mean(metric, sorted(stored))}; they store: {', '.join(sorted(stored))}. "
                        f"Fix the metric name, or add the [run] setting that stores it (noise_stds for "
                        f"noise_error@STD, fgsm_eps for fgsm_error@EPS, eval_rescaled = true for rescaled_*, "
                        f"eval_corrupted for corrupted_*)")


def histogram_figure(ctx: Context, recipe: Recipe, runs: list[tuple[str, dict]]) -> Path:
    """The recipe's ``histogram`` metric per cell, counts summed over its seeds (Carratino et al. Fig. 7).

    ``runs``: (cell name, stored metrics) of every run. Raises ValueError naming the run whose metrics lack it.
    """
    from ..plots import plot_confidence_histograms

    totals: dict[str, np.ndarray] = {}
    for name, metrics in runs:
        if recipe.histogram not in metrics:
            raise ValueError(f"recipe {recipe.name!r}: histogram reads metric {recipe.histogram!r}, which run {name!r} "
                             f"did not store; stored metrics: {sorted(metrics)}")
        totals[name] = totals.get(name, 0) + np.asarray(metrics[recipe.histogram], dtype=float)
    path = ctx.figure(f"{recipe.name}-histograms.png")
    plot_confidence_histograms(totals, path, title=f"{recipe.title.split(':')[0]}: {recipe.histogram}, all seeds")
    return path


def record_alphas(store_path, root: str, alphas: dict) -> None:
    """Keep the alpha_k (k-Mixup Algorithm 1) the runs of data root ``root`` use in ``alpha_k.json`` beside the store.

    A stored config holds alpha_k, not the grid alpha it was calibrated from; with this record a summary
    (:mod:`.recipe_summary`) rebuilds the configs of calibrated rows without the data. The calibration is
    seeded, so rerunning the recipe rewrites the same numbers.
    """
    path = Path(store_path).parent / ALPHA_RECORD
    record = _read_alpha_record(path) if path.is_file() else {}
    record[root] = [[k, alpha, alpha_k] for (k, alpha), alpha_k in sorted(alphas.items())]
    path.write_text(json.dumps(record, indent=1) + "\n")


def recorded_alphas(store_path, root: str) -> dict | None:
    """``{(k, alpha): alpha_k}`` recorded by :func:`record_alphas` for ``root``, or None when there is none."""
    path = Path(store_path).parent / ALPHA_RECORD
    entries = _read_alpha_record(path).get(root) if path.is_file() else None
    return None if entries is None else {(int(k), float(alpha)): float(alpha_k) for k, alpha, alpha_k in entries}


def _read_alpha_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a valid alpha_k record ({error}); delete it and rerun the recipe "
                         f"(`vicinal reproduce <recipe> --data-dir DIR` finds its stored runs and rewrites it)") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} must map data roots to [k, alpha, alpha_k] lists, got {type(record).__name__}; "
                         f"delete it and rerun the recipe to rewrite it")
    return record


def claim_checks(recipe: Recipe, claim: Claim, values: dict) -> list[dict]:
    """Every comparison a claim makes: for each column pair and ``each`` group, the best cell of each side.

    Returns dicts with the group, the columns, both best cells, the paired difference (mean, 95% half-width)
    and whether the claim's relation holds: the CI below 0 (:func:`base.paired_below`), or for "not_above"
    not entirely above 0. False with one seed, which decides nothing.
    """
    better, worse = recipe.select(claim.better), recipe.select(claim.worse)
    out = []
    for better_column, worse_column in claim.column_pairs:
        groups = sorted({tuple(axes[a] for a in claim.each) for _, axes in better})
        for group in groups:
            fixed = dict(zip(claim.each, group))

            def best(cells, column):
                chosen = [name for name, axes in cells
                          if all(axes.get(a, value) == value for a, value in fixed.items())]
                return min(chosen, key=lambda name: float(np.mean(values[column][name])))

            b, w = best(better, better_column), best(worse, worse_column)
            a_values, b_values = values[better_column][b], values[worse_column][w]
            mean, half = paired_ci(a_values, b_values) if len(a_values) > 1 else (a_values[0] - b_values[0], np.nan)
            holds = (paired_below(a_values, b_values) if claim.relation == "below"
                     else not paired_below(b_values, a_values))
            out.append({"group": fixed, "columns": (better_column, worse_column), "better": b, "worse": w,
                        "relation": claim.relation, "difference": (mean, half), "holds": len(a_values) > 1 and holds})
    return out


def claim_name(claim: Claim, single: dict | None = None) -> str:
    """A claim in words; ``single``: its one comparison (column pair and group), whose best cells it then names."""
    relation = _RELATION_WORDS[claim.relation]
    if single is not None and single["columns"][0] == single["columns"][1]:
        name = f"best {claim.better} ({single['better']}) {relation} best {claim.worse} ({single['worse']})"
    else:
        name = f"best {claim.better} {relation} best {claim.worse}"
    pairs = claim.column_pairs
    if len(pairs) == 1 and pairs[0][0] != pairs[0][1]:
        name += f" ({pairs[0][0]} against {pairs[0][1]})"
    elif len(pairs) > 1 or claim.each:
        name += " at " + ", ".join(b for b, _ in pairs)
    if claim.each:
        name += f", for each {', '.join(claim.each)}"
    return name


def _section(ctx, recipe, version, values, alphas, data_dir, device, epochs) -> Section:
    columns = version.table_columns()
    rows = []
    for row, name, settings in version.cells():
        alpha_k = (f" (alpha_k {alphas[settings['k'], settings['alpha']]:g})"
                   if row.calibrate_alpha and alphas else "")
        line = [name + alpha_k]
        for column in columns:
            paper = recipe.paper_value(name, column)
            line += [cell(values[column.label][name], scale=100.0 if column.percent else 1.0),
                     "—" if paper is None else f"{paper:.2f}"]
        rows.append(line)
    if recipe.named_columns and not recipe.paper:  # a figure: no printed numbers to put beside ours
        rows = [line[:1] + line[1::2] for line in rows]
        header = ["cell"] + [f"{c.label}{' %' if c.percent else ''}" for c in columns]
        body = markdown_table(header, rows) + "\n\nmean ± 95% CI over seeds; the paper prints no numbers for it"
    elif recipe.named_columns:
        header = ["cell"] + [f"{side} {c.label}{' %' if c.percent else ''}" for c in columns for side in ("ours", "paper")]
        body = markdown_table(header, rows) + "\n\nours: mean ± 95% CI over seeds; paper: the published number"
    else:
        body = markdown_table(["cell", f"ours: {version.metric} % (mean ± 95% CI)", "paper %"], rows)
    if ctx.quick:  # the quick grid may lack the cells a claim names; one seed decides nothing anyway
        verdict, reason = "not assessed (quick run)", "one epoch of a tiny model on one seed checks the path only"
    else:
        checks, detail = {}, []
        for claim in recipe.claims:
            found = claim_checks(version, claim, values)
            name = claim_name(claim, found[0] if len(found) == 1 else None)
            checks[claim.main, name] = all(c["holds"] for c in found)
            detail += [[_comparison(c), difference_text(c, columns), "holds" if c["holds"] else "fails"] for c in found]
        main = {name: ok for (is_main, name), ok in checks.items() if is_main}
        verdict, reason = judge(main, {name: ok for (is_main, name), ok in checks.items() if not is_main})
        if len(detail) > len(checks):  # some claim makes several comparisons: show each
            body += "\n\nEvery comparison the claims make (paired over seeds):\n\n" + markdown_table(
                ["comparison", "difference (mean ± 95% CI)", ""], detail)
    seeds = len(next(iter(values[columns[0].label].values())))
    configuration = (f"recipe `recipes/{recipe.name}.toml` ({recipe.source}); dataset {recipe.dataset} from "
                     f"`{data_dir}`; {seeds} seed(s); epochs {epochs or version.run['epochs']}; model "
                     f"{version.run['model']} {version.run.get('model_params', {})}; {_devices(version, device)}. "
                     + recipe.notes)
    claim = "; ".join(claim_name(c) + (" (main)" if c.main else "") for c in recipe.claims)
    return Section(title=recipe.title, claim=claim, verdict=verdict, reason=reason, body=body,
                   configuration=configuration)


def _devices(recipe: Recipe, device: str | None) -> str:
    """Where the runs trained: ``--device`` moves the device- and loader-loop rows only (Recipe.configs)."""
    host = [row.label for row in recipe.rows if recipe.loop_of(row.settings) == "host"]
    if device is None or device == "cpu" or not host:
        return f"device {device or 'cpu'}"
    return f"device {device} (rows on the host loop, CPU: {', '.join(host)})"


#: How a claim's relation reads in a section.
_RELATION_WORDS = {"below": "<", "not_above": "not above (<, or no significant difference)"}


def _comparison(check: dict) -> str:
    better_column, worse_column = check["columns"]
    relation = "<" if check["relation"] == "below" else "not above"
    if better_column == worse_column:
        return f"{check['better']} {relation} {check['worse']} at {better_column}"
    return f"{check['better']} ({better_column}) {relation} {check['worse']} ({worse_column})"


def difference_text(check: dict, columns) -> str:
    """A :func:`claim_checks` comparison's paired difference as 'mean ± 95% half-width' (percent points where its
    column is in percent)."""
    percent = next(c.percent for c in columns if c.label == check["columns"][0])
    scale = 100.0 if percent else 1.0
    mean, half = check["difference"]
    return f"{mean * scale:+.2f} ± {half * scale:.2f}"
