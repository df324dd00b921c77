r"""Streaming calibration metrics: accumulate predictions batch by batch, compute once, reduce across ranks.

Averaging a per-batch ECE is not the ECE of the set (the bins' shares and gaps change with the batch),
so :class:`Calibration` keeps what the whole-set estimators of :mod:`vicinal.metrics` need and computes
them on the concatenation. Exposed as ``vicinal.metrics.Calibration``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_int
# metrics.py imports this module at its end, once these helpers exist.
from .metrics import (_binned, _calibration_gaps, _dense_targets, _equal_mass_bins, _equal_width_bins, _expected_gap,
                      _per_sample_nll, _probabilities)

# Columns of the per-sample rows kept by Calibration (float64): top-class confidence, 1.0 if the top
# class is the target's (argmax) class, cross-entropy of the row.
_CONFIDENCE, _CORRECT, _NLL = range(3)


class Calibration:
    r"""Streaming error rate, NLL, ECE, MCE and adaptive ECE over every update since the last reset.

    Carratino et al. 2020, Sec. 5 (test error, cross-entropy, ECE); Guo et al. 2017, eq. (3) and (5)
    (ECE, MCE); Nixon et al. 2019 (adaptive ECE). ``compute()`` equals :func:`vicinal.metrics.ece`,
    :func:`~vicinal.metrics.mce`, :func:`~vicinal.metrics.adaptive_ece`, :func:`~vicinal.metrics.nll`
    and :func:`~vicinal.metrics.error_rate` applied to the concatenation of every update (to float
    rounding of the sums), with the same conventions (index or soft targets, ``from_logits``).

    State: three float64 numbers per sample (confidence, correctness, cross-entropy), 24 bytes. Equal-width
    ECE and MCE would need only per-bin sums, but equal-mass bins depend on the rank of every confidence
    in the whole set, so adaptive ECE cannot be reduced from per-batch or per-rank summaries.

    Under ``torch.distributed`` (initialised, world size > 1) ``compute()`` all-gathers every rank's rows
    (padded to the largest rank's count, then trimmed) and computes on their concatenation in rank order:
    every rank gets the value of the whole set, exactly what one process holding all the data computes.
    It is a collective call: every rank of the group must call it.

    Parameters
    ----------
    n_bins : int
        Number of bins of ECE, MCE and adaptive ECE (>= 1).
    from_logits : bool
        Apply softmax to the predictions (else they must be probabilities).
    process_group : optional
        ``torch.distributed`` group to reduce over (default: the whole world).

    Example
    -------
    >>> metric = Calibration(n_bins=15, from_logits=True)
    >>> for x, y in test_loader:
    ...     metric.update(model(x), y)
    >>> metric.compute()["ece"]
    """

    def __init__(self, n_bins: int = 15, *, from_logits: bool = False, process_group=None):
        self.n_bins = check_int("n_bins", n_bins, minimum=1)
        if not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be a bool, got {from_logits!r}")
        self.from_logits = from_logits
        self.process_group = process_group
        self.reset()

    def reset(self) -> None:
        """Forget every update (start a new evaluation)."""
        self._rows: list[torch.Tensor] = []
        self.num_classes: int | None = None

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``predictions`` (N, C) probabilities or logits, ``targets`` (N,) indices or (N, C) soft.

        Raises ValueError when the batch is malformed (see :mod:`vicinal.metrics`) or its class count
        differs from the earlier updates'.
        """
        probs = _probabilities(predictions, self.from_logits)
        if self.num_classes is not None and probs.shape[1] != self.num_classes:
            raise ValueError(f"predictions have {probs.shape[1]} classes but earlier updates had {self.num_classes}; "
                             "call reset() before evaluating a model with another class count")
        dense = _dense_targets(targets.to(probs.device) if isinstance(targets, torch.Tensor) else targets,
                               tuple(probs.shape), probs)
        confidence, predicted = probs.max(dim=1)
        correct = (predicted == dense.argmax(dim=1)).to(torch.float64)
        nll = _per_sample_nll(predictions, probs, dense, self.from_logits)
        self._rows.append(torch.stack((confidence, correct, nll), dim=1).cpu())
        self.num_classes = probs.shape[1]

    @property
    def count(self) -> int:
        """Samples added on this process since the last reset."""
        return sum(rows.shape[0] for rows in self._rows)

    def compute(self) -> dict[str, float]:
        """Metrics of every sample added since the last reset (on every rank under ``torch.distributed``).

        Returns
        -------
        dict
            ``error``, ``nll``, ``ece``, ``mce``, ``adaptive_ece`` as Python floats.
        """
        rows = torch.cat(self._rows) if self._rows else torch.zeros(0, 3, dtype=torch.float64)
        rows = self._gathered(rows)
        if rows.shape[0] == 0:
            raise ValueError("Calibration.compute() called before any update: no samples to evaluate")
        confidence, correct = rows[:, _CONFIDENCE].numpy(), rows[:, _CORRECT].numpy()
        conf, acc, counts = _binned(confidence, correct, _equal_width_bins(confidence, self.n_bins), self.n_bins)
        _, gaps = _calibration_gaps(conf, acc, counts)
        return {
            "error": float(1.0 - correct.mean()),
            "nll": float(rows[:, _NLL].mean()),
            "ece": _expected_gap(conf, acc, counts),
            "mce": float(np.max(gaps)),
            "adaptive_ece": _expected_gap(*_binned(confidence, correct, _equal_mass_bins(confidence, self.n_bins),
                                                   self.n_bins)),
        }

    def _gathered(self, rows: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's rows in rank order (the rows themselves outside torch.distributed)."""
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(self.process_group) == 1:
            return rows
        group, world = self.process_group, dist.get_world_size(self.process_group)
        # NCCL only moves CUDA tensors; gloo and the others take CPU ones.
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
        size = torch.tensor([rows.shape[0]], dtype=torch.int64, device=device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size, group=group)
        sizes = [int(s.item()) for s in sizes]
        padded = torch.zeros(max(sizes), 3, dtype=torch.float64, device=device)
        padded[:rows.shape[0]] = rows
        gathered = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(gathered, padded, group=group)
        return torch.cat([part[:n].cpu() for part, n in zip(gathered, sizes)])

    def __repr__(self) -> str:
        return f"Calibration(n_bins={self.n_bins}, from_logits={self.from_logits}, count={self.count})"
