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

from ._checks import (check_bool, check_choice, check_fraction, check_generator, check_inputs, check_positive_float,
                      check_same_device, check_same_dtype, check_tensor)
from .batch import MixedBatch, interpolate
from .cutmix import INTERPOLATIONS, box_lam, box_masks, boxes_from_uniforms, check_spatial, paste_boxes
from .graphs import LocalityGraph, off_diagonal
from .lam import LAM_MODES, draw_uniforms, lam_from_uniforms
from .pairing import GraphPairing, OptimalTransportPairing, RandomPairing, UniformPairing, check_pairing
from .targets import dense_targets, smooth_targets

SAMPLINGS = ("uniform", "weighted")


class Mixer:
    r"""Composable mixup transform: ``mixer(inputs, labels) -> MixedBatch``.

    Zhang et al. 2018 (mixup); Baena et al. 2022, eq. (2) (locality weights); Greenewald et al.
    2023, Sec. 2 (optimal-transport pairing); Yun et al. 2019 (CutMix interpolation); Szegedy et al.
    2016, Sec. 7 (label smoothing). For each batch:

    1. targets: class indices -> one-hot (smoothed when ``label_smoothing > 0``); dense/soft and
       regression targets kept;
    2. :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`, one per batch or per sample;
    3. partner p(i) from the pairing (random, optimal transport, or drawn from the graph);
    4. loss weight of each virtual sample from the locality graph: :math:`W[i, p(i)]`, or the mean
       row weight :math:`\frac{1}{B}\sum_j W[i, j]` when partners are drawn from W (see
       :class:`~vicinal.pairing.GraphPairing`);
    5. interpolation: "linear", :math:`\tilde x_i = \lambda x_i + (1-\lambda) x_{p(i)}`; or "cutmix", the
       partner's pixels pasted in a box of area about :math:`1 - \lambda` and :math:`\lambda` replaced by
       the exact share left (:mod:`vicinal.cutmix`); targets :math:`\lambda y_i + (1-\lambda) y_{p(i)}`.

    Every pairing and graph composes with either interpolation; the pairing's optimal-transport costs
    and the graph's distances are always taken between whole inputs (the full image for CutMix, not
    the box).

    Parameters
    ----------
    alpha : float
        Beta parameter (> 0).
    pairing : RandomPairing | OptimalTransportPairing | GraphPairing
        Who mixes with whom (default random).
    graph : LocalityGraph, optional
        KNN / Threshold / Exponential; distances on the flattened inputs.
    lam_mode : {"batch", "sample"}
        One lambda per batch (papers' default) or per sample (then one CutMix box, one switch and
        one ``prob`` draw per sample too).
    truncate : bool
        Use :math:`\max(\lambda, 1 - \lambda)` (Carratino et al. 2020).
    num_classes : int, optional
        Needed when labels are class indices (any integer dtype, numpy arrays accepted).
    check_finite : bool
        Run the checks that read tensor values: NaN/Inf inputs (one reduction; on CUDA it
        synchronises), the label range, the empty-graph warning. ``False`` skips them all, which also
        removes their graph breaks under ``torch.compile``.
    interpolation : {"linear", "cutmix"}
        How a sample is combined with its partner. "cutmix" needs inputs (B, ..., H, W).
    label_smoothing : float in [0, 1)
        Smoothing s of class targets before mixing (timm's convention: s / C off the label,
        1 - s + s / C on it). Needs ``num_classes``.
    prob : float in [0, 1]
        Probability of mixing a batch (a sample with ``lam_mode="sample"``); otherwise it comes back
        unmixed: lambda 1, partner itself, targets only smoothed. With a locality graph an unmixed
        sample weighs :math:`W[i, i]` (uniform sampling, pair weights), or keeps :math:`s_i / B`
        (weighted sampling, whose weight does not depend on the partner drawn).
    cutmix_alpha : float, optional
        With ``interpolation="linear"``: switch each batch (sample) to CutMix with lambda from
        Beta(cutmix_alpha, cutmix_alpha) with probability ``switch_prob`` (timm's Mixup with both
        alphas). Both lambdas are quantiles of the same uniform.
    switch_prob : float in [0, 1]
        See ``cutmix_alpha``.

    Randomness (protocol 3): a call draws, from ``generator`` and in this order, n uniforms for the
    lambdas (n = 1 per batch, B per sample), the pairing's (B, or 2B with a partner batch), then only
    when the option is on: 2n box centres (row then column of each box) when CutMix can happen, n
    switch uniforms when ``cutmix_alpha`` is set, n ``prob`` uniforms when ``prob < 1``. The count
    never depends on the values drawn, and with the options off the stream is the one of vicinal 0.2.

    Inputs are never modified in place; the output keeps their dtype and memory format
    (channels_last in, channels_last out). Randomness flows only through ``generator``.
    """

    def __init__(self, *, alpha: float = 1.0, pairing: object | None = None, graph: LocalityGraph | None = None,
                 lam_mode: str = "batch", truncate: bool = False, num_classes: int | None = None,
                 check_finite: bool = True, interpolation: str = "linear", label_smoothing: float = 0.0,
                 prob: float = 1.0, cutmix_alpha: float | None = None, switch_prob: float = 0.5):
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
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)
        self.label_smoothing = check_fraction("label_smoothing", label_smoothing, closed=False)
        if self.label_smoothing > 0 and num_classes is None:
            raise ValueError(f"label_smoothing={label_smoothing!r} smooths class targets: pass num_classes= as well")
        self.prob = check_fraction("prob", prob)
        self.switch_prob = check_fraction("switch_prob", switch_prob)
        if cutmix_alpha is not None:
            if self.interpolation != "linear":
                raise ValueError(f"cutmix_alpha={cutmix_alpha!r} switches linear mixing to CutMix; with "
                                 f"interpolation='cutmix' alpha is CutMix's already: drop cutmix_alpha")
            cutmix_alpha = check_positive_float("cutmix_alpha", cutmix_alpha)
        self.cutmix_alpha = cutmix_alpha

    @property
    def may_cutmix(self) -> bool:
        """True when a call can paste CutMix boxes (and so needs inputs with two spatial dimensions)."""
        return self.interpolation == "cutmix" or self.cutmix_alpha is not None

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor, *, generator: torch.Generator | None = None,
                 partner_batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> MixedBatch:
        """Mix a batch.

        Parameters
        ----------
        inputs : Tensor (B, ...)
            Floating inputs (never modified); (B, ..., H, W) for CutMix.
        labels : Tensor or numpy array
            Class indices (B,) of any integer dtype, dense/soft targets (B, C), or regression targets
            (B,) / (B, d).
        generator : torch.Generator, optional
            All random draws (lambda, partners, boxes, switches) go through it; same seed, same batch.
        partner_batch : (inputs, labels), optional
            An independent second batch to draw partners from (k-Mixup's two loaders, Fig. 5);
            it must have the same size. Not with ``prob < 1``.
        """
        inputs = check_inputs(inputs, check_finite=self.check_finite)
        generator = check_generator(generator)
        if isinstance(labels, torch.Tensor):
            check_same_device("labels", labels, "inputs", inputs)
        if self.may_cutmix:
            check_spatial(inputs)
        if partner_batch is not None and self.prob < 1:
            raise ValueError(f"prob={self.prob} leaves some samples unmixed (partner = itself), which a separate "
                             f"partner_batch cannot provide; use prob=1.0 with partner_batch")
        batch_size = inputs.shape[0]
        target_dtype = inputs.dtype
        targets = self._targets(labels, batch_size, target_dtype)
        if partner_batch is None:
            partner_inputs, partner_targets = None, targets
        else:
            partner_inputs, partner_targets = self._check_partner_batch(partner_batch, inputs, targets)

        n = batch_size if self.lam_mode == "sample" else 1
        lam_uniforms = draw_uniforms(n, generator)
        lam = lam_from_uniforms(lam_uniforms, self.alpha, self.truncate)
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
            if self.check_finite:
                self.graph.warn_if_empty(features, off_diagonal(graph_weights, same_set=True))
        else:
            partner = self.pairing(features, partner_features, generator=generator)
            if self.graph is not None:
                weights = self.graph.pair_weights(features, partner_features, partner)
                if partner_features is None and self.check_finite:
                    distinct = partner != torch.arange(batch_size, device=partner.device)
                    self.graph.warn_if_empty(features, weights[distinct])

        source_inputs = inputs if partner_inputs is None else partner_inputs
        if not self.may_cutmix and self.prob == 1:  # plain linear mixing: the stream and arithmetic of vicinal 0.2
            lam = lam.expand(batch_size).to(device=inputs.device, dtype=target_dtype).contiguous()
            mixed_inputs = interpolate(inputs, source_inputs.index_select(0, partner), lam)
        else:
            lam, partner, mixed_inputs, gated = self._mix_with_options(
                inputs, source_inputs, partner, lam, lam_uniforms, n, generator)
            if gated and self.graph is not None and not isinstance(self.pairing, GraphPairing):
                weights = self.graph.pair_weights(features, partner_features, partner)  # W[i, i] where unmixed
        return MixedBatch(
            inputs=mixed_inputs,
            targets=interpolate(targets, partner_targets.index_select(0, partner), lam),
            lam=lam,
            partner=partner,
            weights=None if weights is None else weights.to(target_dtype),
            from_partner_batch=partner_inputs is not None,
        )

    def _targets(self, labels, batch_size: int, dtype: torch.dtype) -> torch.Tensor:
        targets = dense_targets(labels, batch_size, num_classes=self.num_classes, dtype=dtype,
                                check_values=self.check_finite)
        return smooth_targets(targets, self.label_smoothing)

    def _mix_with_options(self, inputs, source_inputs, partner, lam, lam_uniforms, n, generator):
        """Inputs mixed with CutMix, the linear/CutMix switch and the ``prob`` gate; the draws of the class docstring.

        Returns (lam (B,) in the inputs' dtype, partner, mixed inputs, whether any sample was gated off).
        """
        batch_size = inputs.shape[0]
        centres = draw_uniforms(2 * n, generator).view(n, 2) if self.may_cutmix else None
        if self.cutmix_alpha is not None:
            use_cutmix = draw_uniforms(n, generator) < self.switch_prob
            lam_cutmix = lam_from_uniforms(lam_uniforms, self.cutmix_alpha, self.truncate)
        else:
            use_cutmix = torch.full((n,), self.interpolation == "cutmix")
            lam_cutmix = lam
        mixing = draw_uniforms(n, generator) < self.prob if self.prob < 1 else torch.ones(n, dtype=torch.bool)
        gated = self.prob < 1 and not bool(mixing.all())  # no value read (graph break) when prob is off
        # An unmixed sample has lambda 1 (an empty box for CutMix) and, within the batch, itself as partner.
        lam = torch.where(mixing, lam, 1.0)
        lam_cutmix = torch.where(mixing, lam_cutmix, 1.0)
        if gated:
            keep = mixing.expand(batch_size).to(partner.device)
            partner = torch.where(keep, partner, torch.arange(batch_size, device=partner.device))
        partner_values = source_inputs.index_select(0, partner)
        if self.may_cutmix:
            height, width = check_spatial(inputs)
            boxes = boxes_from_uniforms(lam_cutmix, centres, height, width)
            boxes[~use_cutmix] = 0  # linear samples paste nothing
            lam = torch.where(use_cutmix, box_lam(boxes, height, width), lam)
        lam = lam.expand(batch_size).to(device=inputs.device, dtype=inputs.dtype).contiguous()
        if self.interpolation == "cutmix":
            mixed = inputs
        else:  # CutMix samples keep their own image under lambda 1, then get the box pasted
            mixed = interpolate(inputs, partner_values, torch.where(use_cutmix.to(lam.device), 1.0, lam))
        if self.may_cutmix:
            mixed = paste_boxes(mixed, partner_values, box_masks(boxes, height, width, inputs.ndim, inputs.device))
        return lam, partner, mixed, gated

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
        partner_targets = self._targets(partner_batch[1], partner_inputs.shape[0], targets.dtype)
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
        for name, default in (("interpolation", "linear"), ("label_smoothing", 0.0), ("prob", 1.0),
                              ("cutmix_alpha", None)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        if self.cutmix_alpha is not None:
            parts.append(f"switch_prob={self.switch_prob!r}")
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
                 truncate: bool = False, check_finite: bool = True, interpolation: str = "linear", label_smoothing: float = 0.0, prob: float = 1.0):
        super().__init__(alpha=alpha, pairing=RandomPairing(), num_classes=num_classes, lam_mode=lam_mode,
                         truncate=truncate, check_finite=check_finite, interpolation=interpolation, label_smoothing=label_smoothing, prob=prob)


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
                 check_finite: bool = True, interpolation: str = "linear", label_smoothing: float = 0.0, prob: float = 1.0):
        check_choice("sampling", sampling, SAMPLINGS)
        if not isinstance(graph, LocalityGraph):
            raise TypeError(f"graph must be a KNN, Threshold or Exponential graph, got {type(graph).__name__}")
        self.sampling = sampling
        pairing = GraphPairing() if sampling == "weighted" else UniformPairing()
        super().__init__(alpha=alpha, pairing=pairing, graph=graph, num_classes=num_classes, lam_mode=lam_mode,
                         truncate=truncate, check_finite=check_finite, interpolation=interpolation, label_smoothing=label_smoothing, prob=prob)


