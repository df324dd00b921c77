"""Fake run functions for the store, sweep and executor tests.

They live in an importable module (not in a test file) so that worker processes
(spawn, Ray) can import them by reference, exactly like a real trainer.  A config
may carry ``marker_dir``: every call then leaves one file there, so tests can
count how many times each config really ran.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import torch

from vicinal.lab.store import ResultStore, canonical_json, config_key


def fake_metrics(config: dict) -> dict:
    """Deterministic metrics of a config: same config (hence same seed), same numbers."""
    rng = random.Random(canonical_json(config))
    return {"error": rng.random(), "curve": [rng.random() for _ in range(3)]}


def _mark(config: dict, kind: str, payload: object) -> None:
    marker_dir = config.get("marker_dir")
    if marker_dir:
        name = f"{kind}-{config_key(config)}-{uuid.uuid4().hex}"
        Path(marker_dir, name).write_text(json.dumps(payload))


def fake_run(config: dict) -> dict:
    """Run function: leaves a marker, sleeps ``config['sleep']`` s, may fail on ``fail_seed``."""
    _mark(config, "run", {"pid": os.getpid(), "threads": torch.get_num_threads()})
    time.sleep(config.get("sleep", 0.0))
    if config.get("fail_seed") == config["seed"]:
        raise RuntimeError(f"planned failure for seed {config['seed']}")
    return fake_metrics(config)


def fake_batch(configs: list[dict]) -> list[dict]:
    """Batch function: one marker per call listing its configs, then fake_metrics of each."""
    _mark(configs[0], "batch", configs)
    return [fake_metrics(c) for c in configs]


def count_markers(marker_dir: Path, config: dict, kind: str = "run") -> int:
    """Number of calls that ran ``config`` (for configs carrying ``marker_dir``)."""
    return len(list(Path(marker_dir).glob(f"{kind}-{config_key(config)}-*")))


def small_grid(n: int, marker_dir: str | None = None, sleep: float = 0.0, start: int = 0) -> list[dict]:
    """``n`` configs with seeds ``start .. start+n-1`` (two methods alternating)."""
    configs = []
    for seed in range(start, start + n):
        config = {"method": ("mixup", "local_mixup")[seed % 2], "alpha": 1.0, "sleep": sleep, "seed": seed}
        if marker_dir is not None:
            config["marker_dir"] = marker_dir
        configs.append(config)
    return configs


def write_rows(path: str, start: int, n: int, barrier=None) -> None:
    """Put ``n`` rows with seeds from ``start`` as fast as possible (store contention test)."""
    with ResultStore(path) as store:
        if barrier is not None:
            barrier.wait(timeout=120)  # all writers start writing at the same moment
        for seed in range(start, start + n):
            config = {"method": "mixup", "seed": seed}
            store.put(config, fake_metrics(config), wall_s=0.0, started_at="t0", finished_at="t1")


def start_sweeps(store, marker_dir, *sweeps) -> list[subprocess.Popen]:
    """Start sweep subprocesses, each given as (n, sleep, workers, start); release them together.

    Each runs in its own session, so a test can signal its whole process group.
    """
    processes = []
    for n, sleep, workers, start in sweeps:
        cmd = [sys.executable, __file__, str(store), str(marker_dir), str(n), str(sleep), str(workers), str(start)]
        processes.append(
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        )
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.communicate()
    Path(marker_dir, "go").touch()
    return processes


def wait_for_rows(store_path: Path, n: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll until the store holds ``n`` rows; fail if ``process`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(store_path).exists():
            with ResultStore(store_path) as store:
                if len(store) >= n:
                    return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows after {timeout} s")


def sweep_main(argv: list[str]) -> None:
    """Command line for subprocess tests: STORE MARKER_DIR N SLEEP WORKERS [START].

    Prints "ready", then waits for a file named ``go`` in MARKER_DIR before sweeping.
    """
    from vicinal.lab.sweep import run_sweep

    store, marker_dir, n, sleep, workers, *rest = argv
    configs = small_grid(int(n), marker_dir, float(sleep), int(rest[0]) if rest else 0)
    go = Path(marker_dir, "go")
    print("ready", flush=True)
    while not go.exists():  # lets a test start several sweeps at the same moment
        time.sleep(0.01)
    run_sweep(configs, fake_run, store=store, workers=int(workers), progress=False)


if __name__ == "__main__":
    import sweep_fakes  # re-import by name so workers pickle sweep_fakes.fake_run, not __main__.fake_run

    sweep_fakes.sweep_main(sys.argv[1:])
