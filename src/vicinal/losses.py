r"""Losses on mixed batches: soft-target cross-entropy or squared error, weighted by locality weights.

Baena et al. 2022, eq. (2): :math:`L = \sum_{i,j} W[i,j]\,\mathcal{L}(f(\tilde x_{ij}), \tilde y_{ij})`.
For a batch of B virtual samples with weights :math:`w_i` the reductions are

* ``"mean"`` (default): :math:`\frac{1}{B}\sum_i w_i \ell_i`, the minibatch estimate of eq. (2)
  scaled by 1/B (plain mean when there are no weights);
* ``"normalized"``: :math:`\sum_i w_i \ell_i / \sum_i w_i`, the self-normalised estimate (as in the
  authors' Fashion-MNIST script); 0 with zero gradient when every weight is 0;
* ``"sum"``: :math:`\sum_i w_i \ell_i`; ``"none"``: the vector :math:`w_i \ell_i`.
"""

from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F

from ._checks import check_bool, check_choice, check_same_device, check_tensor, probability_tolerance
from .batch import MixedBatch

REDUCTIONS = ("mean", "normalized", "sum", "none")
LOSSES = ("cross_entropy", "squared_error")
LossName = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Per-sample cross-entropy against dense targets: :math:`-\sum_c t_c \log \mathrm{softmax}(z)_c`, shape (B,).

    Zhang et al. 2018: for logits, this equals :math:`\lambda\,\mathrm{CE}(y_i) + (1-\lambda)\,\mathrm{CE}(y_j)`.
    A class of target 0 contributes exactly 0, even where its logit is -inf (log-probability -inf), as
    in ``F.cross_entropy``; ``targets`` are cast to the logits' dtype.
    """
    check_tensor("logits", logits, floating=True)
    check_tensor("targets", targets)
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError(
            f"cross-entropy needs logits and targets of the same shape (B, C), got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    check_same_device("targets", targets, "logits", logits)
    targets = targets.to(logits.dtype)
    terms = targets * F.log_softmax(logits, dim=1)
    # 0 * -inf is NaN in IEEE arithmetic; the cross-entropy term of a class of probability 0 is 0.
    return -torch.where(targets == 0, torch.zeros_like(terms), terms).sum(dim=1)


def squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample squared error, averaged over output dimensions (so the default reduction matches
    ``F.mse_loss``), shape (B,). Outputs (B, 1) are accepted for targets (B,)."""
    check_tensor("outputs", outputs, floating=True)
    check_tensor("targets", targets)
    check_same_device("targets", targets, "outputs", outputs)
    if outputs.shape != targets.shape:
        if outputs.ndim == targets.ndim + 1 and outputs.shape[-1] == 1 and outputs.shape[:-1] == targets.shape:
            outputs = outputs.squeeze(-1)
        else:
            raise ValueError(f"outputs of shape {tuple(outputs.shape)} do not match targets of shape {tuple(targets.shape)}")
    return (outputs - targets).pow(2).reshape(outputs.shape[0], -1).mean(dim=1)


def reduce_weighted(per_sample: torch.Tensor, weights: torch.Tensor | None, reduction: str = "mean", *,
                    check_values: bool = True) -> torch.Tensor:
    """Apply locality weights and a reduction to per-sample losses (Baena et al. 2022, eq. 2).

    Samples of weight 0 contribute exactly 0 (even when their loss is infinite), and an all-zero
    weight vector gives a zero loss with a zero gradient, never NaN. ``check_values=False`` skips the
    check that weights are >= 0 and not NaN (it reads tensor values: a synchronisation on CUDA and a
    graph break under ``torch.compile``).
    """
    check_values = check_bool("check_values", check_values)
    check_choice("reduction", reduction, REDUCTIONS)
    check_tensor("per_sample", per_sample)
    if per_sample.ndim != 1 or per_sample.shape[0] == 0:
        raise ValueError(f"per_sample losses must have shape (B,) with B >= 1, got {tuple(per_sample.shape)}")
    if weights is None:
        weighted = per_sample
    else:
        check_tensor("weights", weights)
        if weights.shape != per_sample.shape:
            raise ValueError(f"weights of shape {tuple(weights.shape)} do not match per_sample losses of shape "
                             f"{tuple(per_sample.shape)}")
        check_same_device("weights", weights, "per_sample", per_sample)
        # A negative or NaN locality weight has no meaning in eq. (2) and would flip or poison the loss.
        if check_values and not bool((weights >= 0).all()):
            raise ValueError("weights must be finite and >= 0 (locality weights of Baena et al. 2022, eq. 2), "
                             f"got min {weights.min().item()!r}" + (" and NaN" if bool(weights.isnan().any()) else ""))
        weights = weights.to(per_sample.dtype)
        weighted = torch.where(weights > 0, weights * per_sample, torch.zeros_like(per_sample))
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean" or weights is None:
        return weighted.sum() / per_sample.shape[0]
    return weighted.sum() / weights.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)


