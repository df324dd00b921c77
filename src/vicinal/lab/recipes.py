"""The papers' image-benchmark protocols as data: ``recipes/*.toml`` read into validated RunConfigs.

A recipe is one published table (or one column of a table whose columns are different data sets):
the training protocol shared by every run (``[run]``: any :class:`~vicinal.lab.config.RunConfig`
field), the rows of the table (``[[rows]]``: a method, its fixed settings and a grid), the seeds,
and the published numbers beside them (``[paper]``, cell name -> value in percent), with the page
they were read from. ``[quick]`` holds the overrides of ``--quick`` (one epoch, a tiny model, a
grid cut short) so that every recipe runs end to end in seconds on generated data. Integration of
the three papers' protocols with the lab (no equation of its own).

Cell names: a row's label, then ``axis=value`` for each grid axis in the grid's order, e.g.
``"k-mixup k=16 alpha=1.0"``; a row without a grid is its label alone. A table whose columns are
several metrics of the same runs (robustness at several noise levels, plain and rescaled
prediction) lists them in ``columns`` (label -> stored metric); its ``[paper]`` keys are then
``"cell | column"``. Without ``columns`` the one column is ``metric`` and ``[paper]`` keys are cells.
``histogram`` names a stored list metric of bin counts on [0, 1] (``"test_confidence_histogram"``): the
section then draws it per cell, summed over seeds (Carratino et al. Fig. 7).

A claim compares the best cell (lowest mean) of one selection of cells with the best of another,
paired over seeds, and holds when the 95% CI of the paired difference lies below 0. A selection is
a row label, optionally narrowed by ``axis=value`` words (``"k-mixup k=16"``). ``columns`` (a list,
or ``"all"``) checks the claim at each of those columns; ``better_column`` / ``worse_column``
compare two columns instead (rescaled against plain prediction of the same runs). ``each = [axes]``
checks it separately for every value of those grid axes (``each = ["alpha"]``: at every alpha,
against the other side's cells of the same alpha, or all of them where that side has no such axis).
``relation = "not_above"`` asks less: the paper's "outperforms or statistically matches", which holds
unless the paired CI lies entirely above 0 (the default ``"below"`` is "outperforms").
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import canonical_config
from .suggest import did_you_mean
from .sweep.spec import tomllib

#: The folder of the recipes shipped with the repository (``recipes/`` at its root).
RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"

_TOP_KEYS = {"title", "source", "dataset", "seeds", "metric", "columns", "run", "rows", "paper", "claims", "quick",
             "notes", "alpha_trials", "histogram"}
_ROW_KEYS = {"label", "method", "settings", "grid", "calibrate_alpha"}
_QUICK_KEYS = {"run", "grid", "seeds", "alpha_trials"}
_CLAIM_KEYS = {"better", "worse", "main", "columns", "better_column", "worse_column", "each", "relation"}
#: A claim's relation: "below" (the paired 95% CI of better - worse lies below 0) or "not_above" (it does not lie
#: above 0: better outperforms or statistically matches worse).
RELATIONS = ("below", "not_above")
#: Settings a recipe may not fix in ``[run]``: the command line or the rows set them.
_SET_ELSEWHERE = ("dataset", "seed", "method")


@dataclass(frozen=True)
class Row:
    """One row of a published table: a method with fixed settings and a grid of settings (cells)."""

    label: str
    method: str
    settings: dict
    grid: dict
    calibrate_alpha: bool = False  # k-Mixup Algorithm 1: grid alphas are k = 1 alphas, each k gets alpha_k

    def cells(self) -> list[tuple[str, dict]]:
        """(cell name, settings) of every grid point, in grid order."""
        axes = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[a] for a in axes)):
            name = " ".join([self.label] + [f"{a}={v}" for a, v in zip(axes, values)])
            out.append((name, {**self.settings, "method": self.method, **dict(zip(axes, values))}))
        return out


@dataclass(frozen=True)
class Column:
    """One column of a published table: a stored metric of each run, shown in percent or as it is."""

    label: str
    metric: str
    percent: bool = True


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: best of ``better`` < best of ``worse`` at each (better, worse) column pair and each group.

    ``better`` / ``worse`` are selections (a row label, optionally narrowed by ``axis=value`` words);
    ``column_pairs`` the (better column, worse column) labels it is checked at; ``each`` the grid
    axes it is checked separately for; ``relation`` one of :data:`RELATIONS`.
    """

    better: str
    worse: str
    column_pairs: tuple
    each: tuple = ()
    main: bool = False
    relation: str = "below"


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: shared run settings, rows, seeds, the paper's numbers and claims."""

    name: str
    path: Path
    title: str
    source: str
    dataset: str
    seeds: int
    metric: str
    run: dict
    rows: tuple
    paper: dict
    claims: tuple
    quick: dict
    notes: str = ""
    alpha_trials: int = 2000
    columns: tuple = ()  # Column; empty: one column, ``metric``
    histogram: str = ""  # a stored list metric of bin counts on [0, 1], drawn per cell; "" draws nothing

    @property
    def named_columns(self) -> bool:
        """Whether the table lists ``columns``: its ``[paper]`` keys then name a column ("cell | column")."""
        return bool(self.columns)

    def loop_of(self, settings: dict) -> str:
        """The training loop of a cell with these settings: its row's ``loop``, else ``[run]``'s, else "host"."""
        return {**self.run, **settings}.get("loop", "host")

    def table_columns(self) -> tuple[Column, ...]:
        """The table's columns: ``columns``, or the one column ``metric``."""
        return self.columns or (Column(self.metric, self.metric),)

    def paper_value(self, cell_name: str, column: Column) -> float | None:
        """The published number of a cell at a column, or None where the paper prints none."""
        return self.paper.get(f"{cell_name} | {column.label}" if self.named_columns else cell_name)

    def select(self, selection: str) -> list[tuple[str, dict]]:
        """(cell name, grid values) of the cells a claim's selection names: a row label and ``axis=value`` words.

        Raises ValueError naming the selection when no row label starts it, a word is no ``axis=value`` of
        that row's grid, or nothing is left.
        """
        labels = [row.label for row in self.rows if selection == row.label or selection.startswith(row.label + " ")]
        if not labels:
            raise ValueError(f"{selection!r} names no row; a selection is a row label "
                             f"({', '.join(repr(r.label) for r in self.rows)}) and optional axis=value words")
        row = next(r for r in self.rows if r.label == max(labels, key=len))
        wanted = {}
        for word in selection[len(row.label):].split():
            axis, _, value = word.partition("=")
            if axis not in row.grid or not value:
                raise ValueError(f"{selection!r}: {word!r} is no axis=value of row {row.label!r} "
                                 f"(its grid axes: {', '.join(row.grid) or 'none'})")
            wanted[axis] = value
        cells = [(name, {a: settings[a] for a in row.grid}) for name, settings in row.cells()
                 if all(str(settings[a]) == v for a, v in wanted.items())]
        if not cells:
            raise ValueError(f"{selection!r} selects no cell of row {row.label!r} (grid {row.grid})")
        return cells

    def cells(self) -> list[tuple[Row, str, dict]]:
        """(row, cell name, settings without dataset root and seed) of every cell of the table."""
        return [(row, name, settings) for row in self.rows for name, settings in row.cells()]

    def quick_version(self) -> "Recipe":
        """The ``--quick`` recipe: ``[quick]`` overrides of the run settings, grid axes and seeds."""
        q = self.quick
        grid = q.get("grid", {})
        rows = tuple(dataclasses.replace(row, grid={a: grid.get(a, v) for a, v in row.grid.items()})
                     for row in self.rows)
        return dataclasses.replace(self, run={**self.run, **q.get("run", {})}, rows=rows, seeds=q.get("seeds", 1),
                                   alpha_trials=q.get("alpha_trials", 50))

    def configs(self, root: str, *, seeds: int | None = None, epochs: int | None = None,
                device: str | None = None, alphas: dict | None = None) -> list[tuple[str, int, dict]]:
        """(cell name, seed, RunConfig dict) of every run, each validated by :class:`RunConfig`.

        ``alphas`` maps (k, alpha) to the calibrated alpha_k of rows with ``calibrate_alpha``. ``epochs`` scales
        the milestones with it (those that fall before epoch 1 are dropped). A ``[run]``
        string containing ``{data_dir}`` gets ``root`` there (a second data set beside the first one).
        ``device`` moves the device- and loader-loop runs; a row that sets ``loop = "host"`` (a method those
        loops cannot train, such as ``approx_mixup``) stays on the CPU, and a recipe without any such run
        refuses ``device`` other than "cpu".
        """
        if device is not None and device != "cpu" and not any(
                self.loop_of(settings) != "host" for _, _, settings in self.cells()):
            raise ValueError(f"recipe {self.name!r} trains every run on the host loop (CPU); device={device!r} has "
                             f"nothing to move: leave --device out")
        run = {key: value.replace("{data_dir}", str(root)) if isinstance(value, str) else value
               for key, value in self.run.items()}  # e.g. eval_corrupted = "{data_dir}"
        out = []
        for row, name, settings in self.cells():
            settings = dict(settings)
            if row.calibrate_alpha and alphas is not None:
                settings["alpha"] = alphas[settings["k"], settings["alpha"]]
            for seed in range(self.seeds if seeds is None else seeds):
                values = {**run, **settings, "dataset": self.dataset, "seed": seed,
                          "dataset_params": {**self.run.get("dataset_params", {}), "root": str(root)}}
                if epochs is not None:
                    values["epochs"] = epochs
                    # A milestone scaled below epoch 1 is dropped: MultiStepLR would apply it before the first
                    # step, so e.g. --epochs 1 would train at lr * gamma**2 instead of the paper's lr.
                    scaled = [m * epochs // self.run["epochs"] for m in self.run.get("milestones", ())]
                    values["milestones"] = [m for m in scaled if m >= 1]
                if device is not None and self.loop_of(settings) != "host":
                    values["device"] = device
                out.append((name, seed, canonical_config(values)))
        return out


#: The columns of a summary recipe (k-Mixup Table 1): label -> the selection of each included recipe's cells
#: it takes the best of. Table 1's k-mixup column is k > 1 (its k = 1 is the 1-mixup column).
SUMMARY_COLUMNS = {"ERM": "ERM", "1-mixup": "1-mixup", "k-mixup": "k-mixup", "16-mixup": "k-mixup k=16"}
_SUMMARY_KEYS = {"title", "source", "summary_of", "paper", "notes"}
_SUMMARY_PAPER_KEYS = {"setting", "confidence", *SUMMARY_COLUMNS}


@dataclass(frozen=True)
class Summary:
    """A summary recipe: a published table whose rows summarise other recipes' tables (k-Mixup Table 1).

    ``tables`` names the included recipes in the table's order; ``paper`` maps each to its printed row
    (``setting``: dataset and architecture as printed, ``confidence``: the printed ± of the row, and the
    best number of each :data:`SUMMARY_COLUMNS` column, in percent). Integration, no equation.
    """

    name: str
    path: Path
    title: str
    source: str
    tables: tuple
    paper: dict
    notes: str = ""


def load_summary(name: str, directory: Path = RECIPES_DIR) -> Summary:
    """Read and validate summary recipe ``name``: unknown keys refused by file and key, as :func:`load_recipe`.

    Every ``summary_of`` name needs a ``[paper]`` row and every ``[paper]`` key must be one of them. An included
    recipe whose file exists must be a table recipe whose rows give every :data:`SUMMARY_COLUMNS` selection
    (k > 1 in the k-mixup row); one not in ``directory`` yet (written elsewhere) is accepted and reported as
    missing when the summary runs.
    """
    path, data = _read(name, directory, summary=True)
    _refuse_unknown(path, "the top level", data, _SUMMARY_KEYS)
    tables = _require(path, "the top level", data, "summary_of", list)
    if not tables or any(not isinstance(t, str) for t in tables) or len(set(tables)) != len(tables):
        raise ValueError(f"{path}: summary_of must be a non-empty list of distinct recipe names, got {tables!r}")
    paper = _require(path, "the top level", data, "paper", dict)
    stray, unpublished = sorted(set(paper) - set(tables)), [t for t in tables if t not in paper]
    if stray or unpublished:
        raise ValueError(f"{path}: [paper] keys must be the recipes of summary_of, one each: "
                         + "; ".join(filter(None, [stray and f"not in summary_of: {stray}"
                                                   f"{did_you_mean(stray[0], tables)}",
                                                   unpublished and f"without a [paper] row: {unpublished}"])))
    for table, row in paper.items():
        where = f"[paper.{table!r}]"
        if not isinstance(row, dict):
            raise TypeError(f"{path}: {where} must be a table with {sorted(_SUMMARY_PAPER_KEYS)}, got {row!r}")
        _refuse_unknown(path, where, row, _SUMMARY_PAPER_KEYS)
        _require(path, where, row, "setting", str)
        for key in ("confidence", *SUMMARY_COLUMNS):
            if isinstance(row.get(key, 0.0), int) and not isinstance(row.get(key), bool):
                row[key] = float(row[key])  # TOML reads 5 as an int; the printed number is a float
            _require(path, where, row, key, float)
    existing, summaries = set(available_recipes(directory)), set(available_recipes(directory, summaries=True))
    for table in tables:
        if table in summaries:
            raise ValueError(f"{path}: summary_of names {table!r}, a summary recipe; include table recipes only")
        if table not in existing:
            continue
        recipe = load_recipe(table, directory)
        for label, selection in SUMMARY_COLUMNS.items():
            try:
                names = {name for name, _ in recipe.select(selection)}
            except ValueError as error:
                raise ValueError(f"{path}: column {label!r} takes {selection!r} of {table!r}: {error}") from None
            if label == "k-mixup" and any(settings["k"] < 2 for _, name, settings in recipe.cells() if name in names):
                raise ValueError(f"{path}: {table!r}'s k-mixup row has k = 1 cells; Table 1's k-mixup column is "
                                 f"k > 1 (k = 1 is the 1-mixup row)")
    return Summary(name=name, path=path, title=_require(path, "the top level", data, "title", str),
                   source=_require(path, "the top level", data, "source", str), tables=tuple(tables),
                   paper=paper, notes=data.get("notes", ""))


def available_recipes(directory: Path = RECIPES_DIR, *, summaries: bool = False) -> tuple[str, ...]:
    """Names (file stems, sorted) of the table recipes in ``directory``, or with ``summaries=True`` of the
    summary recipes (files with a top-level ``summary_of``, :func:`load_summary`)."""
    return tuple(sorted(p.stem for p in Path(directory).glob("*.toml") if _is_summary(p) == summaries))


def _is_summary(path: Path) -> bool:
    # A line-start key, not a parse: a malformed recipe must not break listing the others (loading it names the error).
    return re.search(r"^\s*summary_of\s*=", path.read_text(), flags=re.M) is not None


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> Recipe:
    """Read and validate recipe ``name`` (``<directory>/<name>.toml``); unknown keys refused by file and key."""
    path, data = _read(name, directory, summary=False)
    return _validate(name, path, data)


def _read(name: str, directory: Path, *, summary: bool) -> tuple[Path, dict]:
    """The path and parsed TOML of recipe ``name``; ValueError naming the valid names when it is not one of its kind."""
    path = Path(directory) / f"{name}.toml"
    kind, other = ("summary recipe", "load_recipe") if summary else ("recipe", "load_summary")
    if not path.is_file():
        names = available_recipes(directory, summaries=summary)
        raise ValueError(f"unknown {kind} {name!r}{did_you_mean(name, names)}; {kind}s in {directory}: "
                         f"{', '.join(names) or 'none'}")
    if _is_summary(path) != summary:
        raise ValueError(f"{path} is {'not ' if summary else ''}a summary recipe (top-level 'summary_of'); "
                         f"read it with {other}")
    with path.open("rb") as handle:
        return path, tomllib.load(handle)


def _refuse_unknown(path: Path, where: str, table: dict, known: set) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        hints = "".join(did_you_mean(key, known) for key in unknown)
        raise ValueError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))} in {where}{hints}; "
                         f"valid keys: {', '.join(sorted(known))}")


