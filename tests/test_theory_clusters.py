"""k-Mixup cluster theory (Greenewald et al. 2023, Lemma 3.3, Theorem 3.4, eq. (1))."""

import itertools

import numpy as np
import pytest
from scipy import stats

from vicinal.theory.clusters import (
    cross_cluster_bound,
    exact_cross_cluster_fraction,
    fit_power_law,
    matching_distribution,
    optimal_matching,
    predicted_cross_cluster_matches,
    sample_separated_clusters,
    simulate_cross_cluster_matches,
)

PROBS = [0.2, 0.3, 0.5]


def test_optimal_matching_is_the_min_squared_cost_permutation():
    rng = np.random.default_rng(0)
    for _ in range(10):
        a, b = rng.normal(size=(2, 6, 3))
        sigma = optimal_matching(a, b)
        cost = np.sum((a - b[sigma]) ** 2)
        brute = min(np.sum((a - b[list(p)]) ** 2) for p in itertools.permutations(range(6)))
        assert cost == pytest.approx(brute, rel=1e-12)


def test_sampled_clusters_meet_lemma_spacing():
    x, labels = sample_separated_clusters(400, [0.25] * 4, dim=3, radius=0.5, centre_distance=4.1, seed=1)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    same = labels[:, None] == labels[None]
    assert d[same].max() <= 2 * 0.5  # inside balls of radius Delta
    assert d[~same].min() > 2 * 0.5  # gaps of at least 2 Delta


@pytest.mark.parametrize(
    "probs, dim, centre_distance",
    [
        ([0.5, 0.5], 2, 4.5),  # two clusters: the paper's 2 Delta gap suffices
        (PROBS, 2, 13.0),  # m >= 3: needs the stronger spacing (edge > 12 Delta)
        ([0.1, 0.2, 0.3, 0.4], 3, 13.0),
    ],
)
def test_lemma_3_3_count_is_exact_for_separated_clusters(probs, dim, centre_distance):
    trials = simulate_cross_cluster_matches(
        24, probs, n_trials=150, dim=dim, centre_distance=centre_distance, seed=2
    )
    assert all(t.observed == t.predicted for t in trials)
    assert any(t.predicted > 0 for t in trials)  # the statement is not vacuous


def test_lemma_3_3_count_is_a_lower_bound_without_separation():
    # Overlapping clusters: pigeonhole still forces (1/2) sum |r_i - s_i| cross matches,
    # and the optimal matching now uses more of them.
    rng = np.random.default_rng(3)
    extra = 0
    for _ in range(100):
        la, lb = rng.integers(2, size=(2, 20))
        xa = rng.normal(size=(20, 2)) + 0.3 * la[:, None]
        xb = rng.normal(size=(20, 2)) + 0.3 * lb[:, None]
        observed = int(np.sum(la != lb[optimal_matching(xa, xb)]))
        predicted = predicted_cross_cluster_matches(la, lb, 2)
        assert observed >= predicted
        extra += observed - predicted
    assert extra > 0


def test_exact_fraction_matches_double_sum_over_binomials():
    for k in (1, 3, 9):
        total = 0.0
        for p in PROBS:
            pmf = stats.binom.pmf(np.arange(k + 1), k, p)
            total += sum(pmf[a] * pmf[b] * abs(a - b) for a in range(k + 1) for b in range(k + 1))
        assert exact_cross_cluster_fraction(k, PROBS) == pytest.approx(total / (2 * k), rel=1e-12)


def test_exact_fraction_respects_bound_and_has_gaussian_constant():
    for k in (1, 2, 5, 17, 100, 1000):
        assert exact_cross_cluster_fraction(k, PROBS) <= cross_cluster_bound(k, PROBS)
    # r_i - s_i is asymptotically normal, E|N(0, s^2)| = sqrt(2/pi) s: the exact rate is the
    # Jensen bound times sqrt(2/pi) (the "constant factor" of App. F).
    ratio = exact_cross_cluster_fraction(20_000, PROBS) / cross_cluster_bound(20_000, PROBS)
    assert ratio == pytest.approx(np.sqrt(2 / np.pi), abs=2e-3)


def test_exact_fraction_exponent_tends_to_minus_half():
    ks = np.array([256, 512, 1024, 2048, 4096])
    exponent, _ = fit_power_law(ks, [exact_cross_cluster_fraction(int(k), PROBS) for k in ks])
    assert exponent == pytest.approx(-0.5, abs=0.01)


