"""Local Mixup against eq. (2) itself: brute force over every pair (i, j), lambda integrated by quadrature.

The ground truth here is written from the paper, independently of the library: numpy float64, every
pair enumerated (diagonal included), the Beta(alpha, alpha) expectation over lambda by Gauss-Jacobi
quadrature. The estimators are the library's mixers + mixup_loss, averaged over many seeds.
"""

import numpy as np
import pytest
import torch
from scipy import special

import vicinal as v

B, C = 8, 3


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (B,), generator=g)
    weight = torch.randn(2, C, generator=g, dtype=torch.float64)
    return x, y, weight


def beta_expectation_nodes(alpha, n=80):
    """Gauss-Jacobi nodes and weights with sum_k w_k g(lam_k) = E_{lam ~ Beta(alpha, alpha)}[g(lam)] for smooth g."""
    t, w = special.roots_jacobi(n, alpha - 1, alpha - 1)  # weight (1 - t)^(a-1) (1 + t)^(a-1) on [-1, 1]
    return (1 + t) / 2, w / w.sum()


def eq2_brute_force(x, y, weight, w_matrix, alpha):
    """E_lambda[(1/B^2) sum_{i,j} W_ij CE(f(lam x_i + (1-lam) x_j), lam y_i + (1-lam) y_j)], f(x) = x @ weight.

    Every (i, j) enumerated (diagonal included), lambda integrated by Gauss-Jacobi quadrature, numpy float64."""
    xn, wn, a = x.numpy(), w_matrix.numpy(), weight.numpy()
    onehot = np.eye(C)[y.numpy()]
    lam, lam_weight = beta_expectation_nodes(alpha)
    l3 = lam[:, None, None, None]
    mixed_x = l3 * xn[None, :, None, :] + (1 - l3) * xn[None, None, :, :]   # (n, i, j, d)
    mixed_y = l3 * onehot[None, :, None, :] + (1 - l3) * onehot[None, None, :, :]
    z = mixed_x @ a
    log_p = z - special.logsumexp(z, axis=-1, keepdims=True)
    pair_loss = -(mixed_y * log_p).sum(-1)                                # (n, i, j)
    expected = np.tensordot(lam_weight, pair_loss, axes=1)                # (i, j)
    return float((wn * expected).sum() / B ** 2)


def monte_carlo(mixer, x, y, weight, n_draws, reduction="mean"):
    g = torch.Generator().manual_seed(123)
    values = np.empty(n_draws)
    for s in range(n_draws):
        batch = mixer(x, y, generator=g)
        values[s] = float(v.mixup_loss(batch.inputs @ weight, batch, reduction=reduction))
    return values.mean(), values.std(ddof=1) / np.sqrt(n_draws)


GRAPHS = {
    "threshold-25%": lambda x: v.Threshold(eps=float(torch.quantile(v.graphs.off_diagonal(
        v.pairwise_distances(x), same_set=True), 0.25))),
    "threshold-eps0": lambda x: v.Threshold(eps=0.0),
    "quantile-40%": lambda x: v.Threshold(quantile=0.4),
    "knn-2": lambda x: v.KNN(n_neighbors=2),
    "exponential": lambda x: v.Exponential(decay=0.8),
    "exponential-relative": lambda x: v.Exponential(decay=2.0, relative=True),
}


@pytest.mark.parametrize("sampling", ["uniform", "weighted"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_both_samplings_are_unbiased_for_eq2_diagonal_included(name, sampling):
    x, y, weight = problem()
    graph = GRAPHS[name](x)
    alpha = 0.5
    truth = eq2_brute_force(x, y, weight, graph.matrix(x), alpha)
    mixer = v.LocalMixup(alpha=alpha, graph=graph, sampling=sampling, num_classes=C)
    mean, se = monte_carlo(mixer, x, y, weight, 3000)
    assert abs(mean - truth) < 4 * se + 1e-12, (name, sampling, mean, truth, se)


def test_dropping_the_diagonal_is_detected():
    """The test above has the power to see the old bias: the off-diagonal-only estimator (a random cycle,
    never self, as RandomPairing) misses eq. 2 by many standard errors on the same problem."""
    x, y, weight = problem()
    graph = GRAPHS["threshold-25%"](x)
    truth = eq2_brute_force(x, y, weight, graph.matrix(x), 0.5)
    cycle = v.Mixer(alpha=0.5, pairing=v.RandomPairing(), graph=graph, num_classes=C)
    mean, se = monte_carlo(cycle, x, y, weight, 3000)
    assert abs(mean - truth) > 10 * se


@pytest.mark.parametrize("graph", [v.Threshold(eps=0.0), v.KNN(n_neighbors=0)])
def test_eps_zero_is_plain_training_with_scale_one_over_b(graph):
    """eps = 0: weighted sampling gives exactly the plain loss / B ("mean") and the plain loss ("normalized");
    uniform sampling gives the plain loss / B in expectation ("mean")."""
    x, y, weight = problem()
    plain = float(torch.nn.functional.cross_entropy(x @ weight, y))
    batch = v.LocalMixup(alpha=1.0, graph=graph, sampling="weighted", num_classes=C)(x, y)
    assert float(v.mixup_loss(batch.inputs @ weight, batch)) == pytest.approx(plain / B, rel=1e-12)
    assert float(v.mixup_loss(batch.inputs @ weight, batch, reduction="normalized")) == pytest.approx(plain, rel=1e-12)
    mean, se = monte_carlo(v.LocalMixup(alpha=1.0, graph=graph, num_classes=C), x, y, weight, 4000)
    assert abs(mean - plain / B) < 4 * se
