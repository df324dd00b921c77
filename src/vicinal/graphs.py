r"""Locality graphs of Local Mixup: the weight of a mixed pair from the distance of its endpoints.

Baena et al. 2022, Sec. IV-A: a symmetric matrix :math:`W` built from pairwise input distances
(K-nearest neighbours, a threshold :math:`\varepsilon`, or a decreasing exponential) weights each
virtual sample in the loss, eq. (2):
:math:`L = \sum_{i,j} W[i, j]\, \mathcal{L}(f(\tilde x_{ij}), \tilde y_{ij})`.
The graph is computed per batch on the flattened inputs, as the paper does for cost reasons.
"""

from __future__ import annotations

from typing import Callable, Union

import torch

from ._checks import check_int, check_nonnegative_float

Metric = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
METRICS = ("euclidean", "sqeuclidean")


def pairwise_distances(a: torch.Tensor, b: torch.Tensor | None = None, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distances between the rows of ``a`` (n, d) and of ``b`` (m, d), shape (n, m).

    Baena et al. 2022, Sec. IV-A ("D is the pairwise distance matrix"). Inputs of any shape are
    flattened per sample. ``metric`` is "euclidean" (default, as in the paper), "sqeuclidean" or a
    callable ``metric(a, b) -> (n, m)``. The diagonal of ``pairwise_distances(a)`` is exactly 0.
    """
    same = b is None
    a = a.reshape(a.shape[0], -1)
    b = a if same else b.reshape(b.shape[0], -1)
    if callable(metric):
        dist = metric(a, b)
        if dist.shape != (a.shape[0], b.shape[0]):
            raise ValueError(f"metric callable returned shape {tuple(dist.shape)}, expected {(a.shape[0], b.shape[0])}")
        return dist
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    sq = squared_distances(a, b)
    if same:
        sq.fill_diagonal_(0.0)  # exact zeros despite floating-point cancellation
    return sq if metric == "sqeuclidean" else sq.sqrt()


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between rows, batched over leading dims: (..., n, d), (..., m, d) -> (..., n, m).

    Expanded as |a|^2 + |b|^2 - 2 a.b (one matrix product, no (n, m, d) intermediate), clamped at 0.
    """
    a_sq = (a * a).sum(-1, keepdim=True)
    b_sq = (b * b).sum(-1).unsqueeze(-2)
    return (a_sq + b_sq - 2.0 * (a @ b.transpose(-1, -2))).clamp_min_(0.0)


def paired_distances(a: torch.Tensor, b: torch.Tensor, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distance between row i of ``a`` and row i of ``b`` (shape (n,)), in O(n d) instead of O(n^2 d)."""
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    if callable(metric):
        return torch.diagonal(metric(a, b))  # a callable only gives full matrices
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    sq = (a - b).pow(2).sum(-1)
    return sq if metric == "sqeuclidean" else sq.sqrt()


class LocalityGraph:
    """Base class: maps distances to weights. Subclasses implement :meth:`weights_from_distances`.

    Baena et al. 2022, Sec. IV-A. Self pairs (distance 0) always get weight 1, so a graph with no
    other edge reduces Local Mixup to plain training (the paper's vanilla extreme).
    """

    #: True when a pair's weight depends on other samples (kNN ranks), so the full matrix is needed.
    needs_full_matrix = False

    def __init__(self, *, metric: Metric = "euclidean"):
        if not callable(metric) and metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
        self.metric = metric

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        raise NotImplementedError

    def matrix(self, x: torch.Tensor, partner_x: torch.Tensor | None = None) -> torch.Tensor:
        """The weight matrix W (B, B') between the samples of ``x`` and those of ``partner_x`` (default ``x``)."""
        dist = pairwise_distances(x, partner_x, metric=self.metric)
        return self.weights_from_distances(dist, same_set=partner_x is None)

    def pair_weights(self, x: torch.Tensor, partner_x: torch.Tensor | None, partner: torch.Tensor) -> torch.Tensor:
        """W[i, partner[i]] for each i: the loss weight of the virtual sample mixing i with its partner."""
        if self.needs_full_matrix:
            return self.matrix(x, partner_x).gather(1, partner[:, None]).squeeze(1)
        source = x if partner_x is None else partner_x
        dist = paired_distances(x, source.index_select(0, partner), metric=self.metric)
        return self.weights_from_distances(dist, same_set=False)


class Threshold(LocalityGraph):
    r"""Thresholded graph :math:`W[i, j] = \mathbb{1}[d(x_i, x_j) \le \varepsilon]`.

    Baena et al. 2022, Sec. IV-A and V-A (two spirals, Fig. 3). ``eps = 0`` keeps only self pairs
    (and exact duplicates): plain training; ``eps`` above every distance keeps all pairs: Mixup.
    """

    def __init__(self, eps: float, *, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.eps = check_nonnegative_float("eps", eps)

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        return (dist <= self.eps).to(dist.dtype)

    def __repr__(self) -> str:
        return f"Threshold(eps={self.eps})"


class Exponential(LocalityGraph):
    r"""Exponentially decreasing graph :math:`W[i, j] = \exp(-\mathrm{decay}\cdot d(x_i, x_j))`.

    Baena et al. 2022, Sec. IV-A (used for Fashion-MNIST / CIFAR). ``decay = 0`` gives all weights 1
    (Mixup); ``decay -> inf`` keeps only self pairs. The distance is not squared, as in the authors'
    script (rate 5e-4 on inputs scaled to [-1, 1]).
    """

    def __init__(self, decay: float, *, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.decay = check_nonnegative_float("decay", decay)

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        return torch.exp(-self.decay * dist)

    def __repr__(self) -> str:
        return f"Exponential(decay={self.decay})"


class KNN(LocalityGraph):
    r"""K-nearest-neighbour graph, symmetrised: :math:`W[i, j] = 1` if j is among the ``n_neighbors``
    nearest other samples of i or i among those of j, plus the self loop :math:`W[i, i] = 1`.

    Baena et al. 2022, Sec. IV-A/IV-B: ``n_neighbors = 0`` is plain training, ``n_neighbors >= B - 1``
    (any value >= B in particular) is Mixup. The paper asks for a symmetric W while describing kNN
    per source vertex; we symmetrise with "or" so W is symmetric, as in the 1-D analysis where K
    neighbours lie on each side. Ties in distance are broken by sample index (stable sort).
    Against a separate partner batch the graph is directed: each row keeps its ``n_neighbors``
    nearest partners.
    """

    needs_full_matrix = True

    def __init__(self, n_neighbors: int, *, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.n_neighbors = check_int("n_neighbors", n_neighbors, minimum=0)

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        n, m = dist.shape
        if same_set:
            dist = dist.clone()
            dist.fill_diagonal_(float("inf"))  # rank only the others; the self loop is added below
        kept = min(self.n_neighbors, m - 1 if same_set else m)
        order = torch.argsort(dist, dim=1, stable=True)[:, :kept]
        adjacency = torch.zeros_like(dist, dtype=torch.bool).scatter_(1, order, True)
        if same_set:
            adjacency |= adjacency.T.clone()
            adjacency.fill_diagonal_(True)
        return adjacency.to(dist.dtype)

    def __repr__(self) -> str:
        return f"KNN(n_neighbors={self.n_neighbors})"
