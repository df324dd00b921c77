"""Sweep specifications (TOML or ``key=value`` overrides) and the resumable runner.

The papers' comparisons are averages over methods x hyper-parameters x seeds
(Local Mixup sweeps ``eps`` over 1000 seeds per point, k-Mixup sweeps ``k`` and
``alpha``).  A sweep file names that product once::

    name = "spirals-eps"
    seeds = 10                      # seeds 0..9, or a list such as [0, 3, 7]

    [base]                          # settings shared by every run
    dataset = "spirals"
    epochs = 200

    [grid]                          # cartesian product
    method = ["erm", "mixup", "local_mixup"]
    alpha = [0.5, 1.0]

    [methods.local_mixup]           # extra grid for one method only
    eps = [1.0, 2.0, 4.0]           # a list is a grid axis ...
    graph = "threshold"             # ... a scalar a fixed setting

The same spec can be given, or edited, from the command line with dotted
``key=value`` overrides: ``seeds=3 grid.alpha=0.5,1 methods.local_mixup.eps=[1,2]``.

:func:`run_sweep` runs what the store does not hold yet, stores each result as
soon as it finishes, and can be stopped (Ctrl-C, SIGKILL) and started again.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import pickle
import re
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

from tqdm import tqdm

from .executors import LocalExecutor, Task, make_executor
from .store import ResultStore, canonical_json, check_store_location, config_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Failure",
    "SweepFailed",
    "SweepSpec",
    "SweepSummary",
    "apply_overrides",
    "expand_grid",
    "load_sweep",
    "parse_sweep",
    "parse_value",
    "run_sweep",
    "spec_from_overrides",
]

_TOP_LEVEL = ("name", "seeds", "base", "grid", "methods")


# -- specification ---------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base settings, a grid, per-method grids, and seeds.

    Build it with :func:`load_sweep`, :func:`parse_sweep` or
    :func:`spec_from_overrides`; turn it into run configs with :func:`expand_grid`.

    Attributes
    ----------
    name : str
        Label for progress bars and reports ("" when not given).
    seeds : tuple of int
        Seeds every configuration is run with.
    base : dict
        Settings shared by every run.
    grid : dict of str to list
        Axes of the cartesian product.
    methods : dict of str to dict
        For each value of the ``method`` setting, extra settings: list values are
        grid axes, other values fixed.  They override ``base`` and ``grid``.
    """

    name: str
    seeds: tuple[int, ...]
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    methods: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the TOML-shaped dict this spec was parsed from (seeds as a list).

        Returns
        -------
        dict
        """
        return copy.deepcopy(
            {
                "name": self.name,
                "seeds": list(self.seeds),
                "base": self.base,
                "grid": self.grid,
                "methods": self.methods,
            }
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_seeds(seeds: Any, source: str) -> tuple[int, ...]:
    if _is_int(seeds) and seeds >= 1:
        return tuple(range(seeds))
    if isinstance(seeds, list) and seeds and all(_is_int(s) for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{source}: 'seeds' lists a seed twice: {seeds!r}")
        return tuple(seeds)
    raise ValueError(
        f"{source}: 'seeds' must be a positive int (seeds 0..n-1) or a non-empty list of "
        f"distinct ints, got {seeds!r}"
    )


def _table(data: Mapping, name: str, source: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{source}: '{name}' must be a table ([{name}]), got {value!r}")
    if "seed" in value:
        raise ValueError(f"{source}: '{name}.seed' is not allowed; give seeds with the top-level 'seeds' key")
    return value


def parse_sweep(data: Mapping[str, Any], source: str = "sweep") -> SweepSpec:
    """Validate a TOML-shaped dict into a :class:`SweepSpec`.

    Parameters
    ----------
    data : Mapping
        Keys ``name`` (optional str), ``seeds`` (required), ``base``, ``grid``,
        ``methods`` (optional tables), as in the module docstring.
    source : str, default "sweep"
        Where ``data`` came from, to prefix error messages (e.g. the file name).

    Returns
    -------
    SweepSpec

    Raises
    ------
    ValueError
        Naming the offending key and what was expected.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{source}: expected a dict of sweep settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {unknown}; expected some of {list(_TOP_LEVEL)}")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"{source}: 'name' must be a string, got {name!r}")
    if "seeds" not in data:
        raise ValueError(f"{source}: missing 'seeds' (a positive int, or a list of ints)")
    seeds = _parse_seeds(data["seeds"], source)
    base, grid = _table(data, "base", source), _table(data, "grid", source)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"{source}: 'grid.{key}' must be a non-empty list of values, got {values!r} "
                f"(put a fixed setting in [base])"
            )
    both = sorted(set(base) & set(grid))
    if both:
        raise ValueError(f"{source}: {both} set in both [base] and [grid]; keep each setting in one place")
    method_values = grid.get("method", [base["method"]] if "method" in base else [])
    bad = [m for m in method_values if not isinstance(m, str)]
    if bad:
        raise ValueError(f"{source}: 'method' values must be strings, got {bad!r}")
    methods = _table(data, "methods", source)
    for method, table in methods.items():
        where = f"methods.{method}"
        if method not in method_values:
            raise ValueError(
                f"{source}: '{where}' is given but method {method!r} is not swept; "
                f"the 'method' values in [base]/[grid] are {method_values!r}"
            )
        if not isinstance(table, dict):
            raise ValueError(f"{source}: '{where}' must be a table, got {table!r}")
        for key, value in table.items():
            if key in ("seed", "method"):
                raise ValueError(f"{source}: '{where}.{key}' is not allowed inside a method table")
            if isinstance(value, list) and not value:
                raise ValueError(f"{source}: '{where}.{key}' is an empty list; expected at least one value")
    return SweepSpec(name=name, seeds=seeds, base=dict(base), grid=dict(grid), methods=dict(methods))


