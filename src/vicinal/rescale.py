r"""Mixup's data transformation and the rescaled prediction of Carratino et al. 2020.

Theorem 1 shows that mixup is ERM on data shrunk towards its mean,

.. math:: \tilde x_i = \bar x + \bar\theta (x_i - \bar x), \qquad \tilde y_i = \bar y + \bar\theta (y_i - \bar y)
          \qquad \text{(eq. 5)},

plus zero-mean perturbations. A model trained with mixup therefore maps shrunk inputs to shrunk
outputs, and eq. (22) undoes both shrinkages at test time:

.. math:: \mathrm{pred}_f(x) = \bar y \Big(1 - \frac{1}{\bar\theta}\Big) + \frac{1}{\bar\theta}
          f\big(\bar\theta x + (1 - \bar\theta) \bar x\big).

:func:`fit_stats` measures :math:`\bar x, \bar y` in one pass over the training data,
:func:`modified_data` applies eq. (5) to a batch (so ERM on modified data, eq. 20, is an ordinary
loss on its output) and :class:`RescaledPredictor` wraps a trained model with eq. (22).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from . import moments
from ._checks import check_choice, check_inputs, check_int, check_real
from .targets import as_label_tensor, dense_targets

SPACES = ("logits", "probabilities")


@dataclass(frozen=True)
class TrainingStats:
    r"""Mean input :math:`\bar x` and mean target :math:`\bar y` of a training set (Carratino et al. 2020, Sec. 2).

    Attributes
    ----------
    x_mean : Tensor
        Mean input, shape of one input (e.g. (d,) or (C, H, W)), float64.
    y_mean : Tensor
        Mean target, float64: the class frequencies (C,) for index or one-hot labels, the mean soft
        target for soft labels, the mean regression target otherwise (shape of one target).
    count : int
        Number of samples averaged.
    """

    x_mean: torch.Tensor
    y_mean: torch.Tensor
    count: int


def _batches(data: Any, batch_size: int) -> Iterable:
    """Yield (x, y) batches from a tensor pair, a Dataset, a DataLoader or an iterable of batches."""
    if (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor)
            and isinstance(data[1], (torch.Tensor, np.ndarray))):  # numpy labels are wrapped by dense_targets
        return [tuple(data)]
    if isinstance(data, torch.utils.data.Dataset):  # single samples: let the default collate batch them
        return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    try:
        return iter(data)
    except TypeError:
        raise TypeError(
            f"data must be an (x, y) pair of tensors, a torch Dataset, a DataLoader or an iterable of (x, y) "
            f"batches; got {type(data).__name__}"
        ) from None


def fit_stats(data: Any, *, num_classes: int | None = None, batch_size: int = 1024) -> TrainingStats:
    r"""Mean input and mean (one-hot) target of a training set, in one streaming pass.

    Carratino et al. 2020, Sec. 2 (:math:`\bar x, \bar y`) and Algorithm 1; like the authors' ImageNet
    code, this is measured once over the training set before it is used for eq. (5) or eq. (22).
    Sums are accumulated in float64, so the result does not depend on how the data is batched
    beyond rounding.

    Parameters
    ----------
    data : (x, y) pair of tensors, torch Dataset, DataLoader, or iterable of (x, y) batches
        ``x`` floating, shape (B, ...); ``y`` class indices (B,), dense / soft targets (B, C) or
        floating regression targets (B,) / (B, d). A Dataset yields single samples, batched here with
        the default collate.
    num_classes : int, optional
        Required for class-index labels (turned into one-hot vectors, so ``y_mean`` holds the class
        frequencies); checked against C for dense labels.
    batch_size : int
        Batch size used to read a Dataset.

    Returns
    -------
    TrainingStats

    Raises
    ------
    ValueError
        If the data holds no samples, or batches disagree in shape, or labels are invalid
        (e.g. class indices without ``num_classes``).
    TypeError
        If ``data`` or a batch has the wrong type.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    x_sum = y_sum = None
    count = 0
    for index, batch in enumerate(_batches(data, batch_size)):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(f"batch {index} must be an (x, y) pair, got {type(batch).__name__}"
                            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
        x, y = batch
        x = check_inputs(x, name=f"x of batch {index}")
        targets = dense_targets(y, x.shape[0], num_classes=num_classes, dtype=torch.float64)
        if x_sum is None:
            x_sum = torch.zeros(x.shape[1:], dtype=torch.float64, device=x.device)
            y_sum = torch.zeros(targets.shape[1:], dtype=torch.float64, device=x.device)
        if x.shape[1:] != x_sum.shape or targets.shape[1:] != y_sum.shape:
            raise ValueError(
                f"batch {index} has inputs {tuple(x.shape[1:])} and targets {tuple(targets.shape[1:])} per sample, "
                f"but earlier batches had {tuple(x_sum.shape)} and {tuple(y_sum.shape)}"
            )
        x_sum += x.to(torch.float64).sum(dim=0)
        y_sum += targets.to(x_sum.device).sum(dim=0)
        count += x.shape[0]
    if count == 0:
        raise ValueError("fit_stats got no samples in data (empty dataset or loader): the means are undefined")
    return TrainingStats(x_mean=x_sum / count, y_mean=y_sum / count, count=count)


def resolve_theta_bar(alpha: float | None, theta_bar: float | None) -> float:
    r"""Return :math:`\bar\theta` from exactly one of ``alpha`` (via :func:`vicinal.moments.theta_bar`) or ``theta_bar``.

    Carratino et al. 2020, Theorem 1. A given ``theta_bar`` must lie in [1/2, 1], the range of the
    mean of :math:`\mathrm{Beta}_{[1/2,1]}(\alpha, \alpha)`.
    """
    if (alpha is None) == (theta_bar is None):
        raise ValueError(f"pass exactly one of alpha (the mixup Beta parameter) or theta_bar; "
                         f"got alpha={alpha!r}, theta_bar={theta_bar!r}")
    if alpha is not None:
        return moments.theta_bar(alpha)
    value = check_real("theta_bar", theta_bar)
    if not 0.5 <= value <= 1.0:
        raise ValueError(f"theta_bar must lie in [0.5, 1] (the mean of Beta(alpha, alpha) truncated to [1/2, 1]), "
                         f"got {theta_bar!r}")
    return value


def _check_stats(stats: Any) -> TrainingStats:
    if not isinstance(stats, TrainingStats):
        raise TypeError(f"stats must be the TrainingStats returned by fit_stats, got {type(stats).__name__}")
    return stats


def modified_data(x: torch.Tensor, y: torch.Tensor, *, stats: TrainingStats, alpha: float | None = None,
                  theta_bar: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Shrink inputs and targets towards the training means: eq. (5) of Carratino et al. 2020.

    .. math:: \tilde x = \bar x + \bar\theta (x - \bar x), \qquad \tilde y = \bar y + \bar\theta (y - \bar y).

    Works per batch, so ERM on modified data (eq. 20) is ``loss(model(x_t), y_t)`` with
    ``x_t, y_t = modified_data(x, y, ...)``. For one-hot ``y`` and class frequencies :math:`\bar y`,
    :math:`\tilde y` is label smoothing with weight :math:`1 - \bar\theta` towards :math:`\bar y`
    (Sec. 5, "Label smoothing").

    Parameters
    ----------
    x : Tensor (B, ...)
        Floating inputs; ``x.shape[1:]`` must equal ``stats.x_mean.shape``.
    y : Tensor
        Class indices (B,) (one-hot encoded with ``C = stats.y_mean.shape[0]`` classes), dense targets
        (B, C) or regression targets, matching ``stats.y_mean`` per sample.
    stats : TrainingStats
        From :func:`fit_stats` on the training set.
    alpha, theta_bar : float
        Exactly one: the mixup Beta parameter, or :math:`\bar\theta` itself.

    Returns
    -------
    (Tensor, Tensor)
        :math:`\tilde x` (same shape and dtype as ``x``) and :math:`\tilde y` (B, ...) in ``x``'s dtype.
    """
    stats = _check_stats(stats)
    shrink = resolve_theta_bar(alpha, theta_bar)
    x = check_inputs(x, name="x")
    if x.shape[1:] != stats.x_mean.shape:
        raise ValueError(f"x has per-sample shape {tuple(x.shape[1:])} but stats.x_mean has shape "
                         f"{tuple(stats.x_mean.shape)}")
    y = as_label_tensor(y, "y")
    index_labels = y.ndim == 1 and not y.is_floating_point()
    num_classes = stats.y_mean.shape[0] if index_labels and stats.y_mean.ndim == 1 else None
    targets = dense_targets(y, x.shape[0], num_classes=num_classes, dtype=x.dtype)
    if targets.shape[1:] != stats.y_mean.shape:
        raise ValueError(f"y gives targets of per-sample shape {tuple(targets.shape[1:])} but stats.y_mean has "
                         f"shape {tuple(stats.y_mean.shape)}")
    x_mean = stats.x_mean.to(device=x.device, dtype=x.dtype)
    y_mean = stats.y_mean.to(device=x.device, dtype=x.dtype)
    return x_mean + shrink * (x - x_mean), y_mean + shrink * (targets - y_mean)


class RescaledPredictor(nn.Module):
    r"""Evaluate a mixup-trained model on rescaled inputs and outputs: eq. (22) of Carratino et al. 2020.

    .. math:: \mathrm{pred}_f(x) = \bar y \Big(1 - \frac{1}{\bar\theta}\Big) + \frac{1}{\bar\theta}
              f\big(\bar\theta x + (1 - \bar\theta) \bar x\big).

    ``space="logits"`` applies the output map to the raw model outputs (logits for classifiers,
    predictions for regression), as the authors' ImageNet code does (google/uncertainty-baselines).
    With balanced classes (:math:`\bar y = \mathbf 1 / C`) this adds the same constant to every logit, so
    it equals temperature scaling with temperature :math:`\bar\theta` (Sec. 5).

    ``space="probabilities"`` applies it to ``softmax(f)``, which is what the paper's derivation
    (outputs in the span of one-hot targets) literally describes. The result still sums to 1 but
    may leave the simplex: a class with :math:`p_c < (1 - \bar\theta) \bar y_c` gets a negative value.
    Such entries are clipped to the smallest positive normal number of the dtype, the vector is
    renormalised, and its log is returned, so the output is always finite log-probabilities (valid
    logits: ``softmax`` of it gives the clipped probabilities back) and soft-target losses never see
    ``0 * log 0``.

    :math:`\bar x, \bar y` and :math:`\bar\theta` are buffers: they follow ``.to(device)`` and are saved in
    and restored from ``state_dict``.

    Parameters
    ----------
    model : nn.Module
        The trained model; it must treat samples independently.
    stats : TrainingStats
        From :func:`fit_stats` on the training set (class-frequency ``y_mean`` for classifiers).
    alpha, theta_bar : float
        Exactly one: the mixup Beta parameter used in training, or :math:`\bar\theta \in [1/2, 1]`.
    space : {"logits", "probabilities"}
        Where the output map is applied (see above). ``"probabilities"`` needs ``stats.y_mean`` to be a
        probability vector (C,).

    Raises
    ------
    ValueError
        On a bad ``alpha`` / ``theta_bar`` / ``space``, at construction; on inputs or model outputs whose
        per-sample shape does not match ``x_mean`` / ``y_mean``, at call time.
    """

    x_mean: torch.Tensor
    y_mean: torch.Tensor
    theta_bar: torch.Tensor

    def __init__(self, model: nn.Module, *, stats: TrainingStats, alpha: float | None = None,
                 theta_bar: float | None = None, space: str = "logits") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        stats = _check_stats(stats)
        self.space = check_choice("space", space, SPACES)
        shrink = resolve_theta_bar(alpha, theta_bar)
        if space == "probabilities":
            y_mean = stats.y_mean
            if y_mean.ndim != 1 or bool((y_mean < 0).any()) or abs(float(y_mean.sum()) - 1.0) > 1e-6:
                raise ValueError(f"space='probabilities' needs stats.y_mean to be class frequencies (C,) summing "
                                 f"to 1; got shape {tuple(y_mean.shape)} summing to {float(y_mean.sum()):.6g}")
        self.model = model
        self.register_buffer("x_mean", stats.x_mean.detach().clone())
        self.register_buffer("y_mean", stats.y_mean.detach().clone())
        self.register_buffer("theta_bar", torch.tensor(shrink, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescaled outputs (logit space) or rescaled log-probabilities (probability space), shape (B, ...)."""
        x = check_inputs(x, name="x")
        if x.shape[1:] != self.x_mean.shape:
            raise ValueError(f"x has per-sample shape {tuple(x.shape[1:])} but the training mean x_mean has shape "
                             f"{tuple(self.x_mean.shape)}")
        shrink = self.theta_bar.to(x.dtype)
        outputs = self.model(shrink * x + (1 - shrink) * self.x_mean.to(x.dtype))
        if outputs.shape[1:] != self.y_mean.shape:
            raise ValueError(f"model outputs have per-sample shape {tuple(outputs.shape[1:])} but the training "
                             f"target mean y_mean has shape {tuple(self.y_mean.shape)}; fit_stats must see the "
                             f"targets the model predicts (num_classes = number of outputs)")
        shrink = shrink.to(outputs.dtype)
        y_mean = self.y_mean.to(outputs.dtype)
        if self.space == "logits":
            return y_mean * (1 - 1 / shrink) + outputs / shrink
        probs = y_mean * (1 - 1 / shrink) + torch.softmax(outputs, dim=-1) / shrink
        probs = probs.clamp_min(torch.finfo(probs.dtype).tiny)
        return torch.log(probs / probs.sum(dim=-1, keepdim=True))

    def extra_repr(self) -> str:
        return f"theta_bar={float(self.theta_bar):.6g}, space={self.space!r}"
