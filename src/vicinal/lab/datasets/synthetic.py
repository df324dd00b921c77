"""Seeded 2-D toy generators: spirals (Local Mixup), moons (Carratino et al.), the k-Mixup toys."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn import datasets as sk_datasets

from vicinal._checks import check_int, check_nonnegative_float, check_positive_float

from .splits import _check_fraction, _classification, _split, _split_standardize


def _two_class_split(points: np.ndarray, other: np.ndarray, *, rng: np.random.Generator, noise: float, seed: int,
                      test_fraction: float, standardize: bool = False):
    """Label ``points`` 0 and ``other`` 1, add Gaussian ``noise`` from ``rng``, split (seeded, stratified).

    The common ending of the two-class toys. The isotropic noise is drawn after the points; both
    splits are standardised with train statistics when ``standardize``.
    """
    x = np.concatenate([points, other])
    y = np.repeat([0, 1], [len(points), len(other)])
    x = x + noise * rng.standard_normal(x.shape)
    return _split_standardize(x, y, test_fraction=test_fraction, seed=seed, standardize=standardize, num_classes=2)


def _spirals(*, seed: int, n_per_class: int = 1000, noise: float = 1.5, turns: float = 2.0,
             test_fraction: float = 0.2, noise_model: str = "gaussian"):
    """Two coiling spirals, one per class (Baena et al. 2022, Sec. V-A, Fig. 3).

    Class 0 lies on the curve ``t (-cos t, sin t)`` with angle ``t = 2 pi turns sqrt(u)``,
    ``u ~ U(0, 1)`` (sqrt: points spread evenly over the disc the arm sweeps);
    class 1 is its point reflection ``-x``. ``noise_model="gaussian"``: each point gets
    isotropic Gaussian noise of standard deviation ``noise``. ``noise_model="uniform_offset"``
    (the authors' notebook): each class-0 point gets a Uniform[0, noise) offset per
    coordinate and class 1 is the reflection of the noisy class 0, offsets included.
    Split ``test_fraction`` (stratified, seeded), then both splits are standardised with
    the train mean and std.

    Parameters
    ----------
    n_per_class : int
        Points per spiral (paper: 1000).
    noise : float
        Standard deviation of the Gaussian noise. Default 1.5, the paper's Fig. 3 caption.
    turns : float
        Full turns of each arm (two, as in the authors' notebook).
    test_fraction : float
        Share of points held out for testing (paper: 20 %).
    noise_model : {"gaussian", "uniform_offset"}
        Gaussian noise (default, the reading of the paper's text), or the authors' data
        generator: ``uniform_offset`` with ``noise=0.5`` is the noise of the committed data files.

    Notes
    -----
    The paper's caption says noise 1.5 and does not name the distribution; the authors'
    committed data use ``uniform_offset`` with 0.5, which is a different problem from
    Gaussian 0.5 (a one-sided, zero-free offset that the reflection mirrors). The authors'
    script also fits the standardisation on all points before splitting and does not
    stratify the split; we split first in both models. A 1-NN rule errs on about 30 % of
    test points at Gaussian 1.5 and under 1 % at Gaussian 0.5.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=2)
    noise = check_nonnegative_float("noise", noise)
    turns = check_positive_float("turns", turns)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if noise_model not in ("gaussian", "uniform_offset"):
        raise ValueError(f"noise_model must be 'gaussian' or 'uniform_offset' (the authors' notebook), "
                         f"got {noise_model!r}")
    rng = np.random.default_rng(seed)
    t = 2 * math.pi * turns * np.sqrt(rng.random(n_per_class))
    arm = t[:, None] * np.stack([-np.cos(t), np.sin(t)], axis=1)
    if noise_model == "uniform_offset":
        arm = arm + noise * rng.random(arm.shape)  # one-sided offsets; class 1 mirrors them with the points
        return _two_class_split(arm, -arm, rng=rng, noise=0.0, seed=seed, test_fraction=test_fraction,
                                standardize=True)
    return _two_class_split(arm, -arm, rng=rng, noise=noise, seed=seed, test_fraction=test_fraction, standardize=True)


def _moons(*, seed: int, n_samples: int = 300, noise: float = 0.01, flip: float = 0.2,
           test_fraction: float = 0.5):
    """Two moons with flipped training labels (Carratino et al. 2020, App. B.3).

    ``sklearn.datasets.make_moons(n_samples, noise)``, split in halves (stratified,
    seeded), then exactly ``round(flip * n_train)`` training labels, chosen without
    replacement, are flipped. Test labels stay clean. Inputs are not standardised
    (the paper's random-features bandwidth sigma = 10 is set for the raw scale).

    Parameters
    ----------
    n_samples : int
        Points over both classes and splits (paper: 300).
    noise : float
        Standard deviation of make_moons' Gaussian noise (paper: 0.01).
    flip : float
        Fraction of training labels flipped, in [0, 1] (paper: 0.2).
    test_fraction : float
        Share held out for testing (paper: 50 %).

    Notes
    -----
    The paper says "randomly flip 20 %"; we flip exactly that share (rounded) rather
    than each label independently, so every seed has the same amount of label noise.
    Data, split and flips use independent streams of ``seed``: changing ``flip`` keeps
    the points and the split.
    """
    n_samples = check_int("n_samples", n_samples, minimum=4)
    noise = check_nonnegative_float("noise", noise)
    if isinstance(flip, bool) or not isinstance(flip, numbers.Real) or not 0 <= flip <= 1:
        raise ValueError(f"flip must be a fraction in [0, 1], got {flip!r}")
    test_fraction = _check_fraction("test_fraction", test_fraction)
    data_seed, split_seed, flip_seed = np.random.SeedSequence(seed).generate_state(3)
    x, y = sk_datasets.make_moons(n_samples=n_samples, noise=noise, random_state=int(data_seed))
    x_train, x_test, y_train, y_test = _split(x, y, test_fraction, int(split_seed), stratify=True)
    flipped = np.random.default_rng(flip_seed).choice(len(y_train), size=round(flip * len(y_train)), replace=False)
    y_train = y_train.copy()
    y_train[flipped] = 1 - y_train[flipped]
    return _classification(x_train, y_train, x_test, y_test, 2)


def _one_ring(*, seed: int, n_per_class: int = 500, radius: float = 0.5, core_radius: float = 0.1,
              noise: float = 0.0, test_fraction: float = 0.2):
    """"One Ring": a ring of one class around a disc of the other (Greenewald et al. 2023, Fig. 1-3, App. B).

    Class 0 is uniform on the disc of radius ``core_radius``; class 1 is uniform on the
    circle of radius ``radius``, both centred at the origin. Optional Gaussian ``noise``
    (the paper's toys are noise-free). Inputs are not standardised: the paper's
    perturbation sizes xi differ per toy, so each toy keeps its own scale.

    Parameters
    ----------
    n_per_class : int
        Points per class.
    radius : float
        Radius of the ring (class 1).
    core_radius : float
        Radius of the central disc (class 0); must be smaller than ``radius``.
    noise : float
        Standard deviation of isotropic Gaussian noise (default 0).
    test_fraction : float
        Share held out for testing.

    Notes
    -----
    The paper publishes pictures, not the generator; this is our reconstruction.
    For 1-mixup, Algorithm 1 gives xi^2 = E||x_i - x_j||^2 E[min(lam, 1 - lam)^2], so
    Table 9 fixes the root mean squared distance between two random points. Default
    sizes make it (about 0.5) close to the one implied by App. B, Table 9(a), e.g. xi = 0.25 at alpha = 64.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=2)
    radius = check_positive_float("radius", radius)
    core_radius = check_positive_float("core_radius", core_radius)
    if core_radius >= radius:
        raise ValueError(f"core_radius must be smaller than radius={radius}, got {core_radius}")
    noise = check_nonnegative_float("noise", noise)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)

    def on_circle(r: np.ndarray) -> np.ndarray:
        angle = rng.uniform(0, 2 * math.pi, n_per_class)
        return r[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)

    core = on_circle(core_radius * np.sqrt(rng.random(n_per_class)))  # sqrt: uniform over the disc
    ring = on_circle(np.full(n_per_class, radius))
    return _two_class_split(core, ring, rng=rng, noise=noise, seed=seed, test_fraction=test_fraction)


def _four_bars(*, seed: int, n_per_class: int = 500, spacing: float = 1.0, bar_width: float = 0.2,
               bar_height: float = 5.0, noise: float = 0.0, test_fraction: float = 0.2):
    """"Four Bars": four parallel bars with alternating classes (Greenewald et al. 2023, Fig. 1-3, App. B).

    Four vertical bars (uniform rectangles ``bar_width`` x ``bar_height``) centred at
    ``x = spacing * (-1.5, -0.5, 0.5, 1.5)``, labelled 0, 1, 0, 1 from left to right;
    each class has ``n_per_class`` points split evenly over its two bars. Optional
    Gaussian ``noise``; not standardised (see ``one_ring``).

    Parameters
    ----------
    n_per_class : int
        Points per class (must be even: two bars per class).
    spacing : float
        Distance between the centres of neighbouring bars.
    bar_width, bar_height : float
        Size of each bar; ``bar_width`` must be below ``spacing`` so bars do not overlap.
    noise : float
        Standard deviation of isotropic Gaussian noise (default 0).
    test_fraction : float
        Share held out for testing.

    Notes
    -----
    Our reconstruction from the paper's figures (alternating classes: mixing random
    pairs at lambda near 1/2 lands between bars of both classes, which is why 1-mixup
    collapses to chance at large alpha in Table 9(b)). Default sizes give a root mean
    squared distance between random points (about 2.6) close to the one implied by
    Table 9(b), e.g. xi = 1.2 at alpha = 64.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=2)
    if n_per_class % 2:
        raise ValueError(f"n_per_class must be even (two bars per class), got {n_per_class}")
    spacing = check_positive_float("spacing", spacing)
    bar_width = check_positive_float("bar_width", bar_width)
    bar_height = check_positive_float("bar_height", bar_height)
    if bar_width >= spacing:
        raise ValueError(f"bar_width must be smaller than spacing={spacing} so bars stay apart, got {bar_width}")
    noise = check_nonnegative_float("noise", noise)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    per_bar = n_per_class // 2
    centres = spacing * np.array([-1.5, -0.5, 0.5, 1.5])
    bars = [
        np.stack([c + bar_width * (rng.random(per_bar) - 0.5), bar_height * (rng.random(per_bar) - 0.5)], axis=1)
        for c in centres
    ]
    return _two_class_split(np.concatenate(bars[0::2]), np.concatenate(bars[1::2]), rng=rng, noise=noise,
                            seed=seed, test_fraction=test_fraction)