def _require(path: Path, where: str, table: dict, key: str, kind: type) -> Any:
    if key not in table:
        raise ValueError(f"{path}: {where} needs {key!r}")
    if not isinstance(table[key], kind) or isinstance(table[key], bool) and kind is not bool:
        raise TypeError(f"{path}: {where}.{key} must be a {kind.__name__}, got {table[key]!r}")
    return table[key]


def _validate(name: str, path: Path, data: dict) -> Recipe:
    _refuse_unknown(path, "the top level", data, _TOP_KEYS)
    run = _require(path, "the top level", data, "run", dict)
    for key in _SET_ELSEWHERE:
        if key in run:
            raise ValueError(f"{path}: [run] may not set {key!r} (the top-level 'dataset', the seeds and each "
                             f"row's 'method' set it)")
    if "root" in run.get("dataset_params", {}):
        raise ValueError(f"{path}: [run.dataset_params] may not set 'root'; `vicinal reproduce --data-dir` gives it")
    rows = []
    for i, table in enumerate(_require(path, "the top level", data, "rows", list)):
        where = f"[[rows]] #{i + 1}"
        _refuse_unknown(path, where, table, _ROW_KEYS)
        grid = table.get("grid", {})
        if any(not isinstance(v, list) or not v for v in grid.values()):
            raise ValueError(f"{path}: {where}.grid values must be non-empty lists, got {grid!r}")
        row = Row(label=_require(path, where, table, "label", str), method=_require(path, where, table, "method", str),
                  settings=table.get("settings", {}), grid=grid, calibrate_alpha=table.get("calibrate_alpha", False))
        if row.calibrate_alpha and not ("alpha" in grid and "k" in {**row.settings, **grid}):
            raise ValueError(f"{path}: {where} has calibrate_alpha = true but no 'alpha' grid axis and 'k' "
                             f"(a grid axis or a setting)")
        rows.append(row)
    quick = data.get("quick", {})
    _refuse_unknown(path, "[quick]", quick, _QUICK_KEYS)
    _check_placeholders(path, run, quick.get("run", {}), rows)
    for where, key, table in (("the top level", "seeds", data), ("[quick]", "[quick].seeds", quick)):
        if "seeds" in table and _require(path, where, table, "seeds", int) < 1:
            raise ValueError(f"{path}: {key} must be at least 1 (trials per cell), got {table['seeds']!r}")
    _refuse_unknown(path, "[quick].grid", quick.get("grid", {}), {axis for row in rows for axis in row.grid})
    recipe = Recipe(name=name, path=path, title=_require(path, "the top level", data, "title", str),
                    source=_require(path, "the top level", data, "source", str),
                    dataset=_require(path, "the top level", data, "dataset", str),
                    seeds=_require(path, "the top level", data, "seeds", int),
                    metric=data.get("metric", "test_error"), run=run, rows=tuple(rows),
                    paper=_require(path, "the top level", data, "paper", dict),
                    claims=tuple(data.get("claims", ())), quick=quick, notes=data.get("notes", ""),
                    alpha_trials=data.get("alpha_trials", 2000),
                    histogram=_require(path, "the top level", data, "histogram", str) if "histogram" in data else "")
    if "columns" in data:
        if "metric" in data:
            raise ValueError(f"{path}: give either 'metric' (one column) or 'columns' (label -> metric), not both")
        columns = _columns(path, _require(path, "the top level", data, "columns", dict))
        recipe = dataclasses.replace(recipe, columns=columns, metric=columns[0].metric)
    cells = {cell for _, cell, _ in recipe.cells()}
    if recipe.named_columns:
        cells = {f"{cell} | {column.label}" for cell in cells for column in recipe.columns}
    stray = sorted(set(recipe.paper) - cells)
    if stray:
        raise ValueError(f"{path}: [paper] names cell(s) {stray} that no row produces; cells: {sorted(cells)}")
    recipe = dataclasses.replace(recipe, claims=tuple(_claim(path, recipe, i, table)
                                                       for i, table in enumerate(recipe.claims)))
    if recipe.claims and not any(c.main for c in recipe.claims):
        raise ValueError(f"{path}: mark the main claim with main = true in one [[claims]] table")
    # Every cell, at full size and quick, must be a valid run (RunConfig names the bad setting).
    for version in (recipe, recipe.quick_version()):
        try:
            version.configs("/data", seeds=1)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{path}{' [quick]' if version is not recipe else ''}: {error}") from None
    return recipe