def mixup_loss(outputs: torch.Tensor, batch: MixedBatch, *, loss: LossName = "cross_entropy",
               reduction: str = "mean", check_values: bool = True) -> torch.Tensor:
    """Loss of a model's outputs on a :class:`MixedBatch`, weighted by ``batch.weights``.

    Baena et al. 2022, eq. (2) (weighted virtual samples); Zhang et al. 2018 (soft targets).

    Parameters
    ----------
    outputs : Tensor
        Model outputs on ``batch.inputs``: logits (B, C) for cross-entropy, predictions for squared error.
    batch : MixedBatch
        From a mixer.
    loss : "cross_entropy" | "squared_error" | callable
        A callable takes ``(outputs, targets)`` and returns per-sample losses of shape (B,).
    reduction : {"mean", "normalized", "sum", "none"}
        See the module docstring; "mean" is eq. (2) scaled by 1/B.
    check_values : bool
        Check that cross-entropy targets are probability vectors and locality weights are >= 0.
        ``False`` skips both (they read tensor values: a synchronisation on CUDA and a graph break under
        ``torch.compile``).
    """
    check_values = check_bool("check_values", check_values)
    if not isinstance(batch, MixedBatch):
        raise TypeError(f"batch must be the MixedBatch a mixer returned, got {type(batch).__name__}")
    check_choice("reduction", reduction, REDUCTIONS)
    check_tensor("outputs", outputs)
    if outputs.ndim == 0 or outputs.shape[0] != len(batch) or len(batch) == 0:
        raise ValueError(f"outputs must hold one row per sample of the batch ({len(batch)}, at least 1), got shape "
                         f"{tuple(outputs.shape)}")
    check_same_device("outputs", outputs, "batch.targets", batch.targets)
    if callable(loss):
        per_sample = loss(outputs, batch.targets)
        if not isinstance(per_sample, torch.Tensor) or per_sample.shape != (outputs.shape[0],):
            got = f"shape {tuple(per_sample.shape)}" if isinstance(per_sample, torch.Tensor) else type(per_sample).__name__
            raise ValueError(f"the loss callable must return per-sample losses of shape ({outputs.shape[0]},), got "
                             f"{got}; reduce over every dimension but the batch (e.g. .mean(dim=1)), not over it")
    elif check_choice("loss", loss, LOSSES) == "cross_entropy":
        check_tensor("outputs", outputs, floating=True)
        if check_values:
            _check_probability_targets(batch.targets)
        if outputs.shape != batch.targets.shape:
            raise ValueError(f"outputs (logits) must have the targets' shape {tuple(batch.targets.shape)} for "
                             f"cross-entropy, got {tuple(outputs.shape)}")
        per_sample = soft_cross_entropy(outputs, batch.targets)
    else:
        per_sample = squared_error(outputs, batch.targets.to(outputs.dtype))
    return reduce_weighted(per_sample, batch.weights, reduction, check_values=check_values)


def _check_probability_targets(targets: torch.Tensor) -> None:
    """Refuse targets that are not probability rows, within the rounding of their dtype (float16 targets pass)."""
    if targets.ndim != 2:
        raise ValueError(
            f"cross-entropy needs class targets of shape (B, C), got {tuple(targets.shape)}; "
            f"for regression targets use loss='squared_error'"
        )
    tolerance = probability_tolerance(targets.dtype)
    error = (targets.double().sum(dim=1) - 1).abs().max()
    if bool((targets < -tolerance).any()) or not bool(error <= tolerance):
        raise ValueError(
            f"cross-entropy targets must be probability vectors (non-negative, rows summing to 1 within "
            f"{tolerance:.2g}; a row is off by {float(error):.3g}); for regression targets use loss='squared_error'"
        )
