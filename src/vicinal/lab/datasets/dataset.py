"""The Dataset record: a train/test split of tensors, checked for dtype, shape and label range."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vicinal._checks import check_int


@dataclass(frozen=True, repr=False)
class Dataset:
    """A train/test split ready for training.

    Parameters
    ----------
    name : str
        Registry name the data came from (``"spirals"``, ``"cifar10"``, ...).
    x_train, x_test : torch.Tensor
        float32 inputs of shape ``(N, ...)``; both splits share the trailing shape.
    y_train, y_test : torch.Tensor
        int64 class indices in ``[0, num_classes)`` for classification, floating
        targets for regression.
    num_classes : int or None
        Number of classes, or ``None`` for regression.
    description : str
        One line saying what the data is and which paper it comes from.
    params : dict
        Every parameter used to build the data (defaults filled in, ``seed`` included),
        so that ``load_dataset(name, **params)`` rebuilds it.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int | None
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.ndim < 2:
                raise TypeError(f"x_{split} must be a float32 tensor of shape (N, ...), got {_describe(x)}")
            if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y_{split} must be a tensor with {x.shape[0]} rows like x_{split}, got {_describe(y)}"
                )
            if self.num_classes is None:
                if not y.is_floating_point():
                    raise TypeError(f"regression targets y_{split} must be floating, got dtype {y.dtype}")
            elif y.dtype != torch.int64 or y.ndim != 1:
                raise TypeError(f"class labels y_{split} must be an int64 tensor of shape (N,), got {_describe(y)}")
            elif y.numel() and not (0 <= int(y.min()) and int(y.max()) < self.num_classes):
                raise ValueError(
                    f"y_{split} holds labels in [{int(y.min())}, {int(y.max())}], "
                    f"expected [0, {self.num_classes}) for num_classes={self.num_classes}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"x_train and x_test must share their trailing shape, got "
                f"{tuple(self.x_train.shape[1:])} and {tuple(self.x_test.shape[1:])}"
            )
        if self.num_classes is not None:
            check_int("num_classes", self.num_classes, minimum=2)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(2,)`` for spirals or ``(3, 32, 32)`` for CIFAR."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
            f"num_classes={self.num_classes}, params={self.params})"
        )


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    return repr(type(value).__name__)
