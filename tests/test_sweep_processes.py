"""Killing a sweep leaves no process behind (issue 13): real `vicinal sweep --workers 2` subprocesses are
stopped with SIGKILL and SIGTERM while their spawn workers train, and every descendant (the workers and
multiprocessing's resource tracker) must be gone. Waits are bounded; nothing asserts a duration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 60.0  # generous bound on every wait, so a broken build fails instead of hanging


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine (Linux /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def _descendants(pid: int) -> set[int]:
    table, found, frontier = _children(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT_S:g} s waiting for {what}")
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_sweep_leaves_no_worker_or_resource_tracker(tmp_path, signum):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "vicinal.lab.cli", "sweep", "--store", str(tmp_path / "r.sqlite"),
               "--workers", "2", "--no-batched", "--set", "seeds=4", "epochs=100000", "batch_size=8",
               "dataset_params.n_per_class=40", "model_params.widths=[8]"]
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Both workers started (and the resource tracker with them): at least three descendants.
        _wait_until(lambda: len(_descendants(sweep.pid)) >= 3 or sweep.poll() is not None, "the spawn workers")
        assert sweep.poll() is None, sweep.stderr.read().decode()
        spawned = _descendants(sweep.pid)
        sweep.send_signal(signum)
        sweep.wait(timeout=WAIT_S)
        _wait_until(lambda: not any(_alive(pid) for pid in spawned),
                    f"processes {sorted(p for p in spawned if _alive(p))} to exit")
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        for pid in _descendants(sweep.pid) if sweep.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
    if signum == signal.SIGTERM:  # stopped like Ctrl-C: the message says how to resume
        assert sweep.returncode == 130
        assert b"interrupted" in sweep.stderr.read()