def _check_placeholders(path: Path, run: dict, quick_run: dict, rows: list) -> None:
    """Refuse a ``{...}`` in a setting that :meth:`Recipe.configs` would not replace: only ``[run]`` strings get
    ``{data_dir}`` (and ``[quick].run``, merged into them), and it is the only placeholder (a typo such as ``{data_dr}`` would reach the run as a path)."""
    tables = [("[run]", run), ("[quick].run", quick_run)] + [(f"[[rows]] #{i + 1}.settings", row.settings)
                                                               for i, row in enumerate(rows)]
    for where, table in tables:
        for key, value in table.items():
            found = re.findall(r"\{[^{}]*\}", value) if isinstance(value, str) else []
            wrong = [p for p in found if p != "{data_dir}" or where not in ("[run]", "[quick].run")]
            if wrong:
                raise ValueError(f"{path}: {where}.{key} = {value!r} holds {wrong[0]!r}; the one placeholder is "
                                 f"{{data_dir}} (the --data-dir path), in [run] / [quick].run strings only: write it there, "
                                 f"spelled so, or write the path itself")


def _columns(path: Path, table: dict) -> tuple[Column, ...]:
    """``columns``: label -> metric name (shown in percent) or ``{ metric = ..., percent = false }``."""
    if not table:
        raise ValueError(f"{path}: 'columns' is empty; name at least one column (label = \"stored metric\")")
    out = []
    for label, spec in table.items():
        if isinstance(spec, str):
            spec = {"metric": spec}
        if not isinstance(spec, dict):
            raise TypeError(f"{path}: columns.{label} must be a metric name or a table, got {spec!r}")
        _refuse_unknown(path, f"columns.{label}", spec, {"metric", "percent"})
        percent = spec.get("percent", True)
        if not isinstance(percent, bool):
            raise TypeError(f"{path}: columns.{label}.percent must be true or false, got {percent!r}")
        out.append(Column(label, _require(path, f"columns.{label}", spec, "metric", str), percent))
    return tuple(out)


