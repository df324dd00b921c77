"""The resumable sweep runner: run every config the result store lacks, store each result as it ends.

:func:`run_sweep` skips configs already stored, groups compatible configs into
batches when given a ``batch_fn``, sends the work to an executor (local
processes or Ray, see :mod:`vicinal.lab.executors`), and can be stopped
(Ctrl-C, SIGKILL) and started again.  Runs that raise are collected as
:class:`Failure` rows and reported together in :class:`SweepFailed`.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping

from tqdm import tqdm

from ..executors import LocalExecutor, Task, make_executor
from ..store import ResultStore, canonical_json, check_store_location, config_key
from .spec import _is_int

__all__ = ["Failure", "SweepFailed", "SweepSummary", "run_sweep"]


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
    canonical: Callable[[dict], dict] | None = None,
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
    canonical : callable, optional
        ``canonical(config) -> config`` in its one stored form (the lab passes
        :func:`vicinal.lab.config.canonical_config`). Stored rows are also matched
        through it, so a row written before a spelling was canonicalised (``alpha = 1``
        stored as an int) still counts as done instead of being trained again.

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
    if canonical is not None:
        if not callable(canonical):
            raise TypeError(f"canonical must be callable or None, got {canonical!r}")
        configs = [canonical(dict(config)) for config in configs]
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
        return _run(items, fn, batch_fn is not None, store, runner, progress, group_key, max_batch, canonical)
    finally:
        if owned is not None:
            owned.close()


def _finished(store: ResultStore, canonical: Callable[[dict], dict] | None, wanted) -> set[str]:
    """Keys of stored runs, and with ``canonical`` also the keys of their canonical forms. The rows are read
    and re-validated only when some ``wanted`` key is not stored as it is (an older spelling may hold it)."""
    done = store.finished_keys()
    if canonical is None or all(key in done for key in wanted):
        return done
    done.update(stored_key(record, canonical) for record in store.rows())
    return done


def stored_key(record, canonical: Callable[[dict], dict]) -> str:
    """The key of a stored row's canonical form, or its own key when this version no longer accepts its
    settings (rows written before canonical numbers keep matching their configs)."""
    try:
        return config_key(canonical(record.config))
    except (ValueError, TypeError):
        return record.key


def _run(items, fn, batched, store, runner, progress, group_key, max_batch, canonical) -> SweepSummary:
    t0 = time.perf_counter()
    done = _finished(store, canonical, items)
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
