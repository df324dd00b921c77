"""Lipschitz lower bound Q(D) of Local Mixup (Baena et al. 2022, Sec. V-B, Fig. 4)."""

import numpy as np
import pytest
import torch

from vicinal.theory.lipschitz import lipschitz_lower_bound, lipschitz_lower_bound_curve, mixed_training_set


def _brute_force_q(x, y, eps, n_lambda):
    """Independent O(v^2) reference: enumerate V_eps with loops, compare every pair."""
    x = np.asarray(x, float).reshape(len(x), -1)
    y = np.asarray(y, float).reshape(len(y), -1)
    vx, vy = list(x), list(y)
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if np.linalg.norm(x[i] - x[j]) <= eps:
                for lam in np.linspace(0, 1, n_lambda)[1:-1]:
                    vx.append(lam * x[i] + (1 - lam) * x[j])
                    vy.append(lam * y[i] + (1 - lam) * y[j])
    best = 0.0
    for a in range(len(vx)):
        for b in range(a + 1, len(vx)):
            dx, dy = np.linalg.norm(vx[a] - vx[b]), np.linalg.norm(vy[a] - vy[b])
            if dx == 0:
                if dy > 0:
                    return np.inf
                continue
            best = max(best, dy / dx)
    return best


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 2))
    y = np.eye(3)[rng.integers(3, size=10)]
    return x, y


@pytest.mark.parametrize("dim", [2, 10])  # KD-tree path and all-pairs torch path
@pytest.mark.parametrize("eps", [0.0, 0.8, 1.5, np.inf])
def test_matches_independent_brute_force(small_data, dim, eps):
    x, y = small_data
    x = np.pad(x, ((0, 0), (0, dim - 2)))
    expected = _brute_force_q(x, y, eps, n_lambda=4)
    assert lipschitz_lower_bound(x, y, eps=eps, n_lambda=4, chunk_size=7) == pytest.approx(expected, rel=1e-12)


def test_eps_zero_is_vanilla_pairwise_slope(small_data):
    x, y = small_data
    i, j = np.triu_indices(10, k=1)
    vanilla = np.max(np.linalg.norm(y[i] - y[j], axis=1) / np.linalg.norm(x[i] - x[j], axis=1))
    assert lipschitz_lower_bound(x, y, eps=0.0) == pytest.approx(vanilla, rel=1e-12)
    # A lam grid without interior points is vanilla for every eps.
    assert lipschitz_lower_bound(x, y, eps=np.inf, n_lambda=2) == pytest.approx(vanilla, rel=1e-12)


def test_affine_targets_give_the_slope_for_every_eps():
    # Every virtual sample satisfies y~ = 3 x~ - 1, so every ratio is exactly 3.
    x = np.random.default_rng(1).random(15)
    for eps in (0.0, 0.1, 0.5, np.inf):
        assert lipschitz_lower_bound(x, 3 * x - 1, eps=eps, n_lambda=5) == pytest.approx(3.0, rel=1e-9)


def test_two_points_segment_does_not_raise_the_bound():
    x, y = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    for eps in (0.0, 5.0, np.inf):
        assert lipschitz_lower_bound(x, y, eps=eps, n_lambda=9) == pytest.approx(np.sqrt(2) / 5, rel=1e-12)


def test_crossing_segments_of_two_classes():
    # Class A at (+-1, 0), class B at (0, +-1): the two same-class diagonals (length 2)
    # cross at the origin with different mixed targets, so Mixup cannot be fitted.
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    y = np.eye(2)[[0, 0, 1, 1]]
    assert lipschitz_lower_bound(x, y, eps=np.inf, n_lambda=3) == np.inf
    assert lipschitz_lower_bound(np.pad(x, ((0, 0), (0, 9))), y, eps=np.inf, n_lambda=3) == np.inf
    # eps < 2 drops the diagonals; the cross-class sides (length sqrt 2) remain.
    local = lipschitz_lower_bound(x, y, eps=1.5, n_lambda=3)
    assert np.isfinite(local)
    assert local == pytest.approx(_brute_force_q(x, y, 1.5, 3), rel=1e-12)
    # Vanilla: sqrt(2) target gap over sqrt(2) input gap.
    assert lipschitz_lower_bound(x, y, eps=0.0) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("dim", [2, 12])
def test_curve_is_nondecreasing_from_vanilla_to_mixup(dim):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, dim))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    diameter = np.max(np.linalg.norm(x[:, None] - x[None], axis=-1))
    eps = np.linspace(0, diameter, 6)
    curve = lipschitz_lower_bound_curve(x, y, eps)
    assert np.all(np.diff(curve) >= 0)
    assert curve[0] == lipschitz_lower_bound(x, y, eps=0.0)
    assert curve[-1] == lipschitz_lower_bound(x, y, eps=np.inf)
    assert curve[-1] > curve[0]  # interpolation creates steeper constraints here


def test_mixed_training_set_size_and_contents(small_data):
    x, y = small_data
    vx, vy = mixed_training_set(x, y, eps=np.inf, n_lambda=5)
    assert vx.shape == (10 + 45 * 3, 2) and vy.shape == (10 + 45 * 3, 3)
    np.testing.assert_array_equal(vx[:10], x)
    np.testing.assert_allclose(vy.sum(axis=1), 1.0)  # mixed one-hot targets stay on the simplex
    assert mixed_training_set(x, y, eps=0.0)[0].shape == (10, 2)


def test_subsample_is_seeded_and_accepts_torch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    y = np.eye(2)[(x[:, 0] * x[:, 1] > 0).astype(int)]
    a = lipschitz_lower_bound_curve(x, y, [0.0, 0.3, 1.0], max_points=60, seed=5)
    b = lipschitz_lower_bound_curve(torch.from_numpy(x), torch.from_numpy(y), [0.0, 0.3, 1.0], max_points=60, seed=5)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a) >= 0)
    full = lipschitz_lower_bound(x[:50], y[:50], eps=0.3)
    assert lipschitz_lower_bound(x[:50], y[:50], eps=0.3, max_points=50) == full


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"eps": -1.0}, ValueError, "eps must be >= 0"),
        ({"eps": "1"}, TypeError, "eps must be a real number"),
        ({"eps": 1.0, "n_lambda": 1}, ValueError, "n_lambda must be >= 2"),
        ({"eps": 1.0, "max_points": 1}, ValueError, "max_points must be >= 2, got 1"),
        ({"eps": 1.0, "chunk_size": 0}, ValueError, "chunk_size must be an int >= 1"),
    ],
)
def test_bad_arguments_are_named(small_data, kwargs, error, match):
    x, y = small_data
    with pytest.raises(error, match=match):
        lipschitz_lower_bound(x, y, **kwargs)


def test_bad_data_is_named(small_data):
    x, y = small_data
    with pytest.raises(ValueError, match="same number of samples"):
        lipschitz_lower_bound(x, y[:5], eps=1.0)
    with pytest.raises(ValueError, match="at least one threshold"):
        lipschitz_lower_bound_curve(x, y, [])
