"""vicinal.seeding: derived seeds (SplitMix64) and the rank folded into MixCollate's streams."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal as v
from vicinal import collate as collate_module
from vicinal.seeding import _splitmix64, derive_seed, rank_seed


def test_splitmix64_matches_the_reference_outputs():
    # First outputs of the SplitMix64 generator started at state 0 (Vigna's reference splitmix64.c):
    # each output is the mixer applied to the state after adding the golden gamma once more.
    gamma = 0x9E3779B97F4A7C15
    assert _splitmix64(0) == 0xE220A8397B1DCDAF
    assert _splitmix64(gamma) == 0x6E789E6AA1B965F4
    assert _splitmix64(2 * gamma) == 0x06C45D188009454F


def test_derived_seeds_are_stable_distinct_and_order_sensitive():
    assert derive_seed(5) == 5 and rank_seed(5, 0) == 5
    assert derive_seed(5, 1, 2) == derive_seed(5, 1, 2)
    seeds = {derive_seed(s, r, w) for s in range(4) for r in range(4) for w in range(8)}
    assert len(seeds) == 4 * 4 * 8
    assert derive_seed(0, 1) != derive_seed(1, 0) and derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert all(0 <= s < 2 ** 63 for s in seeds)
    assert rank_seed(5, 3) == derive_seed(5, 3)


def test_bad_seeds_are_refused():
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1)
    with pytest.raises(ValueError, match=r"keys\[1\]"):
        derive_seed(0, 1, -2)
    with pytest.raises(TypeError, match="rank"):
        rank_seed(0, 1.5)


def test_mix_collate_streams_differ_by_rank(monkeypatch):
    x, y = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 2

    def first_lams(rank):
        monkeypatch.setattr(collate_module, "distributed_rank", lambda: rank)
        loader = DataLoader(TensorDataset(x, y), batch_size=4,
                            collate_fn=v.MixCollate(v.Mixup(alpha=1.0, num_classes=2), seed=3),
                            generator=torch.Generator().manual_seed(1))
        return torch.stack([batch.lam[0] for batch in loader])

    rank0, rank1 = first_lams(0), first_lams(1)
    assert not torch.equal(rank0, rank1)
    assert torch.equal(rank1, first_lams(1))
    # rank 0 of a single process keeps the plain seed: the first lambda is Mixup's on manual_seed(3)
    expected = v.Mixup(alpha=1.0, num_classes=2)(x[:4], y[:4], generator=torch.Generator().manual_seed(3))
    assert torch.equal(rank0[0], expected.lam[0])
