"""Labels to dense targets: class indices become one-hot vectors; dense and regression targets are kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._checks import check_bool, check_float_dtype, check_int


def as_label_tensor(labels: Any, name: str = "labels") -> torch.Tensor:
    """``labels`` as a tensor: numpy arrays (what numpy-backed datasets hand over) are wrapped without a copy.

    An integration convenience with no paper. Any other type than a tensor or a numpy array raises a
    TypeError naming it.
    """
    if isinstance(labels, torch.Tensor):
        return labels
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold integers or real numbers, got a numpy array of dtype {labels.dtype}")
        return torch.from_numpy(np.ascontiguousarray(labels))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(labels).__name__}")


def one_hot(indices: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot rows (B, C) of class indices of any integer dtype (int8/16/32/64, uint8), built by a scatter.

    ``torch.nn.functional.one_hot`` takes int64 only and reads the labels' values (a graph break under
    ``torch.compile``); the scatter does neither. The caller checks the range.
    """
    out = torch.zeros(indices.shape[0], num_classes, dtype=dtype, device=indices.device)
    return out.scatter_(1, indices.long().unsqueeze(1), 1)


def smooth_targets(targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    r"""Label smoothing of class targets (B, C): :math:`(1 - s)\,t + s / C`.

    Szegedy et al. 2016, Sec. 7 (label-smoothing regularisation) with timm's convention: a one-hot
    row becomes :math:`s / C` off the label and :math:`1 - s + s / C` on it. ``smoothing = 0`` returns
    ``targets`` itself (no arithmetic, so the batch stays bit for bit the same).
    """
    if smoothing == 0:
        return targets
    return targets * (1.0 - smoothing) + smoothing / targets.shape[1]


def dense_targets(labels: torch.Tensor, batch_size: int, *, num_classes: int | None,
                  dtype: torch.dtype, check_values: bool = True) -> torch.Tensor:
    """Validate ``labels`` and return dense float targets that mix linearly.

    Zhang et al. 2018: mixup interpolates one-hot targets. Accepted forms:

    * integer class indices, shape (B,): one-hot (B, num_classes); ``num_classes`` is required and
      every label must lie in [0, num_classes);
    * dense or soft targets, shape (B, C), integer (one-hot) or floating: returned as floats;
    * regression targets, floating, shape (B,) or (B, d): returned unchanged (as floats).

    Floating (B,) labels are regression targets; with ``num_classes`` set they are refused, since
    they are most likely class indices stored as floats (convert with ``labels.long()``).
    Class indices may have any integer dtype (int8/16/32/64, uint8) and labels may be numpy arrays.
    ``check_values=False`` skips the checks that read label values (range, NaN), the Python branches
    ``torch.compile`` breaks its graph on.
    """
    check_values = check_bool("check_values", check_values)
    labels = as_label_tensor(labels)
    if labels.ndim == 0 or labels.ndim > 2:
        raise ValueError(
            f"labels must have shape (B,) (class indices or regression) or (B, C) (dense targets), "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != batch_size:
        raise ValueError(
            f"labels hold {labels.shape[0]} samples but inputs hold {batch_size}: the batch sizes must match"
        )
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, minimum=1)
    check_float_dtype("dtype", dtype)
    if labels.dtype == torch.bool:
        labels = labels.long()
    if labels.is_floating_point():
        if check_values and not bool(torch.isfinite(labels).all()):
            raise ValueError("labels contain NaN or Inf values")
        if labels.ndim == 1 and num_classes is not None:
            raise TypeError(
                f"labels of shape ({batch_size},) with floating dtype {labels.dtype} look like class indices "
                f"stored as floats; pass labels.long() for classification, or num_classes=None for regression"
            )
        if labels.ndim == 2 and num_classes is not None and labels.shape[1] != num_classes:
            raise ValueError(f"dense labels have {labels.shape[1]} columns but num_classes={num_classes}")
        return labels.to(dtype)
    if labels.is_complex():
        raise TypeError(f"labels must be integer or real, got dtype {labels.dtype}")
    if labels.ndim == 2:  # integer one-hot / multi-hot rows
        if num_classes is not None and labels.shape[1] != num_classes:
            hint = (f"; class indices must have shape ({batch_size},): pass labels.squeeze(1)"
                    if labels.shape[1] == 1 and num_classes > 1 else "")
            raise ValueError(f"integer dense labels have {labels.shape[1]} column(s) but num_classes={num_classes}"
                             + hint)
        return labels.to(dtype)
    if num_classes is None:
        raise ValueError(
            "integer class-index labels of shape (B,) need num_classes, e.g. Mixup(alpha=1.0, num_classes=10)"
        )
    if check_values:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"label {bad} is outside [0, {num_classes}) (num_classes={num_classes})")
    return one_hot(labels, num_classes, dtype)
