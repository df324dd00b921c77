"""Section 2: cost of the optimal-transport matching per sample as the block size k grows.

Greenewald et al. 2023, Sec. 5.1: the Hungarian algorithm costs :math:`O(k^3)` per block of k, i.e.
an amortised :math:`O(k^2)` per sample, plus :math:`O(k d)` per sample for the cost matrix. At a fixed
batch (B = 1024, CIFAR-shaped, with an independent partner batch so every k up to B fits) this
measures, for each k:

* the whole ``OptimalTransportPairing(k)`` call per sample (distances, solve, bookkeeping);
* the exact solvers alone on the same (k, k) squared-distance blocks: scipy's
  ``linear_sum_assignment`` (what vicinal uses) and POT's network simplex ``ot.emd``;
* POT's entropic solver ``ot.sinkhorn(..., method="sinkhorn_log")`` (the plan alone is timed), and
  the relative excess of its rounded plan's cost over the exact optimum. The plan is rounded to the
  permutation it weighs most (a linear assignment on the plan), so both costs are over matchings.

The solvers run on at most ``max_blocks`` blocks per k (per-sample times do not need all of them).
POT is an optional extra, imported only here; without it those columns are left out.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import scipy.optimize
import torch

from mixing_cost import cifar_batch
from timing import default_clock, median, time_interleaved
from vicinal import OptimalTransportPairing
from vicinal.graphs import squared_distances

LARGE_K = 32  # smallest k of the "large k" exponent fit


def fit_exponent(ks: list[int], seconds: list[float]) -> float:
    """Slope of the least-squares line through (log k, log seconds): the p of ``seconds ~ k^p``."""
    if len(ks) < 2:
        raise ValueError("fitting an exponent needs at least two block sizes")
    slope, _ = np.polyfit(np.log(ks), np.log(seconds), 1)
    return float(slope)


def cost_blocks(x: torch.Tensor, partner: torch.Tensor, k: int, max_blocks: int) -> np.ndarray:
    """Squared-distance blocks (m, k, k), float64, between consecutive k-samples of the two batches."""
    n_blocks = min(x.shape[0] // k, max_blocks)
    a = x[: n_blocks * k].reshape(n_blocks, k, -1)
    b = partner[: n_blocks * k].reshape(n_blocks, k, -1)
    return squared_distances(a, b).double().cpu().numpy()


def hungarian(blocks: np.ndarray) -> list[np.ndarray]:
    """Column of each row's match in every block (scipy's exact ``linear_sum_assignment``)."""
    return [scipy.optimize.linear_sum_assignment(block)[1] for block in blocks]


def network_simplex(ot, blocks: np.ndarray) -> list[np.ndarray]:
    """Exact OT by POT's network simplex ``ot.emd``; the plan of uniform k-samples is a permutation."""
    k = blocks.shape[1]
    uniform = np.full(k, 1.0 / k)
    return [ot.emd(uniform, uniform, block).argmax(1) for block in blocks]


def sinkhorn_plans(ot, blocks: np.ndarray, reg: float, num_iter_max: int = 1000) -> list[np.ndarray]:
    """Entropic OT plan (``ot.sinkhorn(..., method="sinkhorn_log")``) of each block.

    ``reg`` is relative to the block's cost range: the cost is shifted to start at 0 and divided by
    its range (neither changes the optimal matching), then regularised with ``reg``. Runs stopped by
    the iteration cap are kept as they are: that is the cost and quality one would get.
    """
    k = blocks.shape[1]
    uniform = np.full(k, 1.0 / k)
    plans = []
    for block in blocks:
        spread = max(float(block.max() - block.min()), np.finfo(float).tiny)
        scaled = (block - block.min()) / spread
        with warnings.catch_warnings():  # "did not converge" at the cap is part of the measurement
            warnings.simplefilter("ignore")
            plans.append(ot.sinkhorn(uniform, uniform, scaled, reg, method="sinkhorn_log", numItermax=num_iter_max))
    return plans


def round_plan(plan: np.ndarray) -> np.ndarray:
    """The permutation carrying the most mass of ``plan``: column of each row."""
    return scipy.optimize.linear_sum_assignment(plan, maximize=True)[1]


def matching_cost(blocks: np.ndarray, columns: list[np.ndarray]) -> float:
    """Total cost of the maps ``row -> columns[b][row]`` over all blocks."""
    return float(sum(block[np.arange(len(cols)), cols].sum() for block, cols in zip(blocks, columns)))


def _import_ot():
    try:
        import ot
    except ImportError:
        return None
    return ot


def crossover(ks: list[int], exact: list[float], approximate: list[float]) -> dict:
    """Where the approximate solver becomes cheaper than the exact one.

    Returns the smallest measured k where it already is (``measured_k``), else the k where the two
    fitted power laws cross (``extrapolated_k``, None when the exact solver does not grow faster, or
    when the laws cross beyond float range, e.g. for nearly equal slopes fitted to a few noisy points).
    """
    cheaper = [k for k, e, a in zip(ks, exact, approximate) if a < e]
    if cheaper:
        return {"measured_k": cheaper[0], "extrapolated_k": None}
    p_exact, c_exact = np.polyfit(np.log(ks), np.log(exact), 1)
    p_approx, c_approx = np.polyfit(np.log(ks), np.log(approximate), 1)
    if p_exact <= p_approx:
        return {"measured_k": None, "extrapolated_k": None}
    log_k = (c_approx - c_exact) / (p_exact - p_approx)
    return {"measured_k": None, "extrapolated_k": float(math.exp(log_k)) if log_k < math.log(sys.float_info.max) else None}


