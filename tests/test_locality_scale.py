"""Locality graphs on real data: scale-free graphs, distances that survive offsets and half precision,
the warning when a graph keeps nothing, and calibrate_eps (Baena et al. 2022, Sec. IV-A, V-A)."""

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import vicinal as v
from vicinal.graphs import off_diagonal


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def exact_distances(x):
    """float64 direct differences: the ground truth (n, n)."""
    flat = x.reshape(len(x), -1).double()
    return (flat[:, None] - flat[None]).pow(2).sum(-1).sqrt()


def test_off_diagonal_drops_exactly_the_diagonal():
    d = torch.arange(25.0).view(5, 5)
    assert torch.equal(off_diagonal(d, same_set=True), d[~torch.eye(5, dtype=torch.bool)])
    assert torch.equal(off_diagonal(d, same_set=False), d.reshape(-1))
    assert off_diagonal(torch.zeros(1, 1), same_set=True).numel() == 0


@pytest.mark.parametrize("q", [0.1, 0.25, 0.5, 1.0])
def test_quantile_threshold_keeps_that_fraction_of_pairs(q):
    x = torch.randn(40, 6, generator=gen(1))
    w = v.Threshold(quantile=q).matrix(x)
    kept = off_diagonal(w, same_set=True)
    n = kept.numel()
    assert int(kept.sum()) == int(np.ceil(q * n))  # no ties in continuous data: exactly ceil(q n) (pairs counted twice)
    assert torch.equal(torch.diagonal(w), torch.ones(40))


@pytest.mark.parametrize("graph", [v.Threshold(quantile=0.3), v.Exponential(decay=1.5, relative=True), v.KNN(n_neighbors=4)])
@pytest.mark.parametrize("scale", [1e-3, 1000.0])
def test_scale_free_graphs_give_the_same_graph_for_scaled_data(graph, scale):
    x = torch.randn(32, 3, 8, 8, generator=gen(2))
    a, b = graph.matrix(x), graph.matrix(x * scale)
    if isinstance(graph, v.Exponential):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    else:
        assert torch.equal(a, b)


def test_relative_exponential_gives_a_median_pair_weight_exp_minus_decay():
    x = torch.randn(21, 5, generator=gen(3))
    w = v.Exponential(decay=0.7, relative=True).matrix(x)
    median = off_diagonal(exact_distances(x), same_set=True).kthvalue(int(np.ceil(0.5 * 21 * 20))).values
    weights_at_median = off_diagonal(w, same_set=True)[off_diagonal(exact_distances(x), same_set=True) == median]
    torch.testing.assert_close(weights_at_median.double(), torch.full_like(weights_at_median.double(), np.exp(-0.7)))


def test_relative_exponential_on_duplicates_keeps_duplicates_only():
    x = torch.cat([torch.zeros(6, 3), torch.ones(2, 3)])  # median distance 0
    w = v.Exponential(decay=1.0, relative=True).matrix(x)
    assert torch.equal(w, (exact_distances(x) == 0).float())


@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_graphs_survive_an_offset_against_float64_differences(offset):
    """float32 data offset by 1e3 / 1e4 with unit spread: threshold and kNN graphs equal those of exact distances."""
    x = (torch.randn(64, 10, generator=gen(4)) + offset).float()
    exact = exact_distances(x)
    eps = float(off_diagonal(exact, same_set=True).median())
    # eps halfway between two distances, so that rounding at 1e-6 cannot flip a pair
    values = off_diagonal(exact, same_set=True).sort().values
    above = values[values > eps][0]
    eps = (eps + float(above)) / 2
    assert torch.equal(v.Threshold(eps=eps).matrix(x), (exact <= eps).float())
    knn = v.KNN(n_neighbors=5).matrix(x)
    d = exact.clone().fill_diagonal_(float("inf"))
    nearest = torch.zeros_like(d, dtype=torch.bool).scatter_(1, d.argsort(1)[:, :5], True)
    expected = (nearest | nearest.T).fill_diagonal_(True).float()
    assert torch.equal(knn, expected)
    torch.testing.assert_close(v.pairwise_distances(x).double(), exact, rtol=1e-5, atol=1e-4)


