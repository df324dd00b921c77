"""Two gloo processes on the CPU: per-rank mixing streams under DDP, reruns, and the reduced streaming metric."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vicinal as v

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start both ranks as subprocesses (bounded in time); each trains twice: (first run, rerun) of every rank."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    init_file = tmp_path / "rendezvous"
    outs = [tmp_path / f"rank{rank}.pt" for rank in range(WORLD)]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "ddp_worker.py"), str(rank), str(WORLD),
                               str(init_file), str(outs[rank])], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in range(WORLD)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=180)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log
    saved = [torch.load(out, weights_only=False) for out in outs]
    return [rank_runs[0] for rank_runs in saved], [rank_runs[1] for rank_runs in saved]


def test_ranks_draw_different_streams_and_reruns_repeat_them(runs):
    first, again = runs
    for (lam0, partner0), (lam1, partner1) in zip(first[0]["draws"], first[1]["draws"]):
        assert not torch.equal(lam0, lam1)
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first[0]["draws"], first[1]["draws"]))
    assert not torch.equal(first[0]["collate_lam"], first[1]["collate_lam"])  # MixCollate folds the rank in too
    for rank in range(WORLD):
        for (lam_a, partner_a), (lam_b, partner_b) in zip(first[rank]["draws"], again[rank]["draws"]):
            assert torch.equal(lam_a, lam_b) and torch.equal(partner_a, partner_b)
        for a, b in zip(first[rank]["weights"], again[rank]["weights"]):
            assert torch.equal(a, b)
        assert torch.equal(first[rank]["collate_lam"], again[rank]["collate_lam"])
    for a, b in zip(first[0]["weights"], first[1]["weights"]):  # DDP kept the replicas in sync
        assert torch.equal(a, b)


def test_streaming_metric_reduced_across_ranks_equals_one_process_on_all_the_data(runs):
    first, _ = runs
    logits = torch.cat([r["logits"] for r in first])
    targets = torch.cat([r["targets"] for r in first])
    expected = {"ece": v.metrics.ece, "mce": v.metrics.mce, "adaptive_ece": v.metrics.adaptive_ece,
                "nll": v.metrics.nll, "error": v.metrics.error_rate}
    assert first[0]["logits"].shape[0] != first[1]["logits"].shape[0]  # uneven ranks
    for name, function in expected.items():
        kwargs = {} if name in ("nll", "error") else {"n_bins": 5}
        whole = function(logits, targets, from_logits=True, **kwargs)
        for rank in range(WORLD):
            assert first[rank]["metrics"][name] == pytest.approx(whole, rel=1e-12, abs=1e-12), (name, rank)
