r"""Locality graphs of Local Mixup: the weight of a mixed pair from the distance of its endpoints.

Baena et al. 2022, Sec. IV-A: a symmetric matrix :math:`W` built from pairwise input distances
(K-nearest neighbours, a threshold :math:`\varepsilon`, or a decreasing exponential) weights each
virtual sample in the loss, eq. (2):
:math:`L = \sum_{i,j} W[i, j]\, \mathcal{L}(f(\tilde x_{ij}), \tilde y_{ij})`.
The graph is computed per batch on the flattened inputs, as the paper does for cost reasons.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Union

import torch

from ._checks import check_int, check_nonnegative_float

Metric = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
METRICS = ("euclidean", "sqeuclidean")


def distance_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype distances are accumulated in: float64 when any input is float64, else float32.

    Half-precision inputs (float16 / bfloat16) are upcast: their squared norms overflow float16 at
    a few hundred dimensions, and bfloat16 keeps only 8 bits of mantissa.
    """
    return torch.float64 if torch.float64 in dtypes else torch.float32


def pairwise_distances(a: torch.Tensor, b: torch.Tensor | None = None, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distances between the rows of ``a`` (n, d) and of ``b`` (m, d), shape (n, m).

    Baena et al. 2022, Sec. IV-A ("D is the pairwise distance matrix"). Inputs of any shape are
    flattened per sample. ``metric`` is "euclidean" (default, as in the paper), "sqeuclidean" or a
    callable ``metric(a, b) -> (n, m)``. The diagonal of ``pairwise_distances(a)`` is exactly 0.
    The result is float32 (float64 for float64 inputs) whatever the input dtype; see
    :func:`squared_distances` for why it survives offsets and half precision.
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
    sq = squared_distances(a, None if same else b)
    if same:
        sq.fill_diagonal_(0.0)  # exact zeros despite floating-point cancellation
    return sq if metric == "sqeuclidean" else sq.sqrt()


def squared_distances(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances between rows, batched over leading dims: (..., n, d), (..., m, d) -> (..., n, m).

    Expanded as |a|^2 + |b|^2 - 2 a.b (one matrix product, no (n, m, d) intermediate), clamped at 0,
    after two steps that keep the expansion accurate on real data:

    * both sets are shifted by their common mean (distances do not change), so an offset shared by
      the data (raw pixel values, unnormalised tables) does not cancel away the digits of the spread:
      float32 data offset by 1e4 with unit spread gives distances within 1e-6 (relative) of exact
      float64 differences, where the plain expansion got whole threshold and kNN decisions wrong;
    * the arithmetic runs in :func:`distance_dtype` (at least float32), so float16 / bfloat16
      batches neither overflow nor lose the graph.

    ``b = None`` means ``b = a`` (one centring, one set of norms).
    """
    if b is None:
        a = centered(a)
        return expanded_squared_distances(a, a)
    dtype = distance_dtype(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    center = (a.sum(dim=-2, keepdim=True) + b.sum(dim=-2, keepdim=True)) / (a.shape[-2] + b.shape[-2])
    return expanded_squared_distances(a - center, b - center)


def centered(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (..., n, d) in :func:`distance_dtype`, minus their mean row (per leading index)."""
    x = x.to(distance_dtype(x.dtype))
    return x - x.mean(dim=-2, keepdim=True)


def expanded_squared_distances(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor | None = None,
                               b_sq: torch.Tensor | None = None) -> torch.Tensor:
    """|a|^2 + |b|^2 - 2 a.b clamped at 0, as is: callers centre and upcast first (:func:`squared_distances`).

    ``a_sq`` / ``b_sq`` are the squared row norms when the caller already has them.
    """
    a_sq = (a * a).sum(-1) if a_sq is None else a_sq
    b_sq = (b * b).sum(-1) if b_sq is None else b_sq
    return (a_sq.unsqueeze(-1) + b_sq.unsqueeze(-2) - 2.0 * (a @ b.transpose(-1, -2))).clamp_min_(0.0)


def paired_distances(a: torch.Tensor, b: torch.Tensor, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distance between row i of ``a`` and row i of ``b`` (shape (n,)), in O(n d) instead of O(n^2 d).

    Direct differences (no cancellation), accumulated in :func:`distance_dtype`.
    """
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    if callable(metric):
        return torch.diagonal(metric(a, b))  # a callable only gives full matrices
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    dtype = distance_dtype(a.dtype, b.dtype)
    sq = (a.to(dtype) - b.to(dtype)).pow(2).sum(-1)
    return sq if metric == "sqeuclidean" else sq.sqrt()


class NoPairsKeptWarning(UserWarning):
    """A locality graph kept no pair but self pairs in a batch: Local Mixup mixed nothing there."""


def off_diagonal(dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
    """The distances between distinct samples, flattened: all entries of a cross-set matrix, the
    off-diagonal ones of a matrix of a set with itself."""
    if not same_set:
        return dist.reshape(-1)
    n = dist.shape[0]
    return dist.reshape(-1)[1:].view(n - 1, n + 1)[:, :-1].reshape(-1) if n > 1 else dist.new_empty(0)


def distance_quantile(dist: torch.Tensor, q: float, *, same_set: bool) -> torch.Tensor:
    """The q-quantile of the off-diagonal distances: the smallest distance d with at least a fraction q
    of the pairs at distance <= d (the ``ceil(q n)``-th smallest; no interpolation, so a threshold at
    it keeps at least that fraction). 0 when there is no off-diagonal pair (batch of one)."""
    values = off_diagonal(dist, same_set=same_set)
    if values.numel() == 0:
        return dist.new_zeros(())
    rank = min(max(math.ceil(q * values.numel()), 1), values.numel())
    return values.kthvalue(rank).values


class LocalityGraph:
    """Base class: maps distances to weights. Subclasses implement :meth:`weights_from_distances`.

    Baena et al. 2022, Sec. IV-A. Self pairs (distance 0) always get weight 1, so a graph with no
    other edge reduces Local Mixup to plain training (the paper's vanilla extreme).
    """

    #: True when a pair's weight depends on other pairs (kNN ranks, batch quantiles), so the full matrix is needed.
    needs_full_matrix = False

    def __init__(self, *, metric: Metric = "euclidean"):
        if not callable(metric) and metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
        self.metric = metric
        self._warned_empty = False

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

    #: Below this weight a pair counts as dropped for the empty-graph warning (exponential weights never reach 0).
    NEGLIGIBLE_WEIGHT = 1e-6

    def intends_plain_training(self) -> bool:
        """True for the settings that ask for plain training on purpose (eps = 0, n_neighbors = 0)."""
        return False

    def warn_if_empty(self, x: torch.Tensor, off_diagonal_weights: torch.Tensor) -> None:
        """Warn once (:class:`NoPairsKeptWarning`) when a batch of more than one sample keeps no pair
        between distinct samples: Local Mixup then mixes nothing, silently, which is almost always a
        distance scale the graph's parameter was not chosen for (image distances are ~80, not ~1).

        ``off_diagonal_weights`` are weights of pairs of distinct samples already at hand (the sampled
        pairs, or the whole matrix); only when none of them is kept is the full matrix computed, to
        judge the batch and to name its distance quantiles.
        """
        if self._warned_empty or x.shape[0] < 2 or self.intends_plain_training():
            return
        if bool((off_diagonal_weights > self.NEGLIGIBLE_WEIGHT).any()):
            return
        dist = pairwise_distances(x.detach(), metric=self.metric)
        kept = off_diagonal(self.weights_from_distances(dist, same_set=True), same_set=True)
        if bool((kept > self.NEGLIGIBLE_WEIGHT).any()):
            return
        values = off_diagonal(dist, same_set=True)
        levels = (0.01, 0.1, 0.5, 0.9)
        quantiles = ", ".join(f"{q:.0%}: {float(distance_quantile(dist, q, same_set=True)):.4g}" for q in levels)
        self._warned_empty = True
        warnings.warn(
            f"{self!r} kept no pair of distinct samples in a batch of {x.shape[0]} (pair distances "
            f"{float(values.min()):.4g} to {float(values.max()):.4g}, quantiles {quantiles}), so Local Mixup mixes "
            f"nothing there. {self._suggestion(dist)} (shown once per graph)",
            NoPairsKeptWarning, stacklevel=3,
        )

    def _suggestion(self, dist: torch.Tensor) -> str:
        return "Choose the graph's parameter from the batch's distance quantiles above."


class Threshold(LocalityGraph):
    r"""Thresholded graph :math:`W[i, j] = \mathbb{1}[d(x_i, x_j) \le \varepsilon]`.

    Baena et al. 2022, Sec. IV-A and V-A (two spirals, Fig. 3). Give exactly one of

    * ``eps``: an absolute distance, as in the paper. ``eps = 0`` keeps only self pairs (and exact
      duplicates): plain training; ``eps`` above every distance keeps all pairs: Mixup.
    * ``quantile`` in (0, 1]: a scale-free threshold, the q-quantile of the batch's distances between
      distinct samples (see :func:`distance_quantile`), so about a fraction q of those pairs is kept
      in every batch whatever the units of the data; ``quantile = 1`` keeps every pair. The paper
      itself chose eps by quantiles of the pair distances (Sec. V-A); use
      :func:`vicinal.calibrate_eps` to turn a fraction into a fixed eps for a data set instead.
      The graph of ``c * x`` equals the graph of ``x`` for any c > 0.
    """

    def __init__(self, eps: float | None = None, *, quantile: float | None = None, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        if (eps is None) == (quantile is None):
            raise ValueError(
                f"Threshold needs exactly one of eps (an absolute distance) or quantile (a fraction of the "
                f"batch's pairs to keep, in (0, 1]); got eps={eps!r}, quantile={quantile!r}"
            )
        self.eps = None if eps is None else check_nonnegative_float("eps", eps)
        self.quantile = None
        if quantile is not None:
            quantile = check_nonnegative_float("quantile", quantile)
            if not 0 < quantile <= 1:
                raise ValueError(
                    f"quantile must be in (0, 1], got {quantile!r}; for plain training use Threshold(eps=0)"
                )
            self.quantile = quantile
            self.needs_full_matrix = True  # the quantile is a property of the whole batch

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        eps = self.eps if self.quantile is None else distance_quantile(dist, self.quantile, same_set=same_set)
        return (dist <= eps).to(dist.dtype)

    def intends_plain_training(self) -> bool:
        return self.eps == 0

    def _suggestion(self, dist: torch.Tensor) -> str:
        eps = float(distance_quantile(dist, 0.1, same_set=True))
        return f"Threshold(eps={eps:.4g}) or Threshold(quantile=0.1) would keep about 10 % of the pairs."

    def __repr__(self) -> str:
        return f"Threshold(eps={self.eps})" if self.quantile is None else f"Threshold(quantile={self.quantile})"


class Exponential(LocalityGraph):
    r"""Exponentially decreasing graph :math:`W[i, j] = \exp(-\mathrm{decay}\cdot d(x_i, x_j) / s)`.

    Baena et al. 2022, Sec. IV-A (used for Fashion-MNIST / CIFAR). The distance is not squared, as in
    the authors' script (rate 5e-4 on inputs scaled to [-1, 1]). ``s = 1`` (absolute distances, as in
    the paper) unless ``relative=True``, where ``s`` is the batch's median distance between distinct
    samples, so the graph of ``c * x`` equals the graph of ``x`` and ``decay = 1`` gives weight
    :math:`e^{-1}` to a median pair (as torch-uncertainty's warping mixup normalises by the batch's
    mean distance). ``decay = 0`` gives all weights 1 (Mixup); a large decay keeps only self pairs.
    """

    def __init__(self, decay: float, *, relative: bool = False, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.decay = check_nonnegative_float("decay", decay)
        if math.isinf(self.decay):
            raise ValueError("decay must be finite, got inf; for plain training use Threshold(eps=0)")
        if not isinstance(relative, bool):
            raise TypeError(f"relative must be a bool, got {relative!r} of type {type(relative).__name__}")
        self.relative = relative
        self.needs_full_matrix = relative  # the median is a property of the whole batch

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        if self.decay == 0:
            return torch.ones_like(dist)  # exp(-0 * inf) would be NaN
        if self.relative:
            scale = distance_quantile(dist, 0.5, same_set=same_set)
            # A batch of duplicates has median 0: distance 0 stays 0, any other is infinitely far.
            dist = dist / scale if bool(scale > 0) else torch.where(dist > 0, torch.inf, 0.0).to(dist.dtype)
        return torch.exp(-self.decay * dist)

    def _suggestion(self, dist: torch.Tensor) -> str:
        d10 = float(distance_quantile(dist, 0.1, same_set=True))
        return (f"Exponential(decay={math.log(2) / d10:.4g}) gives weight 1/2 to a pair at the 10 % distance quantile; "
                f"Exponential(decay=1.0, relative=True) scales with the data.")

    def __repr__(self) -> str:
        return f"Exponential(decay={self.decay}" + (", relative=True)" if self.relative else ")")


class KNN(LocalityGraph):
    r"""K-nearest-neighbour graph, symmetrised: :math:`W[i, j] = 1` if j is among the ``n_neighbors``
    nearest other samples of i or i among those of j, plus the self loop :math:`W[i, i] = 1`.

    Baena et al. 2022, Sec. IV-A/IV-B: ``n_neighbors = 0`` is plain training, ``n_neighbors >= B - 1``
    (any value >= B in particular) is Mixup. The paper asks for a symmetric W while describing kNN
    per source vertex; we symmetrise with "or" so W is symmetric, as in the 1-D analysis where K
    neighbours lie on each side. Ties in distance are broken by sample index (stable sort).
    Against a separate partner batch the graph is directed: each row keeps its ``n_neighbors``
    nearest partners. Scale-free by construction (ranks only).
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

    def intends_plain_training(self) -> bool:
        return self.n_neighbors == 0

    def __repr__(self) -> str:
        return f"KNN(n_neighbors={self.n_neighbors})"