def assert_optimal_block_matching(x, partner, k):
    """Blocks 0..k-1 and k..2k-1 (order = arange) are matched both ways at the float64 optimum."""
    xn = x.reshape(len(x), -1).double().numpy()
    for src, dst in ((np.arange(k), np.arange(k, 2 * k)), (np.arange(k, 2 * k), np.arange(k))):
        cost = ((xn[src][:, None] - xn[dst][None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        achieved = ((xn[src] - xn[partner[src]]) ** 2).sum()
        assert set(partner[src].tolist()) == set(dst.tolist())
        assert achieved == pytest.approx(cost[rows, cols].sum(), rel=1e-9)


@pytest.mark.parametrize("offset", [1e3, 1e4])
@pytest.mark.parametrize("k", [4, 16])
def test_kmixup_matching_is_optimal_with_an_offset(offset, k):
    x = (torch.randn(2 * k, 10, generator=gen(5)) + offset).float()
    partner = v.OptimalTransportPairing(k).pair_in_order(x, torch.arange(2 * k)).numpy()
    assert_optimal_block_matching(x, partner, k)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_the_graphs_and_matchings_of_their_float32_values(dtype):
    """3072-dim inputs with std 5 (a half-precision image pipeline): squared norms overflow float16; the
    graphs, matchings and mixers work and equal those of the same values in float32."""
    x = (5 * torch.randn(32, 3, 32, 32, generator=gen(7))).to(dtype)
    x32 = x.float()
    for graph in (v.Threshold(quantile=0.2), v.KNN(n_neighbors=3), v.Exponential(decay=1.0, relative=True)):
        torch.testing.assert_close(graph.matrix(x).float(), graph.matrix(x32), rtol=1e-5, atol=1e-6)
    eps = float(v.calibrate_eps(x32, kept_fraction=0.3, batch_size=32, n_batches=1))
    assert torch.equal(v.Threshold(eps=eps).matrix(x), v.Threshold(eps=eps).matrix(x32))
    torch.testing.assert_close(v.pairwise_distances(x).double(), exact_distances(x32), rtol=1e-5, atol=1e-3)
    partner = v.OptimalTransportPairing(16).pair_in_order(x, torch.arange(32))
    assert torch.equal(partner, v.OptimalTransportPairing(16).pair_in_order(x32, torch.arange(32)))
    assert_optimal_block_matching(x32, partner.numpy(), 16)
    y = torch.randint(0, 10, (32,), generator=gen(8))
    for mixer in (v.Mixup(num_classes=10), v.KMixup(k=16, num_classes=10),
                  v.LocalMixup(graph=v.Threshold(quantile=0.25), num_classes=10),
                  v.LocalMixup(graph=v.Exponential(decay=1.0, relative=True), sampling="weighted", num_classes=10)):
        batch = mixer(x, y, generator=gen(9))
        assert batch.inputs.dtype == dtype and bool(torch.isfinite(batch.inputs.float()).all())
        if batch.weights is not None:
            assert bool(torch.isfinite(batch.weights.float()).all())


def test_readme_absolute_eps_on_image_batches_warns_once_with_the_distance_quantiles():
    x, y = torch.randn(128, 3, 32, 32, generator=gen(10)), torch.randint(0, 10, (128,), generator=gen(11))
    mixer = v.LocalMixup(alpha=1.0, graph=v.Threshold(eps=1.5), num_classes=10)
    with pytest.warns(v.NoPairsKeptWarning, match=r"Threshold\(eps=1.5\) kept no pair.*quantiles.*Threshold\(quantile=0.1\)"):
        mixer(x, y, generator=gen(12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixer(x, y, generator=gen(13))  # once per graph


@pytest.mark.parametrize("sampling", ["uniform", "weighted"])
@pytest.mark.parametrize("graph", [v.Threshold(eps=0.0), v.KNN(n_neighbors=0), v.Threshold(quantile=0.01),
                                   v.Exponential(decay=1.0, relative=True)])
def test_no_warning_for_plain_training_on_purpose_or_scale_free_graphs(graph, sampling):
    x, y = torch.randn(64, 3, 32, 32, generator=gen(14)), torch.randint(0, 10, (64,), generator=gen(15))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.LocalMixup(graph=graph, sampling=sampling, num_classes=10)(x, y, generator=gen(16))


def test_exponential_with_a_decay_for_another_scale_warns():
    x, y = 255 * torch.rand(64, 3, 32, 32, generator=gen(17)), torch.randint(0, 10, (64,), generator=gen(18))
    with pytest.warns(v.NoPairsKeptWarning, match=r"relative=True"):
        v.LocalMixup(graph=v.Exponential(decay=1.0), sampling="weighted", num_classes=10)(x, y, generator=gen(19))


def test_calibrate_eps_keeps_the_fraction_on_fresh_batches_from_tensors_datasets_and_loaders():
    x = torch.randn(600, 12, generator=gen(20)) * 30 + 100
    y = torch.randint(0, 3, (600,), generator=gen(21))
    from torch.utils.data import DataLoader, TensorDataset
    sources = [x, (x, y), TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True,
                                                          generator=gen(22))]
    exact = off_diagonal(exact_distances(x), same_set=True)
    for source in sources:
        eps = v.calibrate_eps(source, kept_fraction=0.2, batch_size=100, n_batches=5, generator=gen(23))
        assert float((exact <= eps).double().mean()) == pytest.approx(0.2, abs=0.03)
    assert v.calibrate_eps(x, kept_fraction=0.2, generator=gen(1)) == v.calibrate_eps(x, kept_fraction=0.2, generator=gen(1))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kept_fraction=0.0), ValueError, r"kept_fraction must be in \(0, 1\]"),
    (dict(kept_fraction=1.5), ValueError, "kept_fraction"),
    (dict(kept_fraction=True), TypeError, "kept_fraction"),
    (dict(kept_fraction=0.1, batch_size=1), ValueError, "batch_size"),
    (dict(kept_fraction=0.1, metric="cosine"), ValueError, "metric"),
])
def test_calibrate_eps_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        v.calibrate_eps(torch.randn(10, 2), **kwargs)


