"""Interleaved timing: every candidate is timed in the same rounds, so load on the machine hits all alike.

The machine running a benchmark is rarely idle. Timing candidate A for a minute and then candidate B
for a minute compares two different machines; running them in turn, round after round, and taking
the median of each compares them under the same load. Ratios are medians of per-round ratios.

Two clocks are kept for every run: wall-clock time and the process's CPU time (all threads). On a
shared CPU the wall clock also counts the time a run waits for a core; the CPU clock does not, so
CPU-device ratios are taken on it (on CUDA, where the work is not CPU time, on the wall clock).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (a no-op on the CPU), so timings cover the work itself."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def default_clock(device: torch.device | str) -> str:
    """The clock ratios are taken on: "cpu" (process CPU time) on the CPU, "wall" on an accelerator."""
    return "cpu" if torch.device(device).type == "cpu" else "wall"


def time_interleaved(cases: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 2,
                     device: torch.device | str = "cpu", repeats: Mapping[str, int] | None = None,
                     ) -> dict[str, dict[str, list[float]]]:
    """Time each case once per round, cases in turn, and return the seconds of every run on both clocks.

    Parameters
    ----------
    cases : mapping of name -> callable
        Zero-argument callables; the return value is ignored.
    rounds : int
        Number of rounds (>= 1). Every case runs once per round unless ``repeats`` says fewer; the
        order of the cases is rotated by one each round.
    warmup : int
        Untimed runs of every case before the first round (caches, lazy imports, allocator).
    device : torch.device or str
        Synchronised before and after each timed run when it is a CUDA device.
    repeats : mapping of name -> int, optional
        Cases too slow to run every round (a training step) run this many times, spread evenly
        over the rounds (at most ``rounds``).

    Returns
    -------
    dict of clock -> dict of name -> list of float
        ``{"wall": ..., "cpu": ...}``: seconds of each timed run, in round order, on each clock.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    repeats = dict(repeats or {})
    unknown = set(repeats) - set(cases)
    if unknown:
        raise ValueError(f"repeats names unknown cases: {sorted(unknown)}")
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    # The rounds in which each case runs: all of them, or ``repeats[name]`` evenly spread ones.
    schedule = {name: set(range(rounds)) if name not in repeats
                else {j * rounds // min(repeats[name], rounds) for j in range(min(repeats[name], rounds))}
                for name in cases}
    seconds = {clock: {name: [] for name in cases} for clock in CLOCKS}
    names = list(cases)
    for r in range(rounds):
        # Rotate the order each round: a case's cost can depend on what ran just before it
        # (memory the allocator kept or returned), and every position should be shared alike.
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if r not in schedule[name]:
                continue
            fn = cases[name]
            synchronize(device)
            start = {clock: read() for clock, read in CLOCKS.items()}
            fn()
            synchronize(device)
            for clock, read in CLOCKS.items():
                seconds[clock][name].append(read() - start[clock])
    return seconds


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator[r] / denominator[r]`` (both timed in the same rounds)."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("paired_ratio needs two non-empty lists of run times from the same rounds")
    return statistics.median(n / d for n, d in zip(numerator, denominator))
