"""k-Mixup on clustered data: cross-cluster matches and matching distributions.

Greenewald et al. 2023 (k-Mixup), Sec. 3.2 (Lemma 3.3, Theorem 3.4; proofs in
App. E, F) and Sec. 4, eq. (1) / Fig. 3 (the matching distribution D_i).
Optimal matchings are exact: ``scipy.optimize.linear_sum_assignment`` on the squared
Euclidean cost (the W2 coupling of Sec. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from .._checks import check_int

__all__ = [
    "CrossClusterTrial",
    "cross_cluster_bound",
    "exact_cross_cluster_fraction",
    "fit_power_law",
    "matching_distribution",
    "optimal_matching",
    "predicted_cross_cluster_matches",
    "sample_separated_clusters",
    "simulate_cross_cluster_matches",
]


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size < 1:
        raise ValueError(f"probs must be a non-empty 1-D array of cluster masses, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"probs must be nonnegative and sum to 1, got {p.tolist()}")
    return p


def optimal_matching(a, b) -> np.ndarray:
    """Permutation sigma minimising ``sum_i ||a_i - b_sigma(i)||^2`` (W2 coupling).

    Greenewald et al. 2023, Sec. 2: the optimal transport map between two uniform
    k-point measures is a permutation, found with the Hungarian algorithm.

    Parameters
    ----------
    a, b : array-like, shape (k, d)
        The two k-samples.

    Returns
    -------
    numpy.ndarray of int, shape (k,)
        ``sigma`` such that ``a[i]`` is matched with ``b[sigma[i]]``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must be (k, d) arrays of equal shape, got {a.shape} and {b.shape}")
    cost = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    _, sigma = optimize.linear_sum_assignment(cost)
    return sigma