def test_calibrate_eps_refuses_bad_data():
    with pytest.raises(TypeError, match="data must be"):
        v.calibrate_eps(3.0, kept_fraction=0.1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        v.calibrate_eps(torch.randn(1, 2), kept_fraction=0.1)
    with pytest.raises(ValueError, match="NaN"):
        v.calibrate_eps(torch.tensor([[0.0], [float("nan")]]), kept_fraction=0.1)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(), ValueError, "exactly one of eps"),
    (dict(eps=1.0, quantile=0.5), ValueError, "exactly one of eps"),
    (dict(quantile=0.0), ValueError, r"quantile must be in \(0, 1\].*eps=0"),
    (dict(quantile=1.2), ValueError, "quantile"),
    (dict(quantile="0.5"), TypeError, "quantile"),
])
def test_threshold_needs_exactly_one_valid_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        v.Threshold(**kwargs)


def test_exponential_refuses_infinite_decay_and_non_bool_relative():
    with pytest.raises(ValueError, match="decay must be finite"):
        v.Exponential(decay=float("inf"))
    with pytest.raises(TypeError, match="relative must be True or False"):
        v.Exponential(decay=1.0, relative="yes")


def test_compare_generic_preset_weights_pairs_on_data_of_any_scale():
    """`vicinal compare` on a dataset without a preset (CSV, tables, images): the Local Mixup graph must not
    depend on the data's units, or raw pixel values would silently train plainly."""
    from vicinal.lab.compare import compare_configs
    from vicinal.lab.config import RunConfig, make_graph
    config = RunConfig.from_dict(compare_configs("wine", ["local_mixup"], 1)[0])
    graph = make_graph(config)
    x = torch.rand(64, 3 * 32 * 32, generator=gen(30))
    torch.testing.assert_close(graph.matrix(255 * x), graph.matrix(x), rtol=1e-5, atol=1e-7)
    assert float(off_diagonal(graph.matrix(255 * x), same_set=True).mean()) > 0.1
