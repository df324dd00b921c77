"""The members' mixing draws: the epoch's uniforms, then lambdas, random orders and partners for all at once.

Randomness protocol: the one of :mod:`vicinal.lab.trainer` (protocol 3), member by member, each
member with its own streams (:mod:`.members`). A mixer call consumes a fixed number of uniforms,
and consecutive ``torch.rand`` calls continue one stream, so at the start of each epoch member m
draws all its uniforms for the epoch in one call; lambdas (Beta quantiles), random orders (argsort)
and weighted-sampling partners (inverse CDF) then come from them for all members at once; k-Mixup
members of one k and batch size get their optimal-transport costs from one batched product and
share one loop of Hungarian solves. Only the kNN / weighted-sampling graph matrices run member by
member. So member m ends with the parameters and metrics ``trainer.train(config_m)`` gives, up to
floating-point rounding.
"""

from __future__ import annotations

import math

import torch

from vicinal.lam import lam_from_uniforms
from vicinal.pairing import GraphPairing, OptimalTransportPairing, UniformPairing, match_next_blocks, order_from_uniforms

from ..config import MIXING_METHODS
from .members import _Member


class _Draws:
    """What each member's mixer draws in ``trainer.train``: lambdas, partners and graph-matrix weights.

    ``draw_epoch`` draws the uniforms of a whole epoch for every mixing member; ``for_step`` gives the
    active members' lambdas, partners and weights at one step from them.
    """

    def __init__(self, members: list[_Member], batch_sizes: torch.Tensor, dtype: torch.dtype):
        self.members, self.batch_sizes, self.dtype = members, batch_sizes, dtype
        for m in members:  # the draws below replicate plain linear mixing only (randomness protocol 3)
            if m.mixer is not None and (m.mixer.may_cutmix or m.mixer.label_smoothing or m.mixer.prob < 1):
                raise ValueError(f"the batched trainer replicates linear mixing without label smoothing or prob, "
                                 f"got {m.mixer!r}; train this run with trainer.train")
        configs = [m.config for m in members]
        self.mixes = torch.tensor([c.method in MIXING_METHODS for c in configs])
        self.per_sample = torch.tensor([m.mixer is not None and m.mixer.lam_mode == "sample" for m in members])
        self.cycles = torch.tensor([m.mixer is not None and _is_random_pairing(m.mixer) for m in members])
        self.uniform = torch.tensor([m.mixer is not None and isinstance(m.mixer.pairing, UniformPairing)
                                     for m in members])
        self.transport = torch.tensor([m.mixer is not None and not _is_random_pairing(m.mixer)
                                       and not isinstance(m.mixer.pairing, (GraphPairing, UniformPairing))
                                       for m in members])
        # Members whose partners or weights need their own graph matrix: weighted sampling, kNN weights.
        self.own_pairing = torch.tensor([m.mixer is not None and (isinstance(m.mixer.pairing, GraphPairing) or (
            m.mixer.graph is not None and m.mixer.graph.needs_full_matrix)) for m in members])
        self.alpha = torch.tensor([c.alpha for c in configs], dtype=torch.float64)
        self.truncate = torch.tensor([c.truncate for c in configs])

    def draw_epoch(self) -> None:
        """Every mixing member's uniforms for the whole epoch, one ``torch.rand`` call per member.

        ``trainer.train`` calls the mixer once per step, which draws first the lambda uniforms (1, or
        B per sample) then the B uniforms of the random order (:func:`vicinal.lam.sample_lam`,
        :func:`vicinal.pairing.random_order`): the same numbers, because consecutive ``torch.rand``
        calls on a CPU generator continue one stream (pinned by ``tests/test_ensemble.py``).
        """
        members = self.members
        steps = max(m.steps_per_epoch for m in members)
        lam_width = max(int(m.batch_size if self.per_sample[i] else 1) for i, m in enumerate(members))
        lam_u = torch.zeros(len(members), steps, lam_width, dtype=torch.float64)
        pair_u = torch.full((len(members), steps, int(self.batch_sizes.max())), math.inf, dtype=torch.float64)
        for i, member in enumerate(members):
            if not self.mixes[i]:
                continue
            size, n_lam = member.batch_size, member.batch_size if self.per_sample[i] else 1
            u = torch.rand(member.steps_per_epoch * (n_lam + size), dtype=torch.float64,
                           generator=member.mix_generator).view(member.steps_per_epoch, n_lam + size)
            lam_u[i, :member.steps_per_epoch, :n_lam] = u[:, :n_lam]
            pair_u[i, :member.steps_per_epoch, :size] = u[:, n_lam:]
        width = pair_u.shape[2]
        lam = lam_from_uniforms(lam_u, self.alpha[:, None, None], self.truncate[:, None, None]).to(self.dtype)
        if lam_width < width:  # padding (sample-mode members are never wider than lam_width)
            lam = torch.cat([lam, lam.new_ones(len(members), steps, width - lam_width)], dim=2)
        lam = torch.where(self.per_sample[:, None, None], lam, lam[:, :, :1])
        self.epoch_lam = torch.where(self.mixes[:, None, None], lam, torch.ones_like(lam))
        # Random orders (pads sort last) and, for random pairing, each sample's successor in the cycle.
        self.epoch_order = order_from_uniforms(pair_u)
        sizes = self.batch_sizes[:, None, None]
        position = torch.arange(width)
        following = torch.where(position < sizes - 1, position + 1, torch.where(position == sizes - 1, 0, position))
        following = following.expand(len(members), steps, width)
        cycle = torch.empty_like(self.epoch_order).scatter_(2, self.epoch_order, self.epoch_order.gather(2, following))
        # Uniform partners over the batch, self included (Local Mixup "uniform"): vicinal.pairing.uniform_partners.
        valid = position < sizes
        uniform = torch.where(valid, (torch.where(valid, pair_u, 0.0) * sizes).floor_().long(), position)
        uniform = torch.minimum(uniform, (sizes - 1).clamp_min(0)).expand_as(cycle)
        self.epoch_partner = torch.where(self.cycles[:, None, None], cycle,
                                         torch.where(self.uniform[:, None, None], uniform, position.expand_as(cycle)))
        self.epoch_pair_u = pair_u

    def for_step(self, x: torch.Tensor, active: torch.Tensor, step: int):
        """Lambdas, partners and full-matrix weights of the active members at ``step``, from the epoch's uniforms.

        Lambdas (Beta quantiles, :func:`vicinal.lam.lam_from_uniforms`), random orders
        (:func:`vicinal.pairing.order_from_uniforms`), random-pairing partners (Mixup, k = 1: the next
        sample in each order's cycle) and uniform partners (Local Mixup "uniform",
        :func:`vicinal.pairing.uniform_partners`) come from :meth:`draw_epoch` for all
        members and steps at once; k-Mixup members of one k and batch size are matched together
        (:func:`vicinal.pairing.match_next_blocks`). Only weighted sampling and kNN weights, which
        need each member's own graph matrix, run member by member.
        """
        rows, width = len(active), x.shape[1]
        if rows == len(self.members):  # everyone trains: views, no gathers
            lam, order = self.epoch_lam[:, step, :width], self.epoch_order[:, step, :width]
            partner = self.epoch_partner[:, step, :width].clone()
        else:
            lam, order = self.epoch_lam[active, step, :width], self.epoch_order[active, step, :width]
            partner = self.epoch_partner[active, step, :width]
        groups: dict[tuple[int, int], list[int]] = {}  # k-Mixup rows by (k, batch size): matched together
        for row in torch.nonzero(self.transport[active]).flatten().tolist():
            member = self.members[int(active[row])]
            groups.setdefault((member.mixer.pairing.k, member.batch_size), []).append(row)
        for (k, size), chosen in groups.items():
            chosen = torch.tensor(chosen)
            partner[chosen, :size] = match_next_blocks(x[chosen, :size], order[chosen, :size], k)
        weights = torch.ones(rows, width, dtype=x.dtype)
        for row in torch.nonzero(self.own_pairing[active]).flatten().tolist():
            member = self.members[int(active[row])]
            size = member.batch_size
            partner[row, :size], weights[row, :size] = _pair_member(
                member, x[row, :size], partner[row, :size], self.epoch_pair_u[int(active[row]), step, :size])
        return lam, partner, weights


def _is_random_pairing(mixer) -> bool:
    """Random-cycle partners (Mixup, k-Mixup with k = 1): the next sample in a random order."""
    return isinstance(mixer.pairing, OptimalTransportPairing) and mixer.pairing.k == 1


def _pair_member(member: _Member, features: torch.Tensor, partner: torch.Tensor,
                 uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Member m's partners and loss weights when they need its own graph matrix: the step of ``Mixer.__call__``.

    Weighted sampling on the member's graph matrix with its ``uniforms`` (Baena et al. 2022, eq. 2;
    the loss weights are the mean graph row), or kNN pair weights of the ``partner`` already chosen
    (uniform or optimal transport), or pair weights of graphs that depend on the whole batch (quantile
    thresholds, relative exponentials). Absolute threshold / exponential pair weights are vectorised afterwards.
    """
    mixer = member.mixer
    if isinstance(mixer.pairing, GraphPairing):
        graph_weights = mixer.graph.matrix(features)
        return GraphPairing.from_uniforms(graph_weights, uniforms), graph_weights.mean(dim=1)
    return partner, mixer.graph.pair_weights(features, None, partner)
