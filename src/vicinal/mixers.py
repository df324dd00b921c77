r"""Mixers: lambda draw + pairing + optional locality graph -> :class:`MixedBatch`.

One pipeline serves every method of the three papers; the presets only choose its parts:

==============  =============================  =====================
preset          pairing                        locality graph
==============  =============================  =====================
``Mixup``       random (k = 1)                 none
``LocalMixup``  random, or drawn from W        kNN / threshold / exp
``KMixup``      optimal transport, blocks of k none
==============  =============================  =====================

Any other combination (e.g. optimal-transport pairing with a locality graph) is
``Mixer(pairing=OptimalTransportPairing(k), graph=Threshold(eps))``: the same code path.
"""

from __future__ import annotations

import torch

from ._checks import (check_bool, check_choice, check_generator, check_inputs, check_positive_float,
                      check_same_device, check_same_dtype, check_tensor)
from .batch import MixedBatch, interpolate
from .graphs import LocalityGraph, off_diagonal
from .lam import LAM_MODES, sample_lam
from .pairing import GraphPairing, OptimalTransportPairing, RandomPairing, UniformPairing, check_pairing
from .targets import dense_targets

SAMPLINGS = ("uniform", "weighted")


class Mixer:
    r"""Composable mixup transform: ``mixer(inputs, labels) -> MixedBatch``.

    Zhang et al. 2018 (mixup); Baena et al. 2022, eq. (2) (locality weights); Greenewald et al.
    2023, Sec. 2 (optimal-transport pairing). For each batch:

    1. targets: class indices -> one-hot; dense/soft and regression targets kept;
    2. :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`, one per batch or per sample;
    3. partner p(i) from the pairing (random, optimal transport, or drawn from the graph);
    4. loss weight of each virtual sample from the locality graph: :math:`W[i, p(i)]`, or the mean
       row weight :math:`\frac{1}{B}\sum_j W[i, j]` when partners are drawn from W (see
       :class:`~vicinal.pairing.GraphPairing`);
    5. :math:`\tilde x_i = \lambda x_i + (1-\lambda) x_{p(i)}`, likewise for targets.

    Parameters
    ----------
    alpha : float
        Beta parameter (> 0).
    pairing : RandomPairing | OptimalTransportPairing | GraphPairing
        Who mixes with whom (default random).
    graph : LocalityGraph, optional
        KNN / Threshold / Exponential; distances on the flattened inputs.
    lam_mode : {"batch", "sample"}
        One lambda per batch (papers' default) or per sample.
    truncate : bool
        Use :math:`\max(\lambda, 1 - \lambda)` (Carratino et al. 2020).
    num_classes : int, optional
        Needed when labels are class indices.
    check_finite : bool
        Refuse inputs with NaN/Inf (one reduction over the batch; on CUDA it synchronises).

    Inputs are never modified in place. Randomness flows only through ``generator``.
    """

    def __init__(self, *, alpha: float = 1.0, pairing: object | None = None, graph: LocalityGraph | None = None,
                 lam_mode: str = "batch", truncate: bool = False, num_classes: int | None = None,
                 check_finite: bool = True):
        self.alpha = check_positive_float("alpha", alpha)
        if graph is not None and not isinstance(graph, LocalityGraph):
            raise TypeError(f"graph must be a KNN, Threshold or Exponential graph (or None), got {type(graph).__name__}")
        self.graph = graph
        self.pairing = check_pairing(RandomPairing() if pairing is None else pairing, graph)
        self.lam_mode = check_choice("lam_mode", lam_mode, LAM_MODES)
        self.truncate = check_bool("truncate", truncate)
        if num_classes is not None:
            dense_targets(torch.zeros(1, dtype=torch.long), 1, num_classes=num_classes, dtype=torch.float32)
        self.num_classes = num_classes
        self.check_finite = check_bool("check_finite", check_finite)

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor, *, generator: torch.Generator | None = None,
                 partner_batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> MixedBatch:
        """Mix a batch.

        Parameters
        ----------
        inputs : Tensor (B, ...)
            Floating inputs (never modified).
        labels : Tensor
            Class indices (B,), dense/soft targets (B, C), or regression targets (B,) / (B, d).
        generator : torch.Generator, optional
            All random draws (lambda, partners) go through it; same seed, same batch.
        partner_batch : (inputs, labels), optional
            An independent second batch to draw partners from (k-Mixup's two loaders, Fig. 5);
            it must have the same size.
        """
        inputs = check_inputs(inputs, check_finite=self.check_finite)
        generator = check_generator(generator)
        if isinstance(labels, torch.Tensor):
            check_same_device("labels", labels, "inputs", inputs)
        batch_size = inputs.shape[0]
        target_dtype = inputs.dtype
        targets = dense_targets(labels, batch_size, num_classes=self.num_classes, dtype=target_dtype)
        if partner_batch is None:
            partner_inputs, partner_targets = None, targets
        else:
            partner_inputs, partner_targets = self._check_partner_batch(partner_batch, inputs, targets)

        lam = sample_lam(batch_size, self.alpha, lam_mode=self.lam_mode, truncate=self.truncate,
                         generator=generator, device=inputs.device, dtype=target_dtype)
        # Pairs and weights are functions of the data, not of the parameters: when mixing hidden
        # features, no gradient flows through distances or matchings.
        features = inputs.detach()
        partner_features = None if partner_inputs is None else partner_inputs.detach()
        weights = None
        if isinstance(self.pairing, GraphPairing):
            if partner_inputs is not None:
                raise ValueError("weighted sampling draws partners from the batch's own graph; partner_batch is not "
                                 "supported (use sampling='uniform')")
            graph_weights = self.graph.matrix(features)
            partner = self.pairing(graph_weights, generator=generator)
            weights = graph_weights.mean(dim=1)
            self.graph.warn_if_empty(features, off_diagonal(graph_weights, same_set=True))
        else:
            partner = self.pairing(features, partner_features, generator=generator)
            if self.graph is not None:
                weights = self.graph.pair_weights(features, partner_features, partner)
                if partner_features is None:
                    distinct = partner != torch.arange(batch_size, device=partner.device)
                    self.graph.warn_if_empty(features, weights[distinct])

        source_inputs = inputs if partner_inputs is None else partner_inputs
        return MixedBatch(
            inputs=interpolate(inputs, source_inputs.index_select(0, partner), lam),
            targets=interpolate(targets, partner_targets.index_select(0, partner), lam),
            lam=lam,
            partner=partner,
            weights=None if weights is None else weights.to(target_dtype),
            from_partner_batch=partner_inputs is not None,
        )

    def _check_partner_batch(self, partner_batch, inputs, targets):
        if not isinstance(partner_batch, (tuple, list)) or len(partner_batch) != 2:
            raise TypeError("partner_batch must be a pair (inputs, labels)")
        # Device and dtype first: they are metadata, and a mismatch fails deep inside torch otherwise.
        partner_inputs = check_tensor("partner_batch[0]", partner_batch[0])
        check_same_device("partner_batch[0]", partner_inputs, "inputs", inputs)
        if isinstance(partner_batch[1], torch.Tensor):
            check_same_device("partner_batch[1]", partner_batch[1], "inputs", inputs)
        if partner_inputs.is_floating_point():
            check_same_dtype("partner_batch[0]", partner_inputs, "inputs", inputs)
        partner_inputs = check_inputs(partner_inputs, name="partner_batch[0]", check_finite=self.check_finite)
        if partner_inputs.shape[1:] != inputs.shape[1:]:
            raise ValueError(
                f"partner_batch[0] has sample shape {tuple(partner_inputs.shape[1:])}, expected "
                f"{tuple(inputs.shape[1:])} as inputs"
            )
        if partner_inputs.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"partner_batch must have as many samples as the batch ({inputs.shape[0]}), got {partner_inputs.shape[0]}"
            )
        partner_targets = dense_targets(partner_batch[1], partner_inputs.shape[0], num_classes=self.num_classes,
                                        dtype=targets.dtype)
        if partner_targets.shape[1:] != targets.shape[1:]:
            raise ValueError(
                f"partner_batch[1] gives targets of shape {tuple(partner_targets.shape)}, incompatible with the "
                f"labels' {tuple(targets.shape)}"
            )
        return partner_inputs, partner_targets.to(targets.device)

    def __repr__(self) -> str:
        parts = [f"alpha={self.alpha}", f"pairing={self.pairing!r}"]
        if self.graph is not None:
            parts.append(f"graph={self.graph!r}")
        if self.lam_mode != "batch":
            parts.append(f"lam_mode={self.lam_mode!r}")
        if self.truncate:
            parts.append("truncate=True")
        return f"{type(self).__name__}({', '.join(parts)})"