def _swiss_roll(*, seed: int, n_per_class: int = 500, radius: float = 6.5, noise: float = 0.0,
                test_fraction: float = 0.2):
    """"Swiss Roll": two interleaved spiral arms, one per class (Greenewald et al. 2023, Fig. 1-3, App. B, J).

    Angles ``t ~ U(1.5 pi, 4.5 pi)`` (the range of ``sklearn.datasets.make_swiss_roll``);
    class 0 sits at ``(radius t / 4.5 pi) (cos t, sin t)`` and class 1 on the same arm
    turned by pi, so the two arms interleave. Optional Gaussian ``noise``; not
    standardised (see ``one_ring``).

    Parameters
    ----------
    n_per_class : int
        Points per arm.
    radius : float
        Outer radius of the roll.
    noise : float
        Standard deviation of isotropic Gaussian noise (default 0).
    test_fraction : float
        Share held out for testing.

    Notes
    -----
    Our reconstruction; the paper's App. J speaks of "the interwoven arms of the
    spirals". Default ``radius`` gives a root mean squared distance between random
    points (about 6.5) close to the one implied by Table 9(c), e.g. xi = 3.0 at alpha = 64.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=2)
    radius = check_positive_float("radius", radius)
    noise = check_nonnegative_float("noise", noise)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    t_max = 4.5 * math.pi

    def arm(offset: float) -> np.ndarray:
        t = rng.uniform(1.5 * math.pi, t_max, n_per_class)
        return (radius * t / t_max)[:, None] * np.stack([np.cos(t + offset), np.sin(t + offset)], axis=1)

    return _two_class_split(arm(0.0), arm(math.pi), rng=rng, noise=noise, seed=seed, test_fraction=test_fraction)