class CutMix(Mixer):
    r"""CutMix (Yun et al. 2019): random partners, a box of the partner pasted, targets weighted by the pasted area.

    ``Mixer(pairing=RandomPairing(), interpolation="cutmix")``: :math:`\lambda \sim \mathrm{Beta}(\alpha,
    \alpha)` sets a box of area about :math:`1 - \lambda` (side ratio :math:`\sqrt{1 - \lambda}`, uniform
    centre, clipped to the image), the same box through every channel, and the returned ``lam`` is the
    exact share of the image left, :math:`1 - |\text{box}| / (H W)`, which also weights the targets.
    With ``lam_mode="sample"`` every sample gets its own lambda and box. Other pairings and graphs:
    ``Mixer(pairing=OptimalTransportPairing(k), graph=..., interpolation="cutmix")`` (distances between
    whole images). ``batch.mix(h)`` mixes other tensors (hidden features) linearly with the area lambda.

    Example
    -------
    >>> mixer = CutMix(alpha=1.0, num_classes=10)
    >>> images, targets = mixer(x, y, generator=g)
    """

    def __init__(self, *, alpha: float = 1.0, num_classes: int | None = None, lam_mode: str = "batch",
                 truncate: bool = False, check_finite: bool = True, label_smoothing: float = 0.0, prob: float = 1.0):
        super().__init__(alpha=alpha, pairing=RandomPairing(), num_classes=num_classes, lam_mode=lam_mode,
                         truncate=truncate, check_finite=check_finite, interpolation="cutmix",
                         label_smoothing=label_smoothing, prob=prob)


class KMixup(Mixer):
    r"""k-Mixup (Greenewald et al. 2023, Sec. 2): partners matched by optimal transport inside blocks of k.

    ``KMixup(k=1)`` is :class:`Mixup` exactly (same generator, same batch). For k >= 2 a single batch
    must hold at least 2k samples; pass ``partner_batch=`` for larger k. To keep the RMS perturbation
    constant as k grows, calibrate alpha with :func:`vicinal.calibrate_alpha` (Algorithm 1).
    """

    def __init__(self, *, alpha: float = 1.0, k: int, num_classes: int | None = None, lam_mode: str = "batch",
                 truncate: bool = False, check_finite: bool = True, interpolation: str = "linear", label_smoothing: float = 0.0, prob: float = 1.0):
        super().__init__(alpha=alpha, pairing=OptimalTransportPairing(k), num_classes=num_classes,
                         lam_mode=lam_mode, truncate=truncate, check_finite=check_finite, interpolation=interpolation, label_smoothing=label_smoothing, prob=prob)

    @property
    def k(self) -> int:
        return self.pairing.k
