"""Approximate mixup risk: Lemma 1, Theorem 2, Corollaries 1-3 of Carratino et al. 2020."""

import math

import numpy as np
import pytest
import torch
from scipy.special import roots_jacobi
from torch import nn
from torch.func import hessian

from vicinal.approx import (_loss_derivatives, _loss_value, approximate_mixup_loss, mixup_regularizers,
                            perturbation_covariance)
from vicinal.lam import sample_lam
from vicinal.moments import theta_bar
from vicinal.rescale import fit_stats

TARGET_WIDTH = {"cross_entropy": 3, "logistic": 1, "squared_error": 2}


def _problem(loss, seed=0, n=8, d=2, spread=1.0):
    """A tiny float64 data set (whole training set = one batch), its stats, and a tanh MLP."""
    g = torch.Generator().manual_seed(seed)
    c = TARGET_WIDTH[loss]
    x = 0.5 + torch.randn(n, d, generator=g, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.softmax(2 * torch.randn(n, c, generator=g, dtype=torch.float64), 1)
    elif loss == "logistic":
        y = torch.randint(0, 2, (n,), generator=g).double()
    else:
        y = torch.randn(n, c, generator=g, dtype=torch.float64)
    # Shrink the data about its mean by `spread`: perturbations (eq. 6) scale with it.
    x = x.mean(0) + spread * (x - x.mean(0))
    y = y.mean(0) + spread * (y - y.mean(0))
    torch.manual_seed(seed)
    layers = [nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, c)]
    if loss == "logistic":
        layers.append(nn.Flatten(0))
    return x, y, fit_stats((x, y)), nn.Sequential(*layers).double()


def _mixup_risk(model, x, y, loss, alpha, n_nodes=40):
    """Eq. (4): (1/n^2) sum_ij E_lambda l(mix of y, f(mix of x)), lambda ~ Beta(alpha, alpha) by Gauss-Jacobi."""
    nodes, weights = roots_jacobi(n_nodes, alpha - 1, alpha - 1)
    lam = torch.tensor((nodes + 1) / 2, dtype=torch.float64)[:, None, None, None]
    w = torch.tensor(weights / weights.sum(), dtype=torch.float64)
    y2 = y.reshape(len(y), -1)
    xm = lam * x[None, :, None] + (1 - lam) * x[None, None, :]          # (q, n, n, d)
    ym = lam * y2[None, :, None] + (1 - lam) * y2[None, None, :]
    out = model(xm.reshape(-1, x.shape[1])).reshape(-1, y2.shape[1])
    per = _loss_value(loss, ym.reshape(-1, y2.shape[1]), out).reshape(len(w), -1)
    return (w @ per.mean(dim=1))


# ----------------------------------------------------------------------------- Lemma 1 and Theorem 1

def test_lemma1_covariances_match_monte_carlo_of_the_perturbations():
    x, y, stats, _ = _problem("squared_error", n=6, d=2)
    alpha, draws = 0.7, 200_000
    g = torch.Generator().manual_seed(1)
    theta = sample_lam(draws, alpha, lam_mode="sample", truncate=True, generator=g, dtype=torch.float64)
    j = torch.randint(0, 6, (draws,), generator=g)
    tb = theta_bar(alpha)
    t = theta[:, None, None]
    # Eq. (6) for every i at once: (draws, n, d) and (draws, n, c).
    delta = (t - tb) * x[None] + (1 - t) * x[j][:, None] - (1 - tb) * stats.x_mean
    eps = (t - tb) * y[None] + (1 - t) * y[j][:, None] - (1 - tb) * stats.y_mean
    cov = perturbation_covariance(x, y, alpha=alpha, stats=stats)
    scale = float(cov.joint().abs().max())
    tol = 6 * scale / math.sqrt(draws) * 3
    assert delta.mean(0).abs().max() < tol and eps.mean(0).abs().max() < tol  # Theorem 1: zero mean
    torch.testing.assert_close(torch.einsum("mia,mib->iab", delta, delta) / draws, cov.xx, rtol=0, atol=tol)
    torch.testing.assert_close(torch.einsum("mia,mib->iab", delta, eps) / draws, cov.xy, rtol=0, atol=tol)
    torch.testing.assert_close(torch.einsum("mia,mib->iab", eps, eps) / draws, cov.yy, rtol=0, atol=tol)


