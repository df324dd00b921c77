"""Proposition 1 of Carratino et al. 2020: mixup's label smoothing raises the entropy of a linear
softmax model's predictions."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from vicinal.moments import theta_bar
from vicinal.rescale import fit_stats, modified_data


def _entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def _fit_linear_softmax(x, targets):
    """argmin_W (1/n) sum_i l_CE(t_i, W x_i) (eq. 23 / 24), a smooth convex problem."""
    n, d = x.shape
    c = targets.shape[1]

    def objective(flat):
        logits = x @ flat.reshape(c, d).T
        value = -np.sum(targets * log_softmax(logits, axis=1)) / n
        grad = (softmax(logits, axis=1) - targets).T @ x / n
        return value, grad.ravel()

    result = minimize(objective, np.zeros(c * d), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    weights = result.x.reshape(c, d)
    return weights, softmax(x @ weights.T, axis=1)


def _data(seed, n=300, d=4, c=3):
    """Overlapping Gaussian classes plus a constant feature: not separable, so (23) has a finite optimum."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    centres = rng.normal(size=(c, d - 1))
    x = np.hstack([centres[labels] + 1.5 * rng.normal(size=(n, d - 1)), np.ones((n, 1))])
    return x, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.2, 1.0, 8.0])
def test_label_smoothing_raises_prediction_entropy(seed, alpha):
    x, labels = _data(seed)
    one_hot = np.eye(3)[labels]
    stats = fit_stats((torch.tensor(x), torch.tensor(labels)), num_classes=3)
    # Prop. 1 smooths the targets only: y~_i = y_bar + theta_bar (y_i - y_bar), inputs unchanged.
    _, smoothed = modified_data(torch.tensor(x), torch.tensor(labels), alpha=alpha, stats=stats)
    smoothed = smoothed.numpy()
    y_bar = stats.y_mean.numpy()

    w_plain, p = _fit_linear_softmax(x, one_hot)
    w_smooth, p_tilde = _fit_linear_softmax(x, smoothed)
    # Both fits satisfy the first-order conditions sum_i (p_i - t_i) x_i^T = 0 used in the proof.
    assert np.abs((p - one_hot).T @ x).max() / len(x) < 1e-6
    assert np.abs((p_tilde - smoothed).T @ x).max() / len(x) < 1e-6

    shrink = theta_bar(alpha)
    mean_plain, mean_smooth = _entropy(p).mean(), _entropy(p_tilde).mean()
    assert shrink * mean_plain + (1 - shrink) * _entropy(y_bar) <= mean_smooth + 1e-9
    # The premise of the second claim holds here (ERM predictions are more certain than y_bar) ...
    assert mean_plain <= _entropy(y_bar)
    # ... so label smoothing increases the average entropy, strictly unless theta_bar = 1.
    assert mean_plain < mean_smooth


def test_mixture_of_plain_predictions_is_dual_feasible_for_smoothed_labels():
    # The proof's feasible point q_i = theta_bar p_i + (1 - theta_bar) y_bar satisfies the dual
    # constraint of (24): sum_i (q_i - y~_i) x_i^T = 0 at the plain optimum.
    x, labels = _data(5)
    one_hot = np.eye(3)[labels]
    stats = fit_stats((torch.tensor(x), torch.tensor(labels)), num_classes=3)
    _, smoothed = modified_data(torch.tensor(x), torch.tensor(labels), alpha=1.0, stats=stats)
    _, p = _fit_linear_softmax(x, one_hot)
    q = 0.75 * p + 0.25 * stats.y_mean.numpy()
    assert np.abs((q - smoothed.numpy()).T @ x).max() / len(x) < 1e-6
