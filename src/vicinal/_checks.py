"""Argument validation shared by the library: every message names the bad value and what was expected."""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import torch


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a number >= 0 (``inf`` allowed), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return value


def check_fraction(name: str, value: Any, *, closed: bool = True) -> float:
    """Return ``value`` as a float in [0, 1] (``closed=False``: [0, 1)), else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not (0.0 <= value <= 1.0) or (not closed and value == 1.0):
        raise ValueError(f"{name} must lie in [0, 1{']' if closed else ')'}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (exact spelling), else raise listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_inputs(inputs: Any, *, name: str = "inputs", check_finite: bool = True) -> torch.Tensor:
    """Validate a batch of inputs: a floating tensor of shape (B, ...) with B >= 1 and finite values."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, ...), got {type(inputs).__name__}")
    if inputs.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension, got a 0-d tensor")
    if inputs.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(inputs.shape)}): nothing to mix")
    if not inputs.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor, got dtype {inputs.dtype}; convert it first, "
            f"e.g. {name}.float() / 255 for uint8 images"
        )
    if check_finite and not all_finite(inputs):
        raise ValueError(
            f"{name} contains NaN or Inf values; clean the data (or pass check_finite=False to skip this check)"
        )
    return inputs


def all_finite(values: torch.Tensor) -> bool:
    """True when no entry of ``values`` is NaN or +-Inf (an empty tensor is finite).

    One reduction pass without a boolean copy of the tensor: the minimum and the maximum are
    both finite exactly when every entry is, since NaN propagates through ``torch.aminmax`` and
    an infinite entry is an extreme. Several times faster than ``torch.isfinite(values).all()``
    on a CIFAR batch on the CPU.
    """
    if values.numel() == 0:
        return True
    low, high = torch.aminmax(values)
    return bool(torch.isfinite(torch.stack((low, high))).all())


def check_generator(generator: Any) -> torch.Generator | None:
    """Accept ``None`` or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator
