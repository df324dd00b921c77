"""The limits the papers prove, as exact (bitwise) tests."""

import itertools

import numpy as np
import pytest
import torch

import vicinal as v


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def data(n=12, shape=(3, 4), classes=4, seed=0):
    g = gen(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def assert_same(a: v.MixedBatch, b: v.MixedBatch, *, weights=True):
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.targets, b.targets)
    assert torch.equal(a.lam, b.lam)
    assert torch.equal(a.partner, b.partner)
    if weights:
        assert (a.weights is None) == (b.weights is None)
        if a.weights is not None:
            assert torch.equal(a.weights, b.weights)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_kmixup_k1_is_mixup(n):
    x, y = data(n)
    a = v.KMixup(alpha=0.7, k=1, num_classes=4)(x, y, generator=gen(3))
    b = v.Mixup(alpha=0.7, num_classes=4)(x, y, generator=gen(3))
    assert_same(a, b)


@pytest.mark.parametrize("graph", [v.Threshold(eps=0.0), v.KNN(n_neighbors=0)])
def test_local_mixup_weighted_with_empty_graph_is_plain_training(graph):
    x, y = data(10)
    batch = v.LocalMixup(alpha=1.0, graph=graph, sampling="weighted", num_classes=4)(x, y, generator=gen())
    assert torch.equal(batch.partner, torch.arange(10))
    assert torch.equal(batch.inputs, x)
    assert torch.equal(batch.targets, torch.nn.functional.one_hot(y, 4).float())
    logits = torch.randn(10, 4)
    plain = torch.nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(v.mixup_loss(logits, batch, reduction="normalized"), plain)


@pytest.mark.parametrize("graph", [v.Threshold(eps=1e9), v.Threshold(quantile=1.0), v.KNN(n_neighbors=12),
                                   v.KNN(n_neighbors=11), v.Exponential(decay=0.0)])
def test_local_mixup_with_full_graph_is_eq2_mixup(graph):
    """Every pair kept: both samplings give eq. (2)'s Mixup (uniform partners, self included), bit for bit."""
    x, y = data(12)
    uniform = v.LocalMixup(alpha=0.4, graph=graph, num_classes=4)(x, y, generator=gen(5))
    weighted = v.LocalMixup(alpha=0.4, graph=graph, sampling="weighted", num_classes=4)(x, y, generator=gen(5))
    eq2_mixup = v.Mixer(alpha=0.4, pairing=v.UniformPairing(), num_classes=4)(x, y, generator=gen(5))
    assert_same(uniform, weighted)
    assert_same(uniform, eq2_mixup, weights=False)
    assert torch.equal(uniform.weights, torch.ones(12))
    logits = torch.randn(12, 4)
    assert torch.equal(v.mixup_loss(logits, uniform), v.mixup_loss(logits, eq2_mixup))


@pytest.mark.parametrize("graph", [v.Threshold(eps=0.0), v.KNN(n_neighbors=0)])
def test_local_mixup_uniform_with_empty_graph_keeps_only_unmixed_self_pairs(graph):
    """eps = 0, uniform sampling: the samples that drew themselves count, unmixed, with weight 1; no other does."""
    x, y = data(10)
    seen_self = 0
    for seed in range(20):
        batch = v.LocalMixup(alpha=1.0, graph=graph, num_classes=4)(x, y, generator=gen(seed))
        is_self = batch.partner == torch.arange(10)
        assert torch.equal(batch.weights, is_self.float())
        assert torch.equal(batch.inputs[is_self], x[is_self])
        seen_self += int(is_self.sum())
    assert seen_self > 0


@pytest.mark.parametrize("n,k", [(2, 1), (4, 2), (9, 2), (12, 3), (13, 4), (64, 16), (65, 32)])
def test_kmixup_never_pairs_a_sample_with_itself(n, k):
    x, y = data(n)
    for seed in range(5):
        batch = v.KMixup(alpha=1.0, k=k, num_classes=4)(x, y, generator=gen(seed))
        assert not bool((batch.partner == torch.arange(n)).any())


def test_single_sample_batch_pairs_with_itself():
    x, y = data(1)
    batch = v.Mixup(alpha=1.0, num_classes=4)(x, y, generator=gen())
    assert batch.partner.tolist() == [0]
    assert torch.equal(batch.inputs, x)