def test_joint_covariance_is_symmetric_positive_semidefinite():
    x, y, stats, _ = _problem("cross_entropy", n=5, d=3)
    joint = perturbation_covariance(x, y, alpha=2.0, stats=stats).joint()
    torch.testing.assert_close(joint, joint.transpose(1, 2))
    assert torch.linalg.eigvalsh(joint).min() > -1e-12


# ----------------------------------------------------------------------------- Theorem 2 / Corollaries

@pytest.mark.parametrize("loss", sorted(TARGET_WIDTH))
def test_loss_derivatives_are_the_corollaries_closed_forms(loss):
    # App. A.4-A.6 against autograd of l(y, u) in the joint variable (u, y).
    c = TARGET_WIDTH[loss]
    g = torch.Generator().manual_seed(3)
    u = torch.randn(4, c, generator=g, dtype=torch.float64)
    y = torch.softmax(torch.randn(4, c, generator=g, dtype=torch.float64), 1) if c > 1 else torch.rand(4, 1, dtype=torch.float64, generator=g)
    l_u, l_uu, l_uy, l_yy = _loss_derivatives(loss, y, u)
    for i in range(4):
        joint = hessian(lambda uy: _loss_value(loss, uy[c:][None], uy[:c][None]).sum())(torch.cat([u[i], y[i]]))
        grad = torch.func.grad(lambda uu: _loss_value(loss, y[i][None], uu[None]).sum())(u[i])
        torch.testing.assert_close(l_u[i], grad)
        torch.testing.assert_close(l_uu[i], joint[:c, :c])
        torch.testing.assert_close(l_uy[i], joint[:c, c:])
        torch.testing.assert_close(l_yy[i], joint[c:, c:])


@pytest.mark.parametrize("loss", sorted(TARGET_WIDTH))
@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0])
def test_theorem2_split_sums_to_the_hessian_form(loss, alpha):
    # R1..R4 (pseudo-inverses, loss closed forms) and the joint-Hessian form (eq. 33) are independent
    # code paths; eq. (34) says they agree. A batch smaller than d + 1 makes A singular (pinv case).
    for n, d in [(9, 2), (3, 4)]:
        x, y, stats, model = _problem(loss, n=n, d=d)
        terms = mixup_regularizers(model, x, y, alpha=alpha, stats=stats, loss=loss)
        exact = approximate_mixup_loss(model, x, y, alpha=alpha, stats=stats, loss=loss)
        assert terms.total.item() == pytest.approx(exact.item(), rel=1e-10, abs=1e-12)
        assert terms.r1.item() >= 0 >= terms.r3.item()
        if loss != "squared_error":
            assert terms.r4.item() == 0.0


@pytest.mark.parametrize("loss", sorted(TARGET_WIDTH))
def test_approximation_error_is_third_order_in_the_perturbation_size(loss):
    # E_Q (eq. 10) is a second-order Taylor expansion of the mixup risk (eq. 4 via Theorem 1), so
    # |E_mixup - E_Q| / spread^3 stays bounded while ERM alone is off by O(spread^2).
    spreads = np.array([0.2, 0.1, 0.05])
    errors, gaps = [], []
    for spread in spreads:
        x, y, stats, model = _problem(loss, seed=4, spread=spread)
        with torch.no_grad():
            risk = _mixup_risk(model, x, y, loss, alpha=1.0).item()
        approx = approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, loss=loss).item()
        erm = mixup_regularizers(model, x, y, alpha=1.0, stats=stats, loss=loss).erm.item()
        errors.append(abs(risk - approx))
        gaps.append(abs(risk - erm))
    errors, gaps = np.array(errors), np.array(gaps)
    # The error is O(spread^3): error / spread^3 does not grow as the spread shrinks.
    assert np.all(errors / spreads ** 3 <= 1.5 * errors[0] / spreads[0] ** 3), errors
    # The regularisers matter: ERM on modified data alone is only second-order accurate.
    gap_slopes = np.log2(gaps[:-1] / gaps[1:])
    assert np.all(np.abs(gap_slopes - 2) < 0.4), (gaps, gap_slopes)
    assert errors[-1] < 0.2 * gaps[-1]