def _claim(path: Path, recipe: Recipe, i: int, table: dict) -> Claim:
    """A validated :class:`Claim` from one ``[[claims]]`` table (selections, columns and axes checked)."""
    where = f"[[claims]] #{i + 1}"
    _refuse_unknown(path, where, table, _CLAIM_KEYS)
    sides = {side: _require(path, where, table, side, str) for side in ("better", "worse")}
    for side, selection in sides.items():
        try:
            recipe.select(selection)
        except ValueError as error:
            raise ValueError(f"{path}: {where}.{side}: {error}") from None
    labels = [c.label for c in recipe.table_columns()]

    def column(label, key: str) -> str:
        if label not in labels:
            raise ValueError(f"{path}: {where}.{key} names {label!r}, no column{did_you_mean(str(label), labels)}; "
                             f"columns: {labels}")
        return label

    if "better_column" in table or "worse_column" in table:
        if "columns" in table:
            raise ValueError(f"{path}: {where} gives 'columns' and better_column/worse_column; use one or the other")
        pairs = ((column(table.get("better_column"), "better_column"),
                  column(table.get("worse_column"), "worse_column")),)
    else:
        chosen = table.get("columns", [labels[0]])
        chosen = labels if chosen == "all" else chosen
        if not isinstance(chosen, list) or not chosen:
            raise ValueError(f"{path}: {where}.columns must be \"all\" or a non-empty list of column labels, "
                             f"got {chosen!r}")
        pairs = tuple((column(c, "columns"), c) for c in chosen)
    same = [b for b, w in pairs if b == w]
    if sides["better"] == sides["worse"] and same:
        raise ValueError(f"{path}: {where} compares {sides['better']!r} with itself at column {same[0]!r}: the paired "
                         f"difference is 0 and the claim can never hold; give two selections, or better_column / "
                         f"worse_column to compare two columns of the same runs")
    each = table.get("each", [])
    better_axes = set(recipe.select(sides["better"])[0][1])
    if not isinstance(each, list) or any(axis not in better_axes for axis in each):
        raise ValueError(f"{path}: {where}.each must list grid axes of {sides['better']!r} "
                         f"({sorted(better_axes)}), got {each!r}")
    main = table.get("main", False)
    if not isinstance(main, bool):
        raise TypeError(f"{path}: {where}.main must be true or false, got {main!r}")
    relation = table.get("relation", "below")
    if relation not in RELATIONS:
        raise ValueError(f"{path}: {where}.relation must be one of {', '.join(map(repr, RELATIONS))} "
                         f"(\"below\": outperforms; \"not_above\": outperforms or statistically matches), got {relation!r}")
    return Claim(better=sides["better"], worse=sides["worse"], column_pairs=pairs, each=tuple(each), main=main,
                 relation=relation)

