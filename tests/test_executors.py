"""Executors: run_task outcomes, construction errors, Ctrl-C with a pool, Ray == local."""

import json
import os
import signal
import sys
from pathlib import Path

import pytest

import sweep_fakes
from sweep_fakes import fake_batch, fake_metrics, fake_run, small_grid, start_sweeps, wait_for_rows
from vicinal.lab.executors import LocalExecutor, RayExecutor, Task, make_executor, run_task
from vicinal.lab.store import ResultStore
from vicinal.lab.sweep import run_sweep


def returns(value):
    return lambda config: value


def test_run_task_times_a_run_and_copies_its_config():
    config = {"seed": 4, "sleep": 0.01}

    def editing_run(c):
        c["seed"] = -1  # must not change what gets stored
        return {"error": 0.5, "pair": (1.0, 2.0)}

    (out,) = run_task(Task(editing_run, (config,), batched=False))
    assert out.config == {"seed": 4, "sleep": 0.01} and out.error is None
    assert out.metrics == {"error": 0.5, "pair": [1.0, 2.0]}  # JSON round trip, as on any executor
    assert out.wall_s >= 0 and out.started_at <= out.finished_at and out.batch_size == 1 and out.hostname


@pytest.mark.parametrize(
    ("task", "match"),
    [
        (Task(fake_run, ({"seed": 1, "fail_seed": 1},), False), "RuntimeError: planned failure for seed 1"),
        (Task(returns([0.1]), ({"seed": 1},), False), "returned list, expected a dict of metrics"),
        (Task(returns({"acc": object()}), ({"seed": 1},), False), "metrics that are not JSON-serialisable"),
        (Task(returns([{}]), ({"seed": 1}, {"seed": 2}), True), "returned list of length 1, expected a list of 2"),
    ],
)
def test_run_task_turns_failures_into_outcomes(task, match):
    outcomes = run_task(task)
    assert len(outcomes) == len(task.configs)
    assert all(o.metrics is None and o.error is not None for o in outcomes)
    assert match in outcomes[0].error


def test_run_task_batched_keeps_order():
    configs = tuple(small_grid(3))
    outcomes = run_task(Task(fake_batch, configs, batched=True))
    assert [o.config for o in outcomes] == list(configs)
    assert [o.metrics for o in outcomes] == [fake_metrics(c) for c in configs]
    assert {o.batch_size for o in outcomes} == {3}


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: LocalExecutor(0), ValueError, "workers must be a positive int, got 0"),
        (lambda: LocalExecutor(2, mp_context="fork"), ValueError, "mp_context must be one of .* got 'fork'"),
        (lambda: LocalExecutor(2, threads=0), ValueError, "threads must be a positive int or None, got 0"),
        (lambda: make_executor("local", address="auto"), ValueError, "address='auto' only applies to executor='ray'"),
        (lambda: make_executor("dask"), ValueError, "executor must be 'local' or 'ray', got 'dask'"),
        (lambda: RayExecutor(address=6379), TypeError, "address must be a str or None, got int"),
        (lambda: RayExecutor(workers=1.5), ValueError, r"workers must be a positive int or None, got 1.5"),
    ],
)
def test_bad_executor_arguments_are_named(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_missing_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'vicinal\[ray\]'"):
        run_sweep(small_grid(1), fake_run, store=tmp_path / "r.db", executor="ray", progress=False)
    assert not (tmp_path / "r.db").exists()


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # an unreaped zombie has exited


def test_ctrl_c_stops_a_process_pool_sweep_and_its_workers(tmp_path):
    store_path, markers = tmp_path / "r.db", tmp_path / "markers"
    markers.mkdir()
    (process,) = start_sweeps(store_path, markers, (40, 0.3, 2, 0))
    wait_for_rows(store_path, 2, process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "sweep interrupted" in err
    marks = [json.loads(p.read_text()) for p in markers.glob("run-*")]
    worker_pids = {mark["pid"] for mark in marks}
    assert 1 <= len(worker_pids) <= 2 and process.pid not in worker_pids  # ran in pool workers
    assert {mark["threads"] for mark in marks} == {max(1, os.cpu_count() // 2)}  # cores shared, not oversubscribed
    assert not any(_alive(pid) for pid in worker_pids)
    with ResultStore(store_path) as store:
        rows = store.rows()
    assert 2 <= len(rows) < 40
    assert all(r.metrics == fake_metrics(r.config) for r in rows)


@pytest.mark.ray
def test_ray_executor_gives_the_same_rows_as_the_local_one(tmp_path, monkeypatch):
    import ray
    # Ray workers import the run function by reference, like a user's installed trainer.
    monkeypatch.setenv("PYTHONPATH", str(Path(sweep_fakes.__file__).parent))
    configs = small_grid(6)
    run_sweep(configs, fake_run, store=tmp_path / "local.db", progress=False)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = run_sweep(configs, fake_run, store=tmp_path / "ray.db", executor="ray", progress=False)
        assert ray.is_initialized()  # a Ray started by the caller is left running
    finally:
        ray.shutdown()
    assert summary.completed == 6
    with ResultStore(tmp_path / "local.db") as local, ResultStore(tmp_path / "ray.db") as remote:
        local_rows = {r.key: (r.config, r.metrics) for r in local.rows()}
        ray_rows = {r.key: (r.config, r.metrics) for r in remote.rows()}
    assert ray_rows == local_rows and len(local_rows) == 6


@pytest.mark.parametrize("mp_context", ["spawn", "forkserver"])
def test_process_pool_runs_tasks_under_each_start_method(mp_context):
    """The parent watch must follow the worker's own parent: under forkserver that is the fork server, and
    watching the sweep's pid made every worker exit at once (a broken pool)."""
    tasks = [Task(fake_run, ({"seed": s},), batched=False) for s in range(3)]
    outcomes = [o for batch in LocalExecutor(2, mp_context=mp_context).map_unordered(tasks) for o in batch]
    assert sorted(o.config["seed"] for o in outcomes) == [0, 1, 2] and all(o.error is None for o in outcomes)