def test_corollary3_approximation_is_exact_for_linear_least_squares():
    # For f(x) = Wx + b and the squared error the Taylor expansion is exact: E_Q = E_mixup.
    x, y, stats, _ = _problem("squared_error", n=7, d=3)
    model = nn.Linear(3, 2).double()
    for alpha in (0.2, 1.0, 5.0):
        with torch.no_grad():
            risk = float(_mixup_risk(model, x, y, "squared_error", alpha))
        approx = approximate_mixup_loss(model, x, y, alpha=alpha, stats=stats, loss="squared_error").item()
        assert approx == pytest.approx(risk, rel=1e-10)


def test_corollary3_mixup_optimum_of_a_linear_model_is_ordinary_least_squares():
    x, y, stats, _ = _problem("squared_error", n=15, d=3)
    design = torch.cat([x, torch.ones(15, 1, dtype=torch.float64)], 1)
    ols = torch.linalg.lstsq(design, y).solution
    # (a) Weighted least squares on all mixed pairs and quadrature lambdas (the mixup risk itself).
    nodes, weights = roots_jacobi(6, 0.5 - 1, 0.5 - 1)
    lam = torch.tensor((nodes + 1) / 2)[:, None, None, None]
    root_w = torch.tensor(np.sqrt(weights / weights.sum()))[:, None, None, None]
    mixed_x = lam * design[None, :, None] + (1 - lam) * design[None, None, :]
    mixed_y = lam * y[None, :, None] + (1 - lam) * y[None, None, :]
    mixup_solution = torch.linalg.lstsq((root_w * mixed_x).reshape(-1, 4), (root_w * mixed_y).reshape(-1, 2)).solution
    torch.testing.assert_close(mixup_solution, ols, rtol=0, atol=1e-10)
    # (b) Minimising the library's approximate mixup loss over a linear model lands on OLS too.
    model = nn.Linear(3, 2).double()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=200, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = approximate_mixup_loss(model, x, y, alpha=0.5, stats=stats, loss="squared_error")
        value.backward()
        return value

    optimizer.step(closure)
    torch.testing.assert_close(model.weight.detach().T, ols[:3], rtol=0, atol=1e-6)
    torch.testing.assert_close(model.bias.detach(), ols[3], rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- estimators

def test_stochastic_estimator_is_unbiased_with_the_documented_variance():
    loss, alpha = "cross_entropy", 1.0
    x, y, stats, model = _problem(loss, n=6, d=2)
    exact = approximate_mixup_loss(model, x, y, alpha=alpha, stats=stats, loss=loss, reduction="none").detach()
    g = torch.Generator().manual_seed(5)
    draws = torch.stack([
        approximate_mixup_loss(model, x, y, alpha=alpha, stats=stats, loss=loss, estimator="stochastic",
                               generator=g, reduction="none").detach()
        for _ in range(1500)
    ])
    # Documented variance of one probe: tr((H Sigma)^2) / 2 with H the joint Hessian of l(y, f(x)).
    x_t = stats.x_mean + theta_bar(alpha) * (x - stats.x_mean)
    y_t = stats.y_mean + theta_bar(alpha) * (y - stats.y_mean)
    sigma = perturbation_covariance(x, y, alpha=alpha, stats=stats).joint()
    variance = []
    for i in range(6):
        h = hessian(lambda v: _loss_value(loss, v[2:][None], model(v[:2][None])).sum())(torch.cat([x_t[i], y_t[i]]))
        hs = (h @ sigma[i]).detach()
        variance.append(0.5 * float(torch.trace(hs @ hs)))
    variance = torch.tensor(variance, dtype=torch.float64)
    assert torch.all((draws.mean(0) - exact).abs() < 5 * (variance / len(draws)).sqrt())
    torch.testing.assert_close(draws.var(0), variance, rtol=0.25, atol=0)


def test_stochastic_estimator_is_reproducible():
    x, y, stats, model = _problem("logistic")
    run = lambda seed: approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, loss="logistic",
                                              estimator="stochastic", n_samples=3,
                                              generator=torch.Generator().manual_seed(seed)).item()
    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("include_r2", [True, False])