def _brute_force_cost(a, b):
    cost = ((a[:, None] - b[None]) ** 2).sum(-1)
    return min(sum(cost[i, p[i]] for i in range(len(a))) for p in itertools.permutations(range(len(a))))


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_ot_block_matching_is_optimal_permutation(k):
    """Every block is matched by a permutation whose cost equals the brute-force optimum."""
    n = 3 * k
    x = torch.randn(n, 2, generator=gen(k), dtype=torch.float64)
    pairing = v.OptimalTransportPairing(k)
    g = gen(11)
    partner = pairing(x, generator=g)
    # Recover the block structure from the same draws: the random order comes first.
    order = v.pairing.random_order(n, gen(11))
    blocks = order.view(3, k)
    xn = x.numpy()
    for t in range(3):
        src = blocks[t]
        dst = partner[src]
        target_block = blocks[(t + 1) % 3]
        assert sorted(dst.tolist()) == sorted(target_block.tolist()), "partners form a permutation of the next block"
        achieved = float(((xn[src.numpy()] - xn[dst.numpy()]) ** 2).sum())
        optimum = _brute_force_cost(xn[src.numpy()], xn[target_block.numpy()])
        assert achieved == pytest.approx(optimum, rel=1e-12, abs=1e-12)


def test_ot_remainder_is_matched_to_head_of_first_block():
    n, k = 11, 4  # two blocks of 4 and a remainder of 3
    x = torch.randn(n, 2, generator=gen(1), dtype=torch.float64)
    partner = v.OptimalTransportPairing(k)(x, generator=gen(2))
    order = v.pairing.random_order(n, gen(2))
    remainder, head = order[8:], order[:3]
    assert sorted(partner[remainder].tolist()) == sorted(head.tolist())
    achieved = float(((x[remainder] - x[partner[remainder]]) ** 2).sum())
    assert achieved == pytest.approx(_brute_force_cost(x[remainder].numpy(), x[head].numpy()), rel=1e-12)


def test_ot_matching_is_more_local_than_random():
    """k-Mixup's point: matched partners are closer than random ones (Greenewald et al., Sec. 2)."""
    x = torch.randn(256, 5, generator=gen(0))
    y = torch.zeros(256, dtype=torch.long)
    random = v.Mixup(alpha=1.0, num_classes=1)(x, y, generator=gen(1)).partner
    matched = v.KMixup(alpha=1.0, k=32, num_classes=1)(x, y, generator=gen(1)).partner
    dist = lambda p: ((x - x[p]) ** 2).sum(1).mean().item()  # noqa: E731
    assert dist(matched) < 0.8 * dist(random)


def test_partner_batch_allows_large_k_and_indexes_partner_batch():
    x, y = data(8)
    x2, y2 = data(8, seed=1)
    batch = v.KMixup(alpha=1.0, k=8, num_classes=4)(x, y, generator=gen(), partner_batch=(x2, y2))
    assert sorted(batch.partner.tolist()) == list(range(8))  # one block of 8: a permutation of the partner batch
    lam = batch.lam[:, None, None]
    torch.testing.assert_close(batch.inputs, lam * x + (1 - lam) * x2[batch.partner])
    xn, x2n = x.reshape(8, -1).double().numpy(), x2.reshape(8, -1).double().numpy()
    achieved = ((xn - x2n[batch.partner.numpy()]) ** 2).sum()
    from scipy.optimize import linear_sum_assignment
    cost = ((xn[:, None] - x2n[None]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    assert achieved == pytest.approx(cost[r, c].sum(), rel=1e-5)


def test_weighted_sampling_follows_graph_frequencies():
    x = torch.randn(5, 2, generator=gen(7))
    graph = v.Exponential(decay=1.0)
    w = graph.matrix(x)
    counts = torch.zeros(5, 5)
    g = gen(8)
    for _ in range(4000):
        p = v.GraphPairing()(w, generator=g)
        counts[torch.arange(5), p] += 1
    freq = counts / counts.sum(1, keepdim=True)
    expected = w / w.sum(1, keepdim=True)
    assert float((freq - expected).abs().max()) < 0.04  # ~4 sd of a Binomial(4000, p) frequency


def test_random_partner_is_uniform_over_others():
    counts = np.zeros((5, 5))
    g = gen(9)
    x = torch.randn(5, 2)
    for _ in range(5000):
        p = v.RandomPairing()(x, generator=g)
        counts[np.arange(5), p.numpy()] += 1
    freq = counts / 5000
    assert np.all(np.diag(freq) == 0)
    off = freq[~np.eye(5, dtype=bool)]
    assert np.abs(off - 0.25).max() < 0.03


def test_weighted_sampling_never_draws_a_zero_weight_partner_even_at_u_near_one():
    w = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 0.0], [3.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    u = torch.tensor([1.0 - 2 ** -53, 1.0 - 2 ** -53, 0.0, 0.99], dtype=torch.float64)
    partner = v.GraphPairing.from_uniforms(w, u)
    assert partner.tolist() == [2, 1, 0, 3]
    # A stack of matrices gives each matrix's own draws (what the batched trainer relies on).
    stack = torch.stack([w, w.flip(0, 1)])
    uniforms = torch.rand(2, 4, dtype=torch.float64, generator=gen(3))
    together = v.GraphPairing.from_uniforms(stack, uniforms)
    for m in range(2):
        assert torch.equal(together[m], v.GraphPairing.from_uniforms(stack[m], uniforms[m]))
        assert bool((stack[m][torch.arange(4), together[m]] > 0).all())