def sample_separated_clusters(
    k: int, probs, *, dim: int = 2, radius: float = 1.0, centre_distance: float = 13.0, seed=0
):
    """Draw ``k`` points from an (m, radius)-clusterable law meeting Lemma 3.3's spacing.

    Greenewald et al. 2023, Sec. 3.2: the support lies in m balls of radius ``radius``
    (the paper's Delta); Lemma 3.3 asks for pairwise gaps of at least 2 Delta, i.e. a
    centre distance of at least 4 Delta.  The centres are the vertices of a regular
    simplex with edge ``centre_distance * radius``; points are uniform in the balls.

    The paper's spacing suffices for m = 2 but NOT for m >= 3 (see
    :func:`predicted_cross_cluster_matches`).  The default edge 13 Delta satisfies the
    sufficient condition derived there (edge > 12 Delta on a simplex).

    Parameters
    ----------
    k : int
        Number of points.
    probs : array-like, shape (m,)
        Cluster masses p_1..p_m.
    dim : int
        Ambient dimension, must be >= m - 1 so the m centres fit on a simplex.
    radius : float
        Ball radius Delta.
    centre_distance : float
        Distance between cluster centres in units of ``radius``; must be > 2 (disjoint
        balls).
    seed : int or numpy.random.Generator
        Integer seed or a numpy Generator (the simulations pass theirs along).

    Returns
    -------
    points : numpy.ndarray, shape (k, dim)
    labels : numpy.ndarray of int, shape (k,)
        Cluster index of each point.
    """
    k = check_int("k", k, minimum=1)
    p = _check_probs(probs)
    m = p.size
    dim = check_int("dim", dim, minimum=max(1, m - 1))
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius}")
    if not (np.isfinite(centre_distance) and centre_distance > 2):
        raise ValueError(f"centre_distance must be a finite number > 2 (in radii), got {centre_distance}")
    rng = np.random.default_rng(seed)
    # Regular simplex: standard basis of R^m centred, expressed in an orthonormal basis
    # of its (m-1)-dim span; pairwise distance sqrt(2) before scaling.
    basis = np.eye(m) - 1.0 / m
    q, _ = np.linalg.qr(basis.T)
    centres = np.zeros((m, dim))
    centres[:, : max(m - 1, 1)] = (basis @ q)[:, : max(m - 1, 1)]
    centres *= centre_distance * radius / np.sqrt(2.0)
    labels = rng.choice(m, size=k, p=p)
    direction = rng.normal(size=(k, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    r = radius * rng.random(k) ** (1.0 / dim)  # uniform in the ball
    return centres[labels] + r[:, None] * direction, labels


def predicted_cross_cluster_matches(labels_a, labels_b, n_clusters: int) -> int:
    """Lemma 3.3 count of cross-cluster matches: ``(1/2) sum_i |r_i - s_i|``.

    Greenewald et al. 2023, Lemma 3.3: with well-separated clusters, the optimal
    matching of two batches has exactly this many cross-cluster pairs, r_i and s_i
    being the cluster counts of the two batches.  It is always a lower bound
    (pigeonhole, first half of App. E).

    The paper's condition (gaps between the covering balls >= 2 Delta) makes it exact
    for m = 2 clusters only.  For m >= 3 the proof's cycle argument misses relays:
    surplus matches may form a path A -> B -> C, which is cheaper than A -> C plus an
    intra-B match when B lies between A and C.  Counterexample in 1-D, Delta = 0:
    batch 1 = {0, 10}, batch 2 = {10, 20} have (1/2) sum |r - s| = 1, but the optimal
    matching 0->10, 10->20 (cost 200 < 400) has 2 cross matches.  A sufficient
    condition for exactness with any m: for all distinct clusters A, B, C,
    ``dmax(A, C)^2 + (2 Delta)^2 < dmin(A, B)^2 + dmin(B, C)^2`` (then replacing
    A->B, B->C by A->C, B->B always lowers the cost); for simplex centres at mutual
    distance D this holds when D > 12 Delta.

    Parameters
    ----------
    labels_a, labels_b : array-like of int, shape (k,)
        Cluster index of each point in batch 1 and batch 2.
    n_clusters : int
        Number of clusters m.

    Returns
    -------
    int
    """
    r = np.bincount(np.asarray(labels_a), minlength=n_clusters)
    s = np.bincount(np.asarray(labels_b), minlength=n_clusters)
    return int(np.abs(r - s).sum() // 2)


@dataclass(frozen=True)
class CrossClusterTrial:
    """Observed vs Lemma 3.3 cross-cluster matches for one pair of k-batches.

    Attributes
    ----------
    observed : int
        Cross-cluster pairs in the exact optimal matching.
    predicted : int
        ``(1/2) sum_i |r_i - s_i|`` (Lemma 3.3).
    """

    observed: int
    predicted: int


def simulate_cross_cluster_matches(
    k: int,
    probs,
    *,
    n_trials: int,
    dim: int = 2,
    radius: float = 1.0,
    centre_distance: float = 13.0,
    seed: int = 0,
) -> list[CrossClusterTrial]:
    """Match pairs of k-batches from separated clusters and count cross-cluster pairs.

    Greenewald et al. 2023, Lemma 3.3 and Theorem 3.4: each trial draws two
    independent batches with :func:`sample_separated_clusters`, matches them with
    :func:`optimal_matching`, and records the observed count next to Lemma 3.3's.

    Parameters
    ----------
    k : int
        Batch size.
    probs : array-like, shape (m,)
        Cluster masses.
    n_trials : int
        Number of batch pairs.
    dim, radius, centre_distance : see :func:`sample_separated_clusters`.
    seed : int
        Seed of the numpy Generator used for all trials.

    Returns
    -------
    list of CrossClusterTrial
    """
    n_trials = check_int("n_trials", n_trials, minimum=1)
    p = _check_probs(probs)
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_trials):
        kwargs = {"dim": dim, "radius": radius, "centre_distance": centre_distance, "seed": rng}
        xa, la = sample_separated_clusters(k, p, **kwargs)
        xb, lb = sample_separated_clusters(k, p, **kwargs)
        sigma = optimal_matching(xa, xb)
        observed = int(np.sum(la != lb[sigma]))
        trials.append(CrossClusterTrial(observed, predicted_cross_cluster_matches(la, lb, p.size)))
    return trials


def exact_cross_cluster_fraction(k: int, probs) -> float:
    """Exact E[(1/2) sum_i |r_i - s_i|] / k for two independent k-batches.

    Greenewald et al. 2023, Theorem 3.4 (App. F): by Lemma 3.3 the cross-cluster
    fraction is (1/2k) sum_i |r_i - s_i|, and r_i, s_i are independent Binomial(k, p_i).
    E|r_i - s_i| is exact instead of the paper's Jensen bound: for i.i.d. integer
    variables with cdf F, E|r - s| = 2 sum_t F(t) (1 - F(t)).

    Parameters
    ----------
    k : int
        Batch size.
    probs : array-like, shape (m,)
        Cluster masses.

    Returns
    -------
    float
    """
    k = check_int("k", k, minimum=1)
    p = _check_probs(probs)
    cdf = stats.binom.cdf(np.arange(k)[None, :], k, p[:, None])
    mean_abs_diff = 2.0 * np.sum(cdf * (1.0 - cdf), axis=1)  # E|r_i - s_i| per cluster
    return float(mean_abs_diff.sum() / (2 * k))


def cross_cluster_bound(k: int, probs) -> float:
    """Theorem 3.4 bound ``(2k)^(-1/2) sum_i sqrt(p_i (1 - p_i))``.

    Greenewald et al. 2023, Theorem 3.4 and its proof (App. F, Jensen's inequality):
    an upper bound on the expected fraction of cross-cluster matches.

    Parameters
    ----------
    k : int
        Batch size.
    probs : array-like, shape (m,)
        Cluster masses.

    Returns
    -------
    float
    """
    k = check_int("k", k, minimum=1)
    p = _check_probs(probs)
    return float(np.sum(np.sqrt(p * (1 - p))) / np.sqrt(2 * k))


def fit_power_law(k_values, fractions) -> tuple[float, float]:
    """Least-squares fit of ``fraction = C * k**exponent`` on a log-log scale.

    Used to check the k^(-1/2) rate of Greenewald et al. 2023, Theorem 3.4.

    Parameters
    ----------
    k_values, fractions : array-like, shape (n,)
        Positive values, n >= 2.

    Returns
    -------
    exponent : float
    constant : float
    """
    k_arr = np.asarray(k_values, dtype=np.float64)
    f_arr = np.asarray(fractions, dtype=np.float64)
    if k_arr.shape != f_arr.shape or k_arr.ndim != 1 or k_arr.size < 2:
        raise ValueError(f"k_values and fractions must be 1-D of equal length >= 2, got {k_arr.shape}, {f_arr.shape}")
    if np.any(k_arr <= 0) or np.any(f_arr <= 0):
        raise ValueError("k_values and fractions must be > 0 for a log-log fit")
    slope, intercept = np.polyfit(np.log(k_arr), np.log(f_arr), 1)
    return float(slope), float(np.exp(intercept))


def matching_distribution(x, index: int, *, k: int, n_trials: int, seed: int = 0) -> np.ndarray:
    """Monte Carlo estimate of D_i, the law of the partner of ``x[index]`` under k-Mixup.

    Greenewald et al. 2023, Sec. 4, eq. (1) and Fig. 3: average, over all k-subsets
    gamma containing x_i and all k-subsets zeta, of the point mass at x_i's optimal
    partner sigma_{gamma zeta}(x_i).  Each trial draws gamma = {i} plus k - 1 other
    indices uniformly without replacement, zeta a uniform k-subset, solves the exact
    matching and records the partner's index.  k = 1 gives the uniform law over the
    dataset; k = n gives a point mass at x_i.

    Parameters
    ----------
    x : array-like, shape (n, d)
        Dataset.
    index : int
        The point i.
    k : int
        Block size, 1 <= k <= n.
    n_trials : int
        Number of (gamma, zeta) draws.
    seed : int
        Seed of the numpy Generator.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Estimated probability that x[index] is matched with each dataset point.
    """
    points = np.asarray(x, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 1:
        raise ValueError(f"x must be an (n, d) array, got shape {points.shape}")
    n = points.shape[0]
    k = check_int("k", k, minimum=1)
    if k > n:
        raise ValueError(f"k must be <= the number of samples {n}, got k={k}")
    index = check_int("index", index, minimum=0)
    if index >= n:
        raise ValueError(f"index must be < the number of samples {n}, got {index}")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    rng = np.random.default_rng(seed)
    others = np.delete(np.arange(n), index)
    counts = np.zeros(n)
    for _ in range(n_trials):
        gamma = np.concatenate([[index], rng.choice(others, size=k - 1, replace=False)])
        zeta = rng.choice(n, size=k, replace=False)
        sigma = optimal_matching(points[gamma], points[zeta])
        counts[zeta[sigma[0]]] += 1
    return counts / n_trials
