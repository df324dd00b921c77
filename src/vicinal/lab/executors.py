"""Where sweep runs execute: in this process, in local worker processes, or on Ray.

An executor takes an iterable of :class:`Task` (one config, or a batch of configs
for a batched trainer) and yields each task's list of :class:`Outcome` as soon as
it finishes, keeping a bounded number of tasks in flight.  Tasks are pulled from
the iterable lazily, so the caller can skip work that another sweep finished in
the meantime.  Both executors call the same :func:`run_task`, so the same seeds
give the same rows wherever they run.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import json
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

__all__ = ["LocalExecutor", "Outcome", "RayExecutor", "Task", "make_executor", "run_task"]

_MP_CONTEXTS = ("spawn", "forkserver")


@dataclass(frozen=True)
class Task:
    """A unit of work sent to a worker.

    Attributes
    ----------
    fn : callable
        ``run_fn(config) -> dict`` when ``batched`` is False, else
        ``batch_fn(configs) -> list[dict]``.  Must be importable by reference
        (a top-level function) to travel to another process.
    configs : tuple of dict
        One config, or several compatible ones for a batched call.
    batched : bool
        Whether ``fn`` takes the list of configs.
    """

    fn: Callable[..., Any]
    configs: tuple[dict, ...]
    batched: bool


@dataclass(frozen=True)
class Outcome:
    """Result of one config within a task.

    Attributes
    ----------
    config : dict
        The config as sent.
    metrics : dict or None
        The run's metrics, None if it failed.
    error : str or None
        Formatted traceback if the run failed, else None.
    started_at, finished_at : str
        ISO 8601 UTC timestamps of the call.
    wall_s : float
        Wall-clock seconds of the call (of the whole batch for batched calls).
    batch_size : int
        Number of configs in the call.
    hostname : str
        Machine the call ran on.
    """

    config: dict
    metrics: dict | None
    error: str | None
    started_at: str
    finished_at: str
    wall_s: float
    batch_size: int
    hostname: str


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _checked_metrics(metrics: Any, config: dict) -> dict:
    if not isinstance(metrics, dict):
        raise TypeError(
            f"run function returned {type(metrics).__name__}, expected a dict of metrics, for config {config!r}"
        )
    try:
        # A JSON round trip gives identical rows from every executor (tuples -> lists).
        return json.loads(json.dumps(metrics))
    except TypeError as err:
        raise TypeError(
            f"run function returned metrics that are not JSON-serialisable ({err}) for config {config!r}"
        ) from None


def run_task(task: Task) -> list[Outcome]:
    """Run one task and time it; failures become outcomes instead of exceptions.

    An ``Exception`` raised by the run function (or a malformed return value) is
    caught and reported in :attr:`Outcome.error` for every config of the task, so
    one bad run does not stop a sweep.  ``KeyboardInterrupt`` is not caught.

    Parameters
    ----------
    task : Task
        The work to do.

    Returns
    -------
    list of Outcome
        One per config, in the task's order.
    """
    configs = list(task.configs)
    started, t0 = _utc_now(), time.perf_counter()
    try:
        # Copies: a run function that edits its config must not change what is stored.
        if task.batched:
            results = task.fn(copy.deepcopy(configs))
            if not isinstance(results, (list, tuple)) or len(results) != len(configs):
                raise TypeError(
                    f"batch function returned {type(results).__name__} of length "
                    f"{len(results) if hasattr(results, '__len__') else '?'}, expected a list of "
                    f"{len(configs)} metric dicts (one per config, same order)"
                )
        else:
            results = [task.fn(copy.deepcopy(configs[0]))]
        metrics, error = [_checked_metrics(m, c) for m, c in zip(results, configs)], None
    except Exception:
        metrics, error = [None] * len(configs), traceback.format_exc()
    wall_s, finished, host = time.perf_counter() - t0, _utc_now(), socket.gethostname()
    return [Outcome(c, m, error, started, finished, wall_s, len(configs), host) for c, m in zip(configs, metrics)]


#: Seconds between a worker's checks that the sweep process is still alive.
PARENT_POLL_S = 0.5


def _exit_when_orphaned(parent_pid: int) -> None:
    """Exit this worker as soon as the process that started it (the sweep, or under "forkserver" the
    sweep's fork server, which exits with it) is gone.

    A parent killed by SIGKILL (or SIGTERM outside the CLI) cannot stop its pool, and an orphaned
    worker would keep training (and keep multiprocessing's resource tracker alive, which exits once
    every process holding its pipe has). Polling ``os.getppid`` works on every POSIX system; the
    worker is reparented when its parent dies.
    """
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _init_worker(threads: int, parent_pid: int | None) -> None:
    # Ctrl-C reaches the whole process group; only the parent should react, by
    # terminating the workers, so they do not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # "spawn" passes the sweep's pid, so a worker that starts after the sweep died exits at once; a
    # "forkserver" worker is a child of the fork server, whose pid only the worker can read.
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid() if parent_pid is None else parent_pid,),
                     name="vicinal-parent-watch", daemon=True).start()
    # Each worker gets its share of the cores: N workers x all-core torch thread pools
    # oversubscribe the machine and make small models many times slower (Ray does
    # the same through OMP_NUM_THREADS).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _check_workers(workers: Any, allow_none: bool) -> None:
    if workers is None and allow_none:
        return
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise ValueError(f"workers must be {expected}, got {workers!r}")


class LocalExecutor:
    """Run tasks on this machine: in-process for one worker, else a process pool.

    Parameters
    ----------
    workers : int, default 1
        Number of runs at once.  ``1`` runs in this process (easy to debug, no
        pickling); more uses a :class:`concurrent.futures.ProcessPoolExecutor`.
    mp_context : {"spawn", "forkserver"}, default "spawn"
        Start method of the worker processes ("fork" is unsafe with torch threads).
    threads : int, optional
        Torch threads in each worker process; default ``cpu_count // workers``
        (at least 1), so that the workers together use each core once.  Not used
        when ``workers == 1`` (this process keeps its own setting).
    """

    def __init__(self, workers: int = 1, *, mp_context: str = "spawn", threads: int | None = None) -> None:
        _check_workers(workers, allow_none=False)
        if mp_context not in _MP_CONTEXTS:
            raise ValueError(f"mp_context must be one of {_MP_CONTEXTS}, got {mp_context!r}")
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // workers)
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        self.workers = workers
        self.mp_context = mp_context
        self.threads = threads

    def map_unordered(self, tasks: Iterable[Task]) -> Iterator[list[Outcome]]:
        """Yield each task's outcomes as it finishes.

        Parameters
        ----------
        tasks : iterable of Task
            Pulled lazily, ``workers`` at a time.

        Yields
        ------
        list of Outcome
        """
        if self.workers == 1:
            for task in tasks:
                yield run_task(task)
            return
        context = multiprocessing.get_context(self.mp_context)
        pool = cf.ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker,
            initargs=(self.threads, os.getpid() if self.mp_context == "spawn" else None)
        )
        tasks = iter(tasks)
        in_flight: set[cf.Future] = set()
        try:
            while True:
                for task in tasks:
                    in_flight.add(pool.submit(run_task, task))
                    if len(in_flight) >= self.workers:
                        break
                if not in_flight:
                    break
                done, in_flight = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield _result_or_explain(future)
        except BaseException:  # Ctrl-C, a closed generator, a dead worker
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


def _result_or_explain(future: cf.Future) -> list[Outcome]:
    try:
        return future.result()
    except cf.process.BrokenProcessPool as err:
        raise RuntimeError(
            "a sweep worker process died: killed, out of memory, crashed in native code, or the "
            "main script starts the sweep outside `if __name__ == '__main__':` (spawned workers "
            "re-import it). Finished runs are stored: run the sweep again to resume"
        ) from err


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now, dropping runs in flight."""
    terminate_workers = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate_workers is not None:
        terminate_workers()
        return
    processes = list((pool._processes or {}).values())  # no public API before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "executor='ray' needs the optional Ray package; install it with: pip install 'vicinal[ray]'"
        ) from err
    return ray