def load_sweep(path: str | os.PathLike, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read a sweep specification from a TOML file, then apply ``key=value`` overrides.

    Parameters
    ----------
    path : str or os.PathLike
        TOML file in the format of the module docstring.
    overrides : sequence of str, optional
        Dotted ``key=value`` edits applied after reading (see :func:`apply_overrides`).

    Returns
    -------
    SweepSpec

    Raises
    ------
    ValueError
        If the file is not valid TOML (the message gives tomllib's line and column)
        or a key holds the wrong kind of value (the message names the key).
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: invalid TOML: {err}") from None
    return parse_sweep(apply_overrides(data, overrides), source=str(path))


_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


def parse_value(text: str, item: str) -> Any:
    """Parse one override value: TOML (``1``, ``0.5``, ``true``, ``[1, 2]``), a bare word, or ``a,b,c``.

    ``item`` is the whole ``key=value`` text, quoted in error messages.
    """
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text and not text.startswith(("[", "{", '"', "'")):
        return [parse_value(part, item) for part in text.split(",")]
    if _BARE_WORD.match(text):
        return text  # so that method=mixup works without shell-quoted TOML quotes
    raise ValueError(
        f"cannot parse the value {text!r} in override {item!r}: expected a TOML value "
        f'(1, 0.5, true, "text", [1, 2]), a bare word, or comma-separated values'
    )


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """Return a copy of a TOML-shaped sweep dict with ``key=value`` edits applied.

    Keys are dotted paths: ``seeds``, ``name``, ``base.KEY``, ``grid.KEY``,
    ``methods.METHOD.KEY``.  Values are TOML (``0.5``, ``true``, ``"a b"``,
    ``[1, 2]``), bare words (``mixup``), or comma lists (``0.5,1`` is ``[0.5, 1]``).
    Setting ``base.KEY`` removes ``grid.KEY`` and vice versa, so an override can
    fix a swept setting or sweep a fixed one.

    Parameters
    ----------
    data : Mapping
        TOML-shaped sweep dict (may be empty).
    overrides : sequence of str
        The edits, in order.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If an item has no ``=``, an unknown key path, or an unparsable value.
    """
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a sequence of 'key=value' strings, got the single string {overrides!r}")
    out = copy.deepcopy(dict(data))
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value (e.g. grid.alpha=0.5,1)")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        value = parse_value(text, item)
        shape_ok = (
            (len(parts) == 1 and parts[0] in ("name", "seeds"))
            or (len(parts) == 2 and parts[0] in ("base", "grid"))
            or (len(parts) == 3 and parts[0] == "methods")
        )
        if not shape_ok or not all(parts):
            raise ValueError(
                f"override {item!r}: unknown key {path!r}; expected seeds, name, base.KEY, "
                f"grid.KEY or methods.METHOD.KEY"
            )
        if parts[0] in ("base", "grid"):
            for table in ("base", "grid"):
                out.get(table, {}).pop(parts[1], None)
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a table in the sweep")
        target[parts[-1]] = value
    return out


def spec_from_overrides(overrides: Sequence[str], spec: SweepSpec | None = None) -> SweepSpec:
    """Build a sweep spec from ``key=value`` items alone, or edit an existing spec.

    ``spec_from_overrides(["seeds=3", "grid.method=mixup,local_mixup",
    "methods.local_mixup.eps=1,2"])`` is the same spec as the equivalent TOML file.

    Parameters
    ----------
    overrides : sequence of str
        Dotted ``key=value`` items (see :func:`apply_overrides`).
    spec : SweepSpec, optional
        Starting point; an empty spec when omitted.

    Returns
    -------
    SweepSpec
    """
    start = spec.to_dict() if spec is not None else {}
    return parse_sweep(apply_overrides(start, overrides), source="overrides")


def expand_grid(spec: SweepSpec) -> list[dict]:
    """List the run configs of a sweep: base, then grid, then method settings, then seed.

    Seeds are the outer loop, so a sweep stopped early already has every
    configuration at its first seeds.  Configs that come out identical (a method
    table fixing a grid setting that does not apply to it) are listed once.

    Parameters
    ----------
    spec : SweepSpec

    Returns
    -------
    list of dict
        JSON-serialisable configs, each with a ``"seed"``.
    """
    if not isinstance(spec, SweepSpec):
        raise TypeError(f"expected a SweepSpec (from load_sweep or parse_sweep), got {type(spec).__name__}")
    configs, seen = [], set()
    for seed in spec.seeds:
        for values in itertools.product(*spec.grid.values()):
            config = {**spec.base, **dict(zip(spec.grid, values))}
            extra = spec.methods.get(config.get("method"), {})
            axes = [v if isinstance(v, list) else [v] for v in extra.values()]
            for extra_values in itertools.product(*axes):
                run = copy.deepcopy({**config, **dict(zip(extra, extra_values)), "seed": seed})
                text = canonical_json(run)
                if text not in seen:
                    seen.add(text)
                    configs.append(run)
    return configs


# -- runner --------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A run that raised; it is not stored, so running the sweep again retries it.

    Attributes
    ----------
    config : dict
    error : str
        Formatted traceback from the worker.
    """

    config: dict
    error: str


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    total : int
        Distinct configs asked for.
    skipped : int
        Configs already in the store (from earlier or concurrent sweeps).
    completed : int
        Configs run and stored now.
    failures : tuple of Failure
        Configs whose run raised.
    wall_s : float
        Seconds the sweep took.
    store : str
        Path of the store.
    """

    total: int
    skipped: int
    completed: int
    failures: tuple[Failure, ...]
    wall_s: float
    store: str

    def __str__(self) -> str:
        return (
            f"{self.total} configs: {self.skipped} already stored, {self.completed} run, "
            f"{len(self.failures)} failed, in {self.wall_s:.1f} s -> {self.store}"
        )


class SweepFailed(RuntimeError):
    """Raised by :func:`run_sweep` after all runs ended when some of them failed.

    Attributes
    ----------
    summary : SweepSummary
        Includes the failures with their tracebacks; successful runs are stored.
    """

    def __init__(self, summary: SweepSummary) -> None:
        self.summary = summary
        first = summary.failures[0]
        super().__init__(
            f"{len(summary.failures)} of {summary.total} runs failed (not stored; running the sweep "
            f"again retries them). First failure, config {first.config!r}:\n{first.error}"
        )


def _normalise_configs(configs: Iterable[Mapping[str, Any]]) -> dict[str, dict]:
    if isinstance(configs, Mapping) or isinstance(configs, (str, bytes)):
        raise TypeError(f"configs must be a list of config dicts, got {type(configs).__name__}")
    out: dict[str, dict] = {}
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise TypeError(f"configs[{i}] must be a dict, got {type(config).__name__}: {config!r}")
        seed = config.get("seed")
        if not _is_int(seed):
            raise ValueError(f"configs[{i}] must contain an integer 'seed', got {seed!r} in {dict(config)!r}")
        # The run function sees exactly what is stored (tuples become lists, etc.).
        normal = json.loads(canonical_json(dict(config)))
        out.setdefault(config_key(normal), normal)
    return out


def _check_picklable(fn: Callable, name: str) -> None:
    module = getattr(fn, "__module__", None)
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        pickle.dumps(fn)
        if module == "__main__" and main_file is None:
            raise TypeError("defined in an interactive __main__ that worker processes cannot import")
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise TypeError(
            f"{name} must be a top-level function importable by worker processes (it is sent by "
            f"reference), got {fn!r}: {err}. Move it to a module, or use workers=1."
        ) from None


def _chunks(
    pending: list[tuple[str, dict]], group_key: Callable[[dict], Hashable] | None, max_batch: int
) -> list[list[tuple[str, dict]]]:
    if group_key is None:
        return [[item] for item in pending]
    groups: dict[Hashable, list] = {}
    for key, config in pending:
        label = group_key(copy.deepcopy(config))
        try:
            groups.setdefault(label, []).append((key, config))
        except TypeError:
            raise TypeError(f"group_key must return a hashable value, got {label!r} for config {config!r}") from None
    return [group[i : i + max_batch] for group in groups.values() for i in range(0, len(group), max_batch)]


def run_sweep(
    configs: Iterable[Mapping[str, Any]],
    run_fn: Callable[[dict], dict] | None = None,
    *,
    store: ResultStore | str | os.PathLike,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    batch_fn: Callable[[list[dict]], list[dict]] | None = None,
    group_key: Callable[[dict], Hashable] | None = None,
    max_batch: int = 8,
    min_free_mb: float = 64.0,
) -> SweepSummary:
    """Run every config not yet in the store, storing each result as it finishes.

    Serves every averaged comparison of the papers (method x hyper-parameters x
    seeds).  Safe to stop and restart: finished runs are committed one by one and
    skipped next time; on Ctrl-C the runs in flight are dropped and nothing else.
    Two sweeps may share a store: a config is checked again just before it is
    sent, so they mostly split the work, and a run stored twice is kept once.

    Parameters
    ----------
    configs : iterable of dict
        JSON-serialisable configs, each with an integer ``"seed"`` (e.g. from
        :func:`expand_grid`).  Duplicates are run once.
    run_fn : callable, optional
        ``run_fn(config) -> dict`` of JSON-serialisable metrics.  A top-level
        function when ``workers > 1`` or on Ray.  Required unless ``batch_fn``.
    store : ResultStore or path
        Where results go; a path is opened (created) as a :class:`ResultStore`.
    executor : {"local", "ray"}, default "local"
        See :mod:`vicinal.lab.executors`.
    workers : int, optional
        Runs (or batches) at once.  Local: default 1, which runs in this process.
        Ray: default no limit (Ray schedules by its CPUs).
    address : str, optional
        Ray cluster address; ``None`` starts a local Ray.
    progress : bool, default True
        Show a tqdm progress bar on stderr.
    batch_fn : callable, optional
        ``batch_fn(configs) -> list[dict]`` training several compatible configs at
        once (e.g. a batched ensemble).  When given it runs every config, so
        ``run_fn`` must be None and ``group_key`` is required.  Rows are stored one
        per config, as if each had been run alone.
    group_key : callable, optional
        ``group_key(config) -> hashable``: configs with equal keys may share a batch.
    max_batch : int, default 8
        Most configs per ``batch_fn`` call.
    min_free_mb : float, default 64.0
        Free disk space required at the store before anything runs.

    Returns
    -------
    SweepSummary

    Raises
    ------
    ValueError, TypeError
        For bad arguments or an unwritable store location, before any run starts.
    SweepFailed
        After the sweep, if some runs raised (the others are stored).
    KeyboardInterrupt
        On Ctrl-C, after stopping the workers.
    """
    items = _normalise_configs(configs)
    if batch_fn is None:
        if not callable(run_fn):
            raise TypeError(f"run_fn must be callable (or give batch_fn), got {run_fn!r}")
        if group_key is not None:
            raise ValueError("group_key is only used with batch_fn; give batch_fn or drop group_key")
    else:
        if run_fn is not None:
            raise ValueError("give run_fn or batch_fn, not both: with batch_fn every config goes to batch_fn")
        if not callable(batch_fn):
            raise TypeError(f"batch_fn must be callable, got {batch_fn!r}")
        if not callable(group_key):
            raise ValueError(
                f"batch_fn needs group_key(config) -> hashable to tell which configs can share a batch, "
                f"got {group_key!r}"
            )
    if not _is_int(max_batch) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive int, got {max_batch!r}")
    fn, name = (run_fn, "run_fn") if batch_fn is None else (batch_fn, "batch_fn")

    runner = make_executor(executor, workers=workers, address=address)
    if isinstance(runner, LocalExecutor) and runner.workers > 1:
        _check_picklable(fn, name)
    if isinstance(store, ResultStore):
        check_store_location(store.path, min_free_mb=min_free_mb)
        owned = None
    elif isinstance(store, (str, os.PathLike)):
        owned = store = ResultStore(check_store_location(store, min_free_mb=min_free_mb))
    else:
        raise TypeError(f"store must be a ResultStore or a path, got {type(store).__name__}: {store!r}")

    try:
        return _run(items, fn, batch_fn is not None, store, runner, progress, group_key, max_batch)
    finally:
        if owned is not None:
            owned.close()


def _run(items, fn, batched, store, runner, progress, group_key, max_batch) -> SweepSummary:
    t0 = time.perf_counter()
    done = store.finished_keys()
    pending = [(key, config) for key, config in items.items() if key not in done]
    skipped = [len(items) - len(pending)]
    failures: list[Failure] = []
    completed = 0
    bar = tqdm(total=len(pending), disable=not progress, unit="run", desc="sweep", dynamic_ncols=True)

    def tasks() -> Iterator[Task]:
        for chunk in _chunks(pending, group_key if batched else None, max_batch):
            todo = [config for key, config in chunk if not store.has(key)]  # a concurrent sweep may have run it
            if len(todo) < len(chunk):
                skipped[0] += len(chunk) - len(todo)
                bar.update(len(chunk) - len(todo))
            if todo:
                yield Task(fn, tuple(todo), batched)

    try:
        with bar, closing(runner.map_unordered(tasks())) as outcomes:
            for outcome_list in outcomes:
                for out in outcome_list:
                    if out.error is not None:
                        failures.append(Failure(out.config, out.error))
                        continue
                    store.put(
                        out.config,
                        out.metrics,
                        wall_s=out.wall_s,
                        started_at=out.started_at,
                        finished_at=out.finished_at,
                        batch_size=out.batch_size,
                        hostname=out.hostname,
                    )
                    completed += 1
                bar.update(len(outcome_list))
                if failures:
                    bar.set_postfix(failed=len(failures))
    except KeyboardInterrupt:
        print(
            f"\nsweep interrupted: {completed} runs stored in this session, runs in flight dropped; "
            f"run the same command again to resume ({store.path})",
            file=sys.stderr,
        )
        raise
    wall_s = time.perf_counter() - t0
    summary = SweepSummary(len(items), skipped[0], completed, tuple(failures), wall_s, str(store.path))
    if failures:
        raise SweepFailed(summary)
    return summary
