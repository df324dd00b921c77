"""``vicinal reproduce <summary>``: a table whose rows summarise other recipes' tables (k-Mixup Table 1).

Trains nothing. For each recipe a summary includes (:class:`vicinal.lab.recipes.Summary`) it reads the
result store that ``vicinal reproduce <recipe> --data-dir DIR`` wrote (``results/reproduce/<recipe>/``
beside ``--out``), takes the best cell (lowest mean over seeds) of each column of
:data:`~vicinal.lab.recipes.SUMMARY_COLUMNS` and judges the paper's claims per table, paired over
seeds, with :func:`.recipe_run.claim_checks`. Integration of k-Mixup's Table 1 (Greenewald et al.
2023, Sec. 5.2) with the lab; no equation of its own.

Finding the runs: stored configs carry the data root the user passed and the device, so the stored
rows are grouped by (root, device) and the recipe's configs are rebuilt for each group
(:meth:`Recipe.configs`, with the alpha_k that :func:`.recipe_run.record_alphas` recorded for that
root); a table counts when one group holds every run. ``seeds`` / ``epochs`` rebuild the configs as
``--seeds`` / ``--epochs`` of the detail command did (default: the recipe's 20 seeds and epochs): the
summary finds runs made with the same options, and, with fewer seeds, the first seeds of a larger run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..recipes import RECIPES_DIR, SUMMARY_COLUMNS, Claim, Recipe, Summary, available_recipes, load_recipe
from ..store import ResultStore, config_key
from ..suggest import did_you_mean
from .base import Context, Section, judge, markdown_table, store_path_of
from .recipe_run import claim_checks, difference_text, recorded_alphas
from .runs import cell

#: (better column, worse column, main?) of each check per table: Table 1's caption, p. 9.
_CHECKS = (("k-mixup", "1-mixup", True), ("k-mixup", "ERM", True), ("16-mixup", "ERM", False),
           ("16-mixup", "1-mixup", False))


@dataclass(frozen=True)
class StoredTable:
    """Every run of one recipe found in its store: per-seed metric values by cell, and where they came from."""

    values: dict  # {column label: {cell name: [value of seed 0, 1, ...]}}, as recipe_run builds it
    root: str
    device: str
    runs: int
    note: str = ""


def stored_table(recipe: Recipe, store_path: Path, *, seeds: int | None = None,
                 epochs: int | None = None) -> StoredTable | str:
    """The runs of ``recipe`` in ``store_path`` (whatever data root and device they used), or why they are not all there.

    Returns a :class:`StoredTable` when one (root, device) group of stored rows holds every config of the recipe
    (the most recently finished such group when several do), else a sentence naming what is missing.
    """
    store_path = Path(store_path)
    if not store_path.is_file():
        return f"no result store at {store_path}"
    with ResultStore(store_path, read_only=True) as store:
        rows = store.rows()
    by_key = {row.key: row for row in rows}
    # A config at the default device stores no "device" (old hashes kept), hence None: configs(device=None).
    origins = sorted({(row.config.get("dataset_params", {}).get("root"), row.config.get("device")) for row in rows
                      if isinstance(row.config.get("dataset_params", {}).get("root"), str)}, key=str)
    calibrated = any(row.calibrate_alpha for row in recipe.rows)
    complete, reasons, most = [], [], 0
    total = len(recipe.configs("/data", seeds=seeds, epochs=epochs))
    for root, device in origins:
        alphas = recorded_alphas(store_path, root) if calibrated else None
        if calibrated and alphas is None:
            reasons.append(f"no alpha_k record for data root {root!r} in {store_path.parent} (rerunning the recipe "
                           f"with that --data-dir writes it and trains nothing already stored)")
            continue
        try:
            runs = recipe.configs(root, seeds=seeds, epochs=epochs, device=device, alphas=alphas)
        except KeyError as error:
            reasons.append(f"the alpha_k record of {root!r} lacks (k, alpha) = {error} (rerun the recipe to rewrite it)")
            continue
        found = [by_key.get(config_key(config)) for _, _, config in runs]
        most = max(most, sum(row is not None for row in found))
        if all(row is not None for row in found):
            complete.append((max(row.finished_at for row in found), root, device, runs, found))
    if not complete:
        return f"{most} of {total} runs stored in {store_path}" + "".join(f"; {r}" for r in reasons)
    finished, root, device, runs, found = max(complete)
    column = recipe.table_columns()[0]
    values: dict[str, list[float]] = {}
    for (name, _, _), row in zip(runs, found):
        values.setdefault(name, []).append(row.metrics[column.metric])
    note = (f"{len(complete)} complete sets of runs (other data root or device) are stored; the most recently finished "
            f"is used" if len(complete) > 1 else "")
    return StoredTable({column.label: values}, root, device or "cpu", len(runs), note)


def command(table: str, seeds: int | None, epochs: int | None) -> str:
    """The command that stores ``table``'s runs as this summary reads them."""
    return (f"vicinal reproduce {table} --data-dir DIR" + (f" --seeds {seeds}" if seeds is not None else "")
            + (f" --epochs {epochs}" if epochs is not None else ""))