class RayExecutor:
    """Run tasks as Ray remote calls, on a local Ray or an existing cluster.

    If Ray is already initialised in this process it is used as it is (and left
    running); otherwise it is started for the sweep and shut down afterwards.

    Parameters
    ----------
    address : str, optional
        ``None`` starts a local Ray; otherwise the cluster address given to
        ``ray.init`` (e.g. ``"auto"`` or ``"ray://head:10001"``).
    workers : int, optional
        Largest number of runs in flight; ``None`` submits everything and lets Ray
        schedule by its CPUs.
    num_cpus : float, default 1
        CPUs Ray reserves for each task.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None, num_cpus: float = 1) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a str or None, got {type(address).__name__}: {address!r}")
        _check_workers(workers, allow_none=True)
        if not isinstance(num_cpus, (int, float)) or isinstance(num_cpus, bool) or num_cpus <= 0:
            raise ValueError(f"num_cpus must be a positive number, got {num_cpus!r}")
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self._ray = _import_ray()  # fail at construction, before any run starts

    def map_unordered(self, tasks: Iterable[Task]) -> Iterator[list[Outcome]]:
        """Yield each task's outcomes as it finishes.

        Parameters
        ----------
        tasks : iterable of Task
            Pulled lazily, at most ``workers`` in flight when ``workers`` is set.

        Yields
        ------
        list of Outcome
        """
        ray = self._ray
        started_here = not ray.is_initialized()
        if started_here:
            if self.address is None:
                ray.init(include_dashboard=False)
            else:
                _check_reachable(self.address)
                ray.init(address=self.address)
        remote_run = ray.remote(num_cpus=self.num_cpus)(run_task)
        tasks = iter(tasks)
        limit = self.workers if self.workers is not None else float("inf")
        in_flight: list = []
        try:
            while True:
                for task in tasks:
                    in_flight.append(remote_run.remote(task))
                    if len(in_flight) >= limit:
                        break
                if not in_flight:
                    break
                done, in_flight = ray.wait(in_flight, num_returns=1)
                yield ray.get(done[0])
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started_here:
                ray.shutdown()


#: Seconds to wait for a Ray cluster's port before giving up (ray.init itself retries for minutes).
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """Fail within :data:`CONNECT_TIMEOUT_S` with a message when a ``host:port`` Ray address does not answer.

    ``ray.init`` keeps retrying an unreachable GCS address for minutes without a word; a TCP connection
    to the port says at once whether anything listens there. ``"auto"`` and addresses without a port are
    left to Ray.
    """
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} within {CONNECT_TIMEOUT_S:g} s "
            f"({type(err).__name__}: {err}); start it with `ray start --head`, check the address "
            f"(`ray status` on the head node), or drop --address to start a local Ray"
        ) from None


def make_executor(
    executor: str = "local", *, workers: int | None = None, address: str | None = None
) -> LocalExecutor | RayExecutor:
    """Build an executor from its name, as ``run_sweep`` and the command line do.

    Parameters
    ----------
    executor : {"local", "ray"}, default "local"
        Which executor.
    workers : int, optional
        Runs at once: default 1 for "local"; for "ray", ``None`` means no limit.
    address : str, optional
        Ray cluster address (only for "ray"; ``None`` starts a local Ray).

    Returns
    -------
    LocalExecutor or RayExecutor

    Raises
    ------
    ValueError
        For an unknown executor name, a bad ``workers``, or an ``address`` given
        to the local executor.
    ImportError
        For "ray" when Ray is not installed (names ``pip install 'vicinal[ray]'``).
    """
    if executor == "local":
        if address is not None:
            raise ValueError(f"address={address!r} only applies to executor='ray'")
        return LocalExecutor(1 if workers is None else workers)
    if executor == "ray":
        return RayExecutor(address, workers=workers)
    raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
