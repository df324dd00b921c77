"""Argument validation shared by the library: every message names the bad value and what was expected."""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np
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


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a real bool (numpy's too); anything else (``"false"``, 0, None) raises.

    ``bool("false")`` is True: a flag read from a string or a number would silently mean the opposite.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a real number (bools and strings refused; NaN / Inf pass through)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    return float(value)


def check_tensor(name: str, value: Any, *, floating: bool = False) -> torch.Tensor:
    """Return ``value`` if it is a tensor (a floating one when ``floating``); say what to pass otherwise."""
    if not isinstance(value, torch.Tensor):
        hint = f"; for a model that returns a tuple pass the logits, e.g. {name}[0]" if isinstance(value, tuple) else ""
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}{hint}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {value.dtype}; convert it with {name}.float()")
    return value


def check_float_dtype(name: str, dtype: Any) -> torch.dtype:
    """Return ``dtype`` if it is a floating ``torch.dtype`` (an integer dtype would round every result to 0 or 1)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype (e.g. torch.float32), got {dtype!r}")
    return dtype


def check_same_device(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise ValueError naming both arguments when two tensors live on different devices."""
    if value.device != other.device:
        raise ValueError(
            f"{name} is on {value.device} but {other_name} is on {other.device}; move both to one device "
            f"(e.g. {name}.to({other_name}.device))"
        )


def check_same_dtype(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise TypeError naming both arguments when two tensors have different dtypes."""
    if value.dtype != other.dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but {other_name} has dtype {other.dtype}; convert one "
            f"(e.g. {name}.to({other_name}.dtype))"
        )


def probability_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a row of probabilities stored in ``dtype`` may sum: 1e-4, or 8 rounding units of the dtype.

    Rounding each probability of a row to float16 moves the row sum by up to half a unit (4.9e-4), a
    softmax evaluated in float16 by a few units; bfloat16 has 8 times coarser units. A fixed 1e-4
    would refuse correct half-precision model outputs.
    """
    return max(1e-4, 8 * torch.finfo(dtype).eps) if dtype.is_floating_point else 1e-4
