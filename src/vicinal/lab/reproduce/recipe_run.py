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
from pathlib import Path

import numpy as np

from ..datasets import load_dataset
from ..recipes import Recipe
from ..sweep import run_sweep
from ..trainer import run, run_checkpointed
from .base import Context, Section, judge, markdown_table, paired_below
from .runs import calibrated_alphas, cell


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
        raise ValueError(f"recipe {recipe.name!r}: seeds={seeds} cannot decide its claims (each is a paired 95% CI "
                         f"over seeds); use --seeds 2 or more, or --quick for a one-seed check of the path")
    data = load_recipe_data(version, data_dir)
    alphas = None
    if any(row.calibrate_alpha for row in version.rows):
        pairs = {(s["k"], s["alpha"]) for row, _, s in version.cells() if row.calibrate_alpha}
        calib = calibrated_alphas(data.x_train, sorted({k for k, _ in pairs}), sorted({a for _, a in pairs}),
                                  n_trials=version.alpha_trials)
        alphas = {key: round(calib[key].alpha_k, 6) for key in pairs}
    runs = version.configs(str(Path(data_dir).expanduser().resolve()), seeds=seeds, epochs=epochs, device=device,
                           alphas=alphas)
    run_fn = run if checkpoint_dir is None else functools.partial(run_checkpointed, checkpoint_dir=str(checkpoint_dir))
    run_sweep([config for _, _, config in runs], run_fn, store=ctx.store_path, workers=1, progress=not ctx.quick)
    from ..store import ResultStore, config_key

    with ResultStore(ctx.store_path) as store:
        stored = {row.key: row.metrics for row in store.rows()}
    values: dict[str, list[float]] = {}
    for name, _, config in runs:
        values.setdefault(name, []).append(stored[config_key(config)][version.metric])
    return _section(ctx, recipe, version, values, alphas, data_dir, device, epochs)


def _best(recipe: Recipe, values: dict, label: str) -> str:
    names = [name for row, name, _ in recipe.cells() if row.label == label]
    return min(names, key=lambda name: float(np.mean(values[name])))


def _section(ctx, recipe, version, values, alphas, data_dir, device, epochs) -> Section:
    rows = []
    for row, name, settings in version.cells():
        paper = recipe.paper.get(name)
        alpha_k = (f" (alpha_k {alphas[settings['k'], settings['alpha']]:g})"
                   if row.calibrate_alpha and alphas else "")
        rows.append([name + alpha_k, cell(values[name]), "—" if paper is None else f"{paper:.2f}"])
    table = markdown_table(["cell", f"ours: {version.metric} % (mean ± 95% CI)", "paper %"], rows)
    checks = {}
    for claim in recipe.claims:
        better, worse = _best(version, values, claim["better"]), _best(version, values, claim["worse"])
        checks[claim.get("main", False), f"best {claim['better']} ({better}) < best {claim['worse']} ({worse})"] = \
            paired_below(values[better], values[worse]) if len(values[better]) > 1 else False  # quick: 1 seed
    if ctx.quick:
        verdict, reason = "not assessed (quick run)", "one epoch of a tiny model on one seed checks the path only"
    else:
        main = {name: ok for (is_main, name), ok in checks.items() if is_main}
        verdict, reason = judge(main, {name: ok for (is_main, name), ok in checks.items() if not is_main})
    seeds = len(next(iter(values.values())))
    configuration = (f"recipe `recipes/{recipe.name}.toml` ({recipe.source}); dataset {recipe.dataset} from "
                     f"`{data_dir}`; {seeds} seed(s); epochs {epochs or version.run['epochs']}; model "
                     f"{version.run['model']} {version.run.get('model_params', {})}; device {device or 'cpu'}. "
                     + recipe.notes)
    claim = "; ".join(f"best {c['better']} < best {c['worse']}" + (" (main)" if c.get("main") else "")
                      for c in recipe.claims)
    return Section(title=recipe.title, claim=claim, verdict=verdict, reason=reason, body=table,
                   configuration=configuration)