def run_ot_scaling(*, batch_size: int = 1024, ks: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512),
                   rounds: int = 3, max_blocks: int = 8, sinkhorn_regs: tuple[float, ...] = (0.1, 0.01),
                   device: str = "cpu", seed: int = 0) -> dict:
    """Per-sample matching cost for each k, fitted exponents and the Sinkhorn crossover.

    Parameters
    ----------
    batch_size : int
        Batch size B; every k must satisfy ``k <= B``.
    ks : tuple of int
        Block sizes, increasing.
    rounds : int
        Interleaved timing rounds.
    max_blocks : int
        At most this many blocks per k are given to the solvers (the pairing call uses all B).
    sinkhorn_regs : tuple of float
        Entropic regularisations, relative to each block's cost range.
    device : {"cpu", "cuda"}
        Where the batches live (the solvers run on the CPU).
    seed : int
        Seed of the batches and of the pairing.

    Returns
    -------
    dict
        ``per_sample_us`` (microseconds per sample, by solver and k), ``exponents`` (fit over all k)
        and ``exponents_k_ge_32`` (fit over k >= 32, where per-call overheads no longer dominate),
        ``sinkhorn_gap`` (relative excess cost of the rounded plans over the optimum, by k) and
        ``crossover`` (against the Hungarian solve, for each other solver; measured, or extrapolated
        along the k >= 32 fits).
    """
    if max(ks) > batch_size:
        raise ValueError(f"k={max(ks)} is larger than batch_size={batch_size}")
    ot = _import_ot()
    x, _ = cifar_batch(batch_size, seed=seed, device=device)
    partner, _ = cifar_batch(batch_size, seed=seed + 1, device=device)
    generator = torch.Generator().manual_seed(seed)
    blocks = {k: cost_blocks(x, partner, k, max_blocks) for k in ks}
    solved = {k: b.shape[0] * k for k, b in blocks.items()}  # samples the solvers match per call

    cases, per_call_samples = {}, {}
    for k in ks:
        pairing = OptimalTransportPairing(k)
        cases[f"pairing k={k}"] = lambda p=pairing: p(x, partner, generator=generator)
        per_call_samples[f"pairing k={k}"] = batch_size
        cases[f"hungarian k={k}"] = lambda b=blocks[k]: hungarian(b)
        per_call_samples[f"hungarian k={k}"] = solved[k]
        if ot is not None:
            cases[f"emd k={k}"] = lambda b=blocks[k]: network_simplex(ot, b)
            per_call_samples[f"emd k={k}"] = solved[k]
            for reg in sinkhorn_regs:
                cases[f"sinkhorn({reg}) k={k}"] = lambda b=blocks[k], r=reg: sinkhorn_plans(ot, b, r)
                per_call_samples[f"sinkhorn({reg}) k={k}"] = solved[k]
    clock = default_clock(device)
    seconds = time_interleaved(cases, rounds=rounds, warmup=1, device=device)[clock]
    per_sample_us = {name: 1e6 * median(runs) / per_call_samples[name] for name, runs in seconds.items()}

    solvers = ["pairing", "hungarian"] + (["emd"] + [f"sinkhorn({reg})" for reg in sinkhorn_regs] if ot else [])
    table = {solver: {k: per_sample_us[f"{solver} k={k}"] for k in ks} for solver in solvers}
    ks_list = list(ks)
    exponents = {solver: fit_exponent(ks_list, [table[solver][k] for k in ks]) for solver in solvers}
    # Below k ~ 32 the per-call overhead of the solvers dominates; the asymptotic slope is fitted above it.
    large = [k for k in ks if k >= LARGE_K]
    exponents_large_k = ({solver: fit_exponent(large, [table[solver][k] for k in large]) for solver in solvers}
                         if len(large) >= 2 else {})
    gaps = {}
    if ot is not None:
        for reg in sinkhorn_regs:
            gaps[f"sinkhorn({reg})"] = {}
            for k in ks:
                optimum = matching_cost(blocks[k], hungarian(blocks[k]))
                rounded = [round_plan(plan) for plan in sinkhorn_plans(ot, blocks[k], reg)]
                gaps[f"sinkhorn({reg})"][k] = matching_cost(blocks[k], rounded) / optimum - 1.0
    fit_ks = large if len(large) >= 2 else ks_list  # extrapolate along the large-k slopes
    crossovers = {solver: crossover(fit_ks, [table["hungarian"][k] for k in fit_ks],
                                    [table[solver][k] for k in fit_ks])
                  for solver in solvers if solver not in ("pairing", "hungarian")}
    return {
        "setup": {"batch_size": batch_size, "ks": ks_list, "rounds": rounds, "max_blocks": max_blocks,
                  "clock": clock, "device": device, "pot": None if ot is None else ot.__version__,
                  "sinkhorn_regs_relative_to_cost_range": list(sinkhorn_regs), "sinkhorn_num_iter_max": 1000},
        "per_sample_us": table,
        "exponents": exponents,
        f"exponents_k_ge_{LARGE_K}": exponents_large_k,
        "sinkhorn_gap": gaps,
        "crossover": crossovers,
    }
