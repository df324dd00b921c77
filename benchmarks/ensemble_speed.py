"""Runs per second: one batched ensemble (``lab.ensemble.train_batched``) against one-at-a-time ``trainer.train``.

Issue 5. The spirals MLP 2 -> 100 -> 100 -> 2 of Baena et al. 2022 (Sec. V-A: Adam, lr 0.01,
batch 20, StepLR(300, 0.1)) is trained for the same number of steps both ways, in this one process,
in ``--rounds`` interleaved rounds: each round trains its share of the ``--sequential`` runs with
``trainer.train`` (each loads its data, trains, evaluates), then one batched run of ``--members``
members (same work per member). Methods: ERM, Local Mixup (threshold graph, eps = 1) and k-Mixup
(k = 4). Reported: runs per second each way, the speed-up (median of the rounds' ratios, with their
range), the process's peak resident memory (``resource.getrusage``), the load average, and the
median / largest difference in test NLL between the two ways over the members both trained. Rates
are given per wall second and per CPU second of this process (``time.process_time``); with one
torch thread the CPU-time ratio is the one that does not depend on other users' load, with two the
CPU clock also counts threads waiting for each other.

With ``--pool``, the batch is also compared with the fairer baseline on a multi-core machine:
one-at-a-time runs in one worker process per core (what ``vicinal sweep --workers N`` does), one
torch thread each.

Also timed: the stacked forward + backward of 100 MLPs by ``torch.baddbmm`` against
``torch.func.functional_call`` under ``torch.vmap`` (why the ensemble uses the former), and a Local
Mixup Fig. 3 sweep (10 eps values x ``--fig3-seeds`` seeds, the authors' batch size per eps, see
``/work/shared/notes/reference-implementations.md``) for the paper's 200 epochs (``--fig3-epochs``).
Given two epoch counts instead (e.g. ``--fig3-epochs 1 3``), both sweeps are timed and a 200-epoch
EXTRAPOLATION (a straight line through them) is printed as well, labelled as such.

Usage::

    python benchmarks/ensemble_speed.py [--quick] [--threads 2] [--rounds 4] [--fig3-epochs 200] [--no-fig3]

Writes ``benchmarks/results/ensemble_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from vicinal.lab.ensemble import train_batched
from vicinal.lab.models import build_model
from vicinal.lab.trainer import train

RESULTS = Path(__file__).parent / "results" / "ensemble_speed.json"
# Authors' spirals notebook: eps and the batch size that keeps about as many pairs per step.
FIG3_EPS = (0.0, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 10.0)
FIG3_BATCH = (20, 241, 103, 50, 33, 25, 22, 20, 20, 20)
BASE = dict(dataset="spirals", model="mlp", model_params={"widths": [100, 100]}, optimizer="adam", lr=0.01,
            schedule="step", step_size=300, gamma=0.1, batch_size=20, eval_rescaled=False)
METHODS = {"erm": dict(method="erm"), "local_mixup": dict(method="local_mixup", eps=1.0),
           "kmixup": dict(method="kmixup", k=4)}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    """Result, wall seconds and CPU seconds of this process (the latter barely moves with other users' load)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def compare_method(name: str, epochs: int, n_sequential: int, n_members: int, rounds: int) -> dict:
    """Same configs both ways; runs per second, speed-up, memory and the agreement of the two.

    Interleaved rounds: each round trains its share of the one-at-a-time runs, then the whole batch,
    and the speed-up of the round compares the two; the reported speed-up is the median over rounds,
    so a slow spell of the (shared) machine hits both sides of a ratio.
    """
    configs = [dict(BASE, **METHODS[name], epochs=epochs, seed=seed) for seed in range(n_members)]
    share = [configs[r * n_sequential // rounds:(r + 1) * n_sequential // rounds] for r in range(rounds)]
    sequential, per_round = [], []
    totals = dict(seq_s=0.0, seq_cpu=0.0, batch_s=0.0, batch_cpu=0.0)
    for part in share:
        results, seq_s, seq_cpu = timed(lambda: [train(c) for c in part])
        batched, batch_s, batch_cpu = timed(lambda: train_batched(configs))
        sequential += results
        for key, value in zip(totals, (seq_s, seq_cpu, batch_s, batch_cpu)):
            totals[key] += value
        per_round.append(dict(sequential_runs=len(part), sequential_s=seq_s, sequential_cpu_s=seq_cpu,
                              batched_s=batch_s, batched_cpu_s=batch_cpu,
                              speedup_wall=(n_members / batch_s) / (len(part) / seq_s),
                              speedup_cpu=(n_members / batch_cpu) / (len(part) / seq_cpu)))
    nll_gaps = sorted(abs(a["test_nll"] - b["test_nll"]) for a, b in zip(sequential, batched))
    runs_batched = n_members * rounds
    row = dict(method=name, epochs=epochs, steps_per_run=batched[0]["steps"], sequential_runs=n_sequential,
               batched_members=n_members, rounds=rounds, per_round=per_round,
               sequential_runs_per_s=n_sequential / totals["seq_s"],
               sequential_runs_per_cpu_s=n_sequential / totals["seq_cpu"],
               batched_runs_per_s=runs_batched / totals["batch_s"],
               batched_runs_per_cpu_s=runs_batched / totals["batch_cpu"],
               speedup_wall=statistics.median(r["speedup_wall"] for r in per_round),
               speedup_cpu=statistics.median(r["speedup_cpu"] for r in per_round),
               speedup_wall_range=(min(r["speedup_wall"] for r in per_round),
                                   max(r["speedup_wall"] for r in per_round)),
               peak_rss_mib=peak_rss_mib(),
               median_test_nll_gap=nll_gaps[len(nll_gaps) // 2], max_test_nll_gap=nll_gaps[-1],
               loadavg=os.getloadavg())
    low, high = row["speedup_wall_range"]
    print(f"{name:12s} sequential {row['sequential_runs_per_s']:6.2f} runs/s wall, "
          f"{row['sequential_runs_per_cpu_s']:6.2f} per CPU-s ({n_sequential} runs) | batched "
          f"{row['batched_runs_per_s']:6.2f} runs/s wall, {row['batched_runs_per_cpu_s']:6.2f} per CPU-s "
          f"({n_members} members x {rounds} rounds) | speed-up {row['speedup_wall']:.1f}x wall (rounds "
          f"{low:.1f}-{high:.1f}), {row['speedup_cpu']:.1f}x CPU | peak RSS {row['peak_rss_mib']:.0f} MiB | "
          f"test NLL gap median {row['median_test_nll_gap']:.0e} max {row['max_test_nll_gap']:.0e} | "
          f"load {row['loadavg'][0]:.1f}", flush=True)
    return row


def _one_thread() -> None:
    torch.set_num_threads(1)


def compare_pool(epochs: int, n_sequential: int, n_members: int, rounds: int) -> dict:
    """The fairer baseline on a multi-core machine: one-at-a-time runs in one worker process per core.

    ``vicinal sweep --workers N`` trains one run per process (one torch thread each); against that,
    the batched ensemble (with ``--threads`` threads) is compared in interleaved rounds.
    """
    from concurrent.futures import ProcessPoolExecutor

    workers = os.cpu_count() or 1
    out = {}
    with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
        list(pool.map(train, [dict(BASE, **METHODS["erm"], epochs=1, seed=s) for s in range(workers)]))  # warm up
        for name in METHODS:
            configs = [dict(BASE, **METHODS[name], epochs=epochs, seed=seed) for seed in range(n_members)]
            ratios = []
            for r in range(rounds):
                part = configs[r * n_sequential // rounds:(r + 1) * n_sequential // rounds]
                _, pool_s, _ = timed(lambda: list(pool.map(train, part)))
                _, batch_s, _ = timed(lambda: train_batched(configs))
                ratios.append((n_members / batch_s) / (len(part) / pool_s))
            out[name] = dict(workers=workers, ratios=ratios, speedup_wall=statistics.median(ratios))
            print(f"{name:12s} batched vs {workers} one-at-a-time worker processes: speed-up "
                  f"{out[name]['speedup_wall']:.1f}x wall (rounds {min(ratios):.1f}-{max(ratios):.1f})", flush=True)
    return out


def compare_stacking(members: int = 100, batch: int = 20, repeats: int = 20) -> dict:
    """Forward + backward of ``members`` spirals MLPs: hand-stacked baddbmm against vmap(functional_call)."""
    models = [build_model("mlp", input_shape=(2,), num_outputs=2, seed=s) for s in range(members)]
    params, _ = torch.func.stack_module_state(models)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    x = torch.randn(members, batch, 2, generator=torch.Generator().manual_seed(0))
    names = [k for k in params if k.endswith("weight")]

    def by_bmm():
        h = x
        for i, name in enumerate(names):
            h = torch.baddbmm(params[name[:-6] + "bias"].unsqueeze(1), h, params[name].transpose(1, 2))
            h = torch.relu(h) if i < len(names) - 1 else h
        h.square().sum().backward()

    template = models[0]

    def by_vmap():
        out = torch.vmap(lambda p, xb: torch.func.functional_call(template, p, (xb,)))(params, x)
        out.square().sum().backward()

    row = {}
    for label, fn in (("baddbmm", by_bmm), ("vmap_functional_call", by_vmap)):
        fn()
        _, seconds, cpu = timed(lambda: [fn() for _ in range(repeats)])
        row[f"{label}_ms"], row[f"{label}_cpu_ms"] = 1000 * seconds / repeats, 1000 * cpu / repeats
    print(f"stacked forward+backward of {members} MLPs (batch {batch}), CPU ms per call: baddbmm "
          f"{row['baddbmm_cpu_ms']:.2f}, vmap(functional_call) {row['vmap_functional_call_cpu_ms']:.2f}", flush=True)
    return row


def fig3_sweep(epochs: int, seeds: int) -> dict:
    """Local Mixup Fig. 3: every eps x seeds, one batched call per eps (as ``batch_group_key`` groups them).

    eps = 0 is plain training (ERM): with uniform sampling our random pairs are never self pairs, so
    a threshold graph with eps = 0 would weight every pair 0 and train nothing (the paper's eps = 0
    point is ERM; ``vicinal reproduce spirals-eps`` runs it the same way).
    """
    start, cpu = time.perf_counter(), time.process_time()
    per_eps = []
    for eps, batch_size in zip(FIG3_EPS, FIG3_BATCH):
        method = dict(method="erm") if eps == 0 else dict(method="local_mixup", eps=eps)
        configs = [dict(BASE, **method, batch_size=batch_size, epochs=epochs, seed=seed) for seed in range(seeds)]
        results, seconds, cpu_seconds = timed(lambda: train_batched(configs))
        mean_error = sum(r["test_error"] for r in results) / len(results)
        per_eps.append(dict(eps=eps, batch_size=batch_size, seconds=seconds, cpu_seconds=cpu_seconds,
                            mean_test_error=mean_error))
        print(f"  eps {eps:4.1f} (batch {batch_size:3d}): {seeds} runs x {epochs} epochs in {seconds:6.1f} s "
              f"({cpu_seconds:6.1f} CPU-s), mean test error {mean_error:.3f}", flush=True)
    measured, measured_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"Fig. 3 sweep, {len(FIG3_EPS)} eps x {seeds} seeds x {epochs} epochs: MEASURED {measured:.0f} s wall, "
          f"{measured_cpu:.0f} CPU-s", flush=True)
    return dict(epochs=epochs, seeds=seeds, measured_s=measured, measured_cpu_s=measured_cpu, per_eps=per_eps,
                loadavg=os.getloadavg())


def extrapolate(short: dict, long: dict, epochs: int = 200) -> dict:
    """EXTRAPOLATION (not a measurement) of the sweep to ``epochs`` from two measured sweeps.

    Fits time = fixed + per_epoch * epochs through the two measurements (the fixed part is data
    loading, model building and evaluation, which do not grow with the epochs).
    """
    out = {}
    for key in ("measured_s", "measured_cpu_s"):
        per_epoch = (long[key] - short[key]) / (long["epochs"] - short["epochs"])
        fixed = short[key] - per_epoch * short["epochs"]
        out[key.replace("measured", "extrapolated")] = fixed + per_epoch * epochs
        out[key.replace("measured", "per_epoch")] = per_epoch
    out.update(epochs=epochs, method="linear fit through the two measured sweeps; NOT measured")
    if out["per_epoch_s"] <= 0 or out["per_epoch_cpu_s"] <= 0:
        print("Fig. 3 sweep: the longer sweep did not take longer (load changed between them); no extrapolation",
              flush=True)
        return dict(out, extrapolated_s=None, extrapolated_cpu_s=None)
    print(f"Fig. 3 sweep EXTRAPOLATED (linear fit of {short['epochs']} and {long['epochs']} epochs; not measured) to "
          f"{epochs} epochs: {out['extrapolated_s'] / 60:.1f} min wall, {out['extrapolated_cpu_s'] / 60:.1f} CPU-min "
          f"on one core ({out['per_epoch_cpu_s']:.2f} CPU-s per epoch of all {short['seeds'] * len(FIG3_EPS)} runs)",
          flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch, 10 sequential runs, 100 members, Fig. 3 with 20 seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both ways (default 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10; 1 with --quick)")
    parser.add_argument("--sequential", type=int, default=None, help="one-at-a-time runs timed (default 20; 10 quick)")
    parser.add_argument("--members", type=int, default=100, help="members of the batched run")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (sequential share, then the batch); default 4, 1 with --quick")
    parser.add_argument("--fig3-epochs", type=int, nargs="+", default=None,
                        help="epochs of the timed Fig. 3 sweep (default 200, the paper's; 2 with --quick); two "
                             "values time two sweeps and extrapolate to 200 epochs")
    parser.add_argument("--fig3-seeds", type=int, default=None, help="seeds per eps (default 100; 20 quick)")
    parser.add_argument("--no-fig3", action="store_true", help="skip the Fig. 3 sweep")
    parser.add_argument("--pool", action="store_true",
                        help="also compare against one-at-a-time runs in one worker process per CPU core")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file for the results (default {RESULTS})")
    args = parser.parse_args()
    fig3_epochs = args.fig3_epochs or ([2] if args.quick else [200])
    if len(fig3_epochs) > 2 or (len(fig3_epochs) == 2 and fig3_epochs[0] == fig3_epochs[1]):
        parser.error(f"--fig3-epochs takes one epoch count, or two different ones to extrapolate from, got {fig3_epochs}")
    epochs = args.epochs or (1 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 4)
    if not 1 <= rounds <= (args.sequential or 20):
        parser.error(f"--rounds must be between 1 and the number of sequential runs, got {rounds}")
    n_sequential = args.sequential or (10 if args.quick else 20)
    fig3_seeds = args.fig3_seeds or (20 if args.quick else 100)
    torch.set_num_threads(args.threads)
    warm_up = [dict(BASE, **METHODS[name], epochs=1, seed=0, dataset_params={"n_per_class": 50}) for name in METHODS]
    [train(c) for c in warm_up], train_batched(warm_up[:1])  # imports and first-call costs stay out of the timings
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, load {os.getloadavg()}",
          flush=True)
    report = dict(torch=torch.__version__, threads=args.threads, cpus=os.cpu_count(), machine=platform.machine(),
                  quick=args.quick, loadavg_start=os.getloadavg(),
                  methods=[compare_method(name, epochs, n_sequential, args.members, rounds) for name in METHODS],
                  stacking=compare_stacking())
    if args.pool:
        report["pool"] = compare_pool(epochs, n_sequential, args.members, rounds)
    if not args.no_fig3:
        sweeps = [fig3_sweep(epochs, fig3_seeds) for epochs in fig3_epochs]
        report["fig3"] = dict(sweeps=sweeps, extrapolation=extrapolate(*sweeps) if len(sweeps) == 2 else None)
    report["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