def test_simulated_fraction_matches_exact_and_decays_like_root_k():
    ks = [4, 8, 16, 32, 64]
    means = []
    for k in ks:
        observed = np.array([t.observed for t in simulate_cross_cluster_matches(k, PROBS, n_trials=300, seed=k)]) / k
        exact = exact_cross_cluster_fraction(k, PROBS)
        # 5 standard errors of the Monte Carlo mean.
        assert abs(observed.mean() - exact) < 5 * observed.std() / np.sqrt(observed.size) + 1e-12
        means.append(observed.mean())
    exponent, _ = fit_power_law(ks, means)
    # Small k is pre-asymptotic (the exact curve has slope about -0.47 here) and the means
    # are noisy, hence the wide band; the large-k exponent is checked exactly above.
    assert -0.6 < exponent < -0.4


def test_matching_distribution_k1_is_uniform():
    x, _ = sample_separated_clusters(20, [0.5, 0.5], seed=4)
    d = matching_distribution(x, 3, k=1, n_trials=4000, seed=5)
    assert d.sum() == pytest.approx(1.0)
    # chi-square goodness of fit to the uniform law over the 20 points.
    counts = np.round(d * 4000)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_matching_distribution_k_equal_n_is_point_mass():
    x, _ = sample_separated_clusters(12, [0.5, 0.5], seed=6)
    d = matching_distribution(x, 7, k=12, n_trials=50, seed=7)
    expected = np.zeros(12)
    expected[7] = 1.0
    np.testing.assert_array_equal(d, expected)


def test_matching_distribution_localises_with_k():
    x, labels = sample_separated_clusters(80, [0.5, 0.5], seed=8)
    other_centre = x[labels != labels[0]].mean(axis=0)
    own = np.flatnonzero(labels == labels[0])
    # The point of cluster 0 farthest from cluster 1: cross matches there need a large
    # imbalance, so D_i concentrates on its own cluster as k grows (Sec. 4, Fig. 3).
    far = int(own[np.argmax(np.linalg.norm(x[own] - other_centre, axis=1))])
    same = labels == labels[far]
    mass = [matching_distribution(x, far, k=k, n_trials=1000, seed=9)[same].sum() for k in (1, 32)]
    assert mass[0] == pytest.approx(same.mean(), abs=0.06)  # k = 1: uniform partner
    assert mass[1] > mass[0] + 0.2


def test_lemma_3_3_fails_for_three_collinear_clusters():
    # Documented counterexample (Delta = 0): the relay 0->10, 10->20 beats 0->20, 10->10.
    a = np.array([[0.0], [10.0]])
    b = np.array([[10.0], [20.0]])
    la, lb = np.array([0, 1]), np.array([1, 2])
    sigma = optimal_matching(a, b)
    assert int(np.sum(la != lb[sigma])) == 2
    assert predicted_cross_cluster_matches(la, lb, 3) == 1


def test_paper_spacing_is_not_enough_for_three_clusters():
    # Gaps of 2.5 Delta (> the paper's 2 Delta) on a simplex: relays do occur.
    trials = simulate_cross_cluster_matches(24, PROBS, n_trials=300, centre_distance=4.5, seed=2)
    assert all(t.observed >= t.predicted for t in trials)
    assert any(t.observed > t.predicted for t in trials)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: exact_cross_cluster_fraction(0, PROBS), ValueError, "k must be an integer >= 1, got 0"),
        (lambda: cross_cluster_bound(4, [0.5, 0.6]), ValueError, "sum to 1"),
        (lambda: sample_separated_clusters(5, [0.25] * 4, dim=2), ValueError, "dim must be an integer >= 3"),
        (lambda: fit_power_law([1, 2], [0.5, 0.0]), ValueError, "> 0"),
        (lambda: matching_distribution(np.zeros((5, 2)), 5, k=2, n_trials=3), ValueError, "index must be < "),
        (lambda: matching_distribution(np.zeros((5, 2)), 0, k=6, n_trials=3), ValueError, "k=6"),
        (lambda: simulate_cross_cluster_matches(4, PROBS, n_trials=1.5), TypeError, "n_trials must be an int"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