class Mixup(Mixer):
    r"""Mixup (Zhang et al. 2018): random partners, :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`,
    no locality weights. Baena et al. 2022, Definition II.1; Greenewald et al. 2023, k = 1.

    Example
    -------
    >>> mixer = Mixup(alpha=1.0, num_classes=10)
    >>> batch = mixer(x, y, generator=g)
    >>> loss = mixup_loss(model(batch.inputs), batch)
    """

    def __init__(self, *, alpha: float = 1.0, num_classes: int | None = None, lam_mode: str = "batch",
                 truncate: bool = False, check_finite: bool = True):
        super().__init__(alpha=alpha, pairing=RandomPairing(), num_classes=num_classes, lam_mode=lam_mode,
                         truncate=truncate, check_finite=check_finite)


class LocalMixup(Mixer):
    r"""Local Mixup (Baena et al. 2022, eq. 2): mixed pairs weighted in the loss by a locality graph.

    Both samplings estimate eq. (2) over the batch, diagonal included, without bias: with the "mean"
    reduction, :math:`\mathbb{E}[\text{loss}] = \mathbb{E}_\lambda \frac{1}{B^2}\sum_{i,j} W[i, j]\,
    \mathcal{L}(f(\lambda x_i + (1-\lambda) x_j), \lambda y_i + (1-\lambda) y_j)`, where the i = j terms are
    the plain-training losses (tested against a brute-force enumeration of every pair).

    Parameters
    ----------
    graph : KNN | Threshold | Exponential
        The locality graph (Sec. IV-A). ``Threshold(quantile=q)`` and ``Exponential(decay, relative=True)``
        adapt to the scale of the data; an absolute eps must match the data's pair distances (see
        :func:`vicinal.calibrate_eps`). A graph that keeps no pair of distinct samples in a batch
        warns once (:class:`~vicinal.graphs.NoPairsKeptWarning`).
    sampling : {"uniform", "weighted"}
        "uniform" (the paper's estimator): partner uniform over the batch, self included
        (:class:`~vicinal.pairing.UniformPairing`), loss weight :math:`W[i, p(i)]`; needs only B
        distances for threshold / exponential graphs. "weighted": partner drawn with probability
        :math:`\propto W[i, j]` (:class:`~vicinal.pairing.GraphPairing`), loss weight
        :math:`s_i / B` with :math:`s_i = \sum_j W[i, j]`; needs the full B x B matrix.

    Which estimator is better: per sample, uniform's second moment is
    :math:`\frac{1}{B}\sum_j W_{ij}^2 \mathcal{L}_{ij}^2` and weighted's is
    :math:`\frac{s_i}{B^2}\sum_j W_{ij} \mathcal{L}_{ij}^2` (same mean). For 0/1 graphs (threshold, kNN)
    the weighted one is the uniform one times the kept fraction :math:`s_i / B \le 1`: weighted never
    has more variance and is far better on sparse graphs, where uniform spends most draws on pairs of
    weight 0 (at eps = 0 only the samples that happen to draw themselves, one per batch on average,
    count). For exponential graphs weighted is better unless the loss is concentrated on the
    low-weight pairs. Uniform is cheaper (O(B d) instead of O(B^2 d) distances) and equal when every
    pair is kept.

    Limits (exact, tested): ``Threshold(eps=0)`` or ``KNN(n_neighbors=0)`` with weighted sampling returns
    the batch unmixed with weights 1/B ("mean" reduction: the plain loss / B; "normalized": the plain
    loss); with uniform sampling the same holds in expectation (each sample counts when it draws
    itself). With every pair kept (eps above every distance, ``quantile=1``, ``n_neighbors >= B``,
    ``decay = 0``) both samplings give the same batch, weights 1: eq. (2)'s Mixup, whose partners are
    uniform over the batch *with* self pairs, i.e. ``Mixer(pairing=UniformPairing())``. :class:`Mixup`
    itself pairs along a random cycle (no self pairs, as k-Mixup with k = 1), which differs from it by
    the 1/B share of unmixed samples only.
    """

    def __init__(self, *, alpha: float = 1.0, graph: LocalityGraph, sampling: str = "uniform",
                 num_classes: int | None = None, lam_mode: str = "batch", truncate: bool = False,
                 check_finite: bool = True):
        check_choice("sampling", sampling, SAMPLINGS)
        if not isinstance(graph, LocalityGraph):
            raise TypeError(f"graph must be a KNN, Threshold or Exponential graph, got {type(graph).__name__}")
        self.sampling = sampling
        pairing = GraphPairing() if sampling == "weighted" else UniformPairing()
        super().__init__(alpha=alpha, pairing=pairing, graph=graph, num_classes=num_classes, lam_mode=lam_mode,
                         truncate=truncate, check_finite=check_finite)


class KMixup(Mixer):
    r"""k-Mixup (Greenewald et al. 2023, Sec. 2): partners matched by optimal transport inside blocks of k.

    ``KMixup(k=1)`` is :class:`Mixup` exactly (same generator, same batch). For k >= 2 a single batch
    must hold at least 2k samples; pass ``partner_batch=`` for larger k. To keep the RMS perturbation
    constant as k grows, calibrate alpha with :func:`vicinal.calibrate_alpha` (Algorithm 1).
    """

    def __init__(self, *, alpha: float = 1.0, k: int, num_classes: int | None = None, lam_mode: str = "batch",
                 truncate: bool = False, check_finite: bool = True):
        super().__init__(alpha=alpha, pairing=OptimalTransportPairing(k), num_classes=num_classes,
                         lam_mode=lam_mode, truncate=truncate, check_finite=check_finite)

    @property
    def k(self) -> int:
        return self.pairing.k
