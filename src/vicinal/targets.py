"""Labels to dense targets: class indices become one-hot vectors; dense and regression targets are kept."""

from __future__ import annotations

import torch

from ._checks import check_float_dtype, check_int


def dense_targets(labels: torch.Tensor, batch_size: int, *, num_classes: int | None,
                  dtype: torch.dtype) -> torch.Tensor:
    """Validate ``labels`` and return dense float targets that mix linearly.

    Zhang et al. 2018: mixup interpolates one-hot targets. Accepted forms:

    * integer class indices, shape (B,): one-hot (B, num_classes); ``num_classes`` is required and
      every label must lie in [0, num_classes);
    * dense or soft targets, shape (B, C), integer (one-hot) or floating: returned as floats;
    * regression targets, floating, shape (B,) or (B, d): returned unchanged (as floats).

    Floating (B,) labels are regression targets; with ``num_classes`` set they are refused, since
    they are most likely class indices stored as floats (convert with ``labels.long()``).
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
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
        if not bool(torch.isfinite(labels).all()):
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
            raise ValueError(f"dense labels have {labels.shape[1]} columns but num_classes={num_classes}")
        return labels.to(dtype)
    if num_classes is None:
        raise ValueError(
            "integer class-index labels of shape (B,) need num_classes, e.g. Mixup(alpha=1.0, num_classes=10)"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(f"label {bad} is outside [0, {num_classes}) (num_classes={num_classes})")
    return torch.nn.functional.one_hot(labels, num_classes).to(dtype)