@pytest.mark.parametrize("estimator", ["exact", "stochastic"])
def test_gradient_matches_finite_differences(estimator, include_r2):
    x, y, stats, model = _problem("cross_entropy", n=5)
    weight = model[0].weight

    def value():
        return approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, estimator=estimator, n_samples=2,
                                      generator=torch.Generator().manual_seed(0), include_r2=include_r2)

    value().backward()
    h = 1e-6
    with torch.no_grad():
        weight[0, 1] += h
        up = value().item()
        weight[0, 1] -= 2 * h
        down = value().item()
        weight[0, 1] += h
    assert float(weight.grad[0, 1]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_accepts_index_labels_and_images():
    g = torch.Generator().manual_seed(6)
    x = torch.rand(6, 1, 2, 2, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    stats = fit_stats((x, y), num_classes=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    exact = approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats)
    split = mixup_regularizers(model, x, y, alpha=1.0, stats=stats)
    assert exact.item() == pytest.approx(split.total.item(), rel=1e-10)


# ----------------------------------------------------------------------------- bad input

def test_rejects_bad_input():
    x, y, stats, model = _problem("cross_entropy")
    for alpha in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
            approximate_mixup_loss(model, x, y, alpha=alpha, stats=stats)
    with pytest.raises(ValueError, match=r"model outputs have shape \(8, 2\) but the targets have 3 value"):
        approximate_mixup_loss(nn.Linear(2, 2).double(), x, y, alpha=1.0, stats=stats)
    with pytest.raises(ValueError, match=r"loss must be one of .*got 'mse'"):
        approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, loss="mse")
    with pytest.raises(ValueError, match=r"estimator must be one of 'exact', 'stochastic'; got 'hutchinson'"):
        approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, estimator="hutchinson")
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1, got 0"):
        approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, estimator="stochastic", n_samples=0)
    with pytest.raises(ValueError, match="loss='logistic' needs one 0/1 target per sample"):
        mixup_regularizers(model, x, y, alpha=1.0, stats=stats, loss="logistic")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, estimator="stochastic", generator=3)
    xs, ys, stats_s, model_s = _problem("logistic")
    with pytest.raises(ValueError, match="loss='cross_entropy' needs class targets"):
        approximate_mixup_loss(model_s, xs, ys, alpha=1.0, stats=stats_s)


@pytest.mark.parametrize("loss", sorted(TARGET_WIDTH))
def test_dropping_r2_leaves_the_other_terms(loss):
    # Sec. 5, Fig. 2: the paper trains on l + R1 + R3 + R4 (no Hessian-of-f term).
    x, y, stats, model = _problem(loss, n=7, d=3)
    terms = mixup_regularizers(model, x, y, alpha=0.5, stats=stats, loss=loss)
    without = approximate_mixup_loss(model, x, y, alpha=0.5, stats=stats, loss=loss, include_r2=False)
    assert without.item() == pytest.approx((terms.total - terms.r2).item(), rel=1e-10)
    assert abs(terms.r2.item()) > 1e-6  # the check is not vacuous
    draws = torch.stack([
        approximate_mixup_loss(model, x, y, alpha=0.5, stats=stats, loss=loss, include_r2=False,
                               estimator="stochastic", n_samples=20, generator=torch.Generator().manual_seed(s))
        for s in range(30)
    ]).detach()
    assert abs(draws.mean().item() - without.item()) < 5 * draws.std().item() / math.sqrt(30)


def test_include_r2_must_be_a_bool():
    x, y, stats, model = _problem("cross_entropy")
    with pytest.raises(TypeError, match="include_r2 must be True or False, got 'no'"):
        approximate_mixup_loss(model, x, y, alpha=1.0, stats=stats, include_r2="no")