def summarise(ctx: Context, summary: Summary, *, seeds: int | None = None, epochs: int | None = None,
              directory: Path = RECIPES_DIR) -> Section:
    """The section of ``summary``: per included table our best cells beside the paper's row, and the verdict.

    Parameters
    ----------
    ctx : Context
        ``ctx.out`` locates the detail recipes' stores (:func:`.base.store_path_of`).
    summary : Summary
        From :func:`vicinal.lab.recipes.load_summary`.
    seeds, epochs : int, optional
        The ``--seeds`` / ``--epochs`` the detail runs were made with (default: each recipe's own).
    directory : path
        Where the included recipes are read from.

    Returns
    -------
    Section
        Main claim: in every table with all its runs stored, best k-mixup (k > 1) < best 1-mixup and < ERM,
        each paired over seeds; verdict "not assessed (no stored runs)" when no table has them.
    """
    if seeds is not None and seeds < 2:
        raise ValueError(f"seeds={seeds} cannot decide the summary's claims (each is a paired 95% CI over seeds); "
                         f"use --seeds 2 or more, as the detail runs were made")
    existing = available_recipes(directory)
    lines, comparisons, missing, read, assessed = [], [], [], [], []
    main, sixteen_erm, sixteen_one = {}, {}, {}
    for table in summary.tables:
        paper = summary.paper[table]
        recipe = load_recipe(table, directory) if table in existing else None
        found = (f"no recipes/{table}.toml in this checkout yet{did_you_mean(table, existing)}" if recipe is None
                 else stored_table(recipe, store_path_of(ctx.out, table), seeds=seeds, epochs=epochs))
        setting = f"{paper['setting']} (± {paper['confidence']:.2f})"
        if isinstance(found, str):
            missing.append(f"- `{table}`: {found}. Produce them with `{command(table, seeds, epochs)}`")
            lines.append([setting, f"`{table}`"] + [x for label in SUMMARY_COLUMNS
                                                    for x in ("not stored", f"{paper[label]:.2f}")])
            continue
        column = next(iter(found.values))
        checks = {(better, worse): claim_checks(recipe, Claim(SUMMARY_COLUMNS[better], SUMMARY_COLUMNS[worse],
                                                              ((column, column),)), found.values)[0]
                  for better, worse, _ in _CHECKS}
        best = {"ERM": checks["k-mixup", "ERM"]["worse"], "1-mixup": checks["k-mixup", "1-mixup"]["worse"],
                "k-mixup": checks["k-mixup", "1-mixup"]["better"], "16-mixup": checks["16-mixup", "ERM"]["better"]}
        line = [setting, f"`{table}`"]
        for label, name in best.items():
            part = _grid_part(recipe, name)
            line += [cell(found.values[column][name]) + (f" ({part})" if part else ""), f"{paper[label]:.2f}"]
        lines.append(line)
        for better, worse, is_main in _CHECKS:
            check = checks[better, worse]
            comparisons.append([f"`{table}`", f"best {better} ({check['better']}) < best {worse} ({check['worse']})",
                                difference_text(check, recipe.table_columns()), "holds" if check["holds"] else "fails"])
            if is_main:
                main[f"{table}: best {better} < {'ERM' if worse == 'ERM' else 'best ' + worse}"] = check["holds"]
        assessed.append(table)
        sixteen_erm[table], sixteen_one[table] = checks["16-mixup", "ERM"]["holds"], checks["16-mixup", "1-mixup"]["holds"]
        read.append(f"- `{table}`: {found.runs} runs (data root `{found.root}`, device {found.device})"
                    + (f"; {found.note}" if found.note else ""))
    header = ["setting (paper's ±)", "recipe"] + [x for label in SUMMARY_COLUMNS for x in (f"ours: {label} %", "paper")]
    body = (markdown_table(header, lines) + "\n\nours: mean ± 95% CI over seeds of the column's best cell (lowest mean; "
            "the cell in brackets); paper: Table 1 (its ± is one standard deviation of a 20-trial mean, the worst of "
            "the detail table, footnote 7).")
    if comparisons:
        body += ("\n\nEvery comparison, paired over seeds (test error, percent points):\n\n"
                 + markdown_table(["table", "comparison", "difference (mean ± 95% CI)", ""], comparisons))
        body += "\n\nRuns read:\n\n" + "\n".join(read)
    if missing:
        body += "\n\nTables whose runs are not all stored (not part of the verdict):\n\n" + "\n".join(missing)
    if not assessed:
        verdict, reason = "not assessed (no stored runs)", (f"none of the {len(summary.tables)} included tables has "
                                                            f"all its runs stored (commands below the table)")
    else:
        secondary = {"best 16-mixup < ERM in every table": all(sixteen_erm.values()),
                     "best 16-mixup < best 1-mixup in all tables but at most one":
                         sum(not ok for ok in sixteen_one.values()) <= 1}
        verdict, reason = judge(main, secondary)
        rest = [t for t in summary.tables if t not in assessed]
        reason = (f"rests on {len(assessed)} of {len(summary.tables)} tables ({', '.join(assessed)}); not stored: "
                  f"{', '.join(rest) or 'none'}. " + reason)
    configuration = (f"summary recipe `recipes/{summary.name}.toml` ({summary.source}); trains nothing, reads "
                     f"`results/reproduce/<recipe>/results.sqlite` beside the output folder; seeds: "
                     f"{seeds if seeds is not None else 'the recipe default'}; epochs: "
                     f"{epochs if epochs is not None else 'the recipe default'}. " + summary.notes)
    claim = ("for each setting, k-mixup with hyperparameter optimisation (best k > 1 cell) outperforms both ERM and "
             "optimised 1-mixup (main); 16-mixup (best alpha at k = 16) outperforms ERM everywhere and 1-mixup in all "
             "but one setting (secondary)")
    return Section(title=summary.title, claim=claim, verdict=verdict, reason=reason, body=body,
                   configuration=configuration)


def _grid_part(recipe: Recipe, cell_name: str) -> str:
    """A cell's name without its row label ("k=16 alpha=2.0")."""
    label = max((row.label for row in recipe.rows if cell_name.startswith(row.label)), key=len)
    return cell_name[len(label):].strip()
