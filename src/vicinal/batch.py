"""MixedBatch: what a mixer returns, and the interpolation every mixer shares."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from ._checks import check_same_device, check_same_dtype, check_tensor


def interpolate(values: torch.Tensor, partner_values: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    r"""Convex combination :math:`\lambda v_i + (1 - \lambda) v'_i` per sample (Zhang et al. 2018, eq. 1;
    Greenewald et al. 2023, displacement interpolation DI_lambda).

    Computed with ``torch.lerp`` so that a sample mixed with an identical partner, or with
    lambda = 1, comes back bit for bit (the exact limits of the papers hold exactly).
    ``lam`` has shape (B,) and is broadcast over the trailing dimensions of ``values``; the three
    tensors share a device, ``values`` and ``partner_values`` a floating dtype (checked: metadata only).
    The result has the memory format of ``values`` (channels_last in, channels_last out; see :func:`like_format`).
    """
    check_tensor("values", values, floating=True)
    check_tensor("partner_values", partner_values)
    check_tensor("lam", lam)
    if partner_values.shape != values.shape:
        raise ValueError(f"partner_values has shape {tuple(partner_values.shape)}, expected {tuple(values.shape)} "
                         f"as values")
    check_same_dtype("partner_values", partner_values, "values", values)
    check_same_device("partner_values", partner_values, "values", values)
    if lam.shape != values.shape[:1]:
        raise ValueError(f"lam must have shape ({values.shape[0]},), one coefficient per sample, got {tuple(lam.shape)}")
    check_same_device("lam", lam, "values", values)
    weight = lam.to(values.dtype).reshape((-1,) + (1,) * (values.ndim - 1))
    return torch.lerp(like_format(partner_values, values), values, weight)


def memory_format_of(values: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` (4-D) or ``torch.channels_last_3d`` (5-D) when ``values`` is laid out so and not
    also plain contiguous, else ``torch.contiguous_format``."""
    if values.ndim == 4 and not values.is_contiguous() and values.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if values.ndim == 5 and not values.is_contiguous() and values.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format


def like_format(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` in the memory format of ``like``: a gathered partner batch (``index_select``) comes back
    NCHW, and an elementwise op on an NCHW and a channels_last operand would return NCHW, a silent slowdown
    for every channels_last convolutional model. No copy when ``like`` is plain contiguous."""
    fmt = memory_format_of(like)
    return values if fmt is torch.contiguous_format else values.contiguous(memory_format=fmt)


@dataclass(repr=False)
class MixedBatch:
    """A mixed batch: the inputs to feed the model and everything the loss needs.

    A plain (not frozen) dataclass, so frameworks that rebuild a batch field by field (Lightning's
    ``apply_to_collection`` in its precision plugins and device transfer) can move and cast it; the
    methods below never modify a batch in place.

    Attributes
    ----------
    inputs : Tensor (B, ...)
        Mixed inputs :math:`\\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{p(i)}`.
    targets : Tensor (B, C) or (B,) / (B, d)
        Mixed dense targets (soft class probabilities, or regression targets).
    lam : Tensor (B,)
        Mixing coefficient of each sample (all equal for one lambda per batch); for CutMix the share
        of the image left to the sample, which also weights its target.
    partner : LongTensor (B,)
        Index of each sample's partner, in the batch itself or in the partner batch.
    weights : Tensor (B,) or None
        Per-sample loss weights from a locality graph (Local Mixup eq. 2); None when every mixed
        sample counts fully (Mixup, k-Mixup).
    from_partner_batch : bool
        True when the partners came from a separate ``partner_batch``: ``partner`` then indexes that
        batch, and :meth:`mix` needs its values.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lam: torch.Tensor
    partner: torch.Tensor
    weights: torch.Tensor | None = None
    from_partner_batch: bool = False

    def mix(self, values: torch.Tensor, partner_values: torch.Tensor | None = None) -> torch.Tensor:
        """Mix any other per-sample tensor (a hidden representation, a mask) with the same lambdas and partners.

        ``partner_values`` are the same quantity for the partner batch; required when the batch was
        mixed with ``partner_batch=`` (the partners are rows of that batch, not of ``values``).
        """
        check_tensor("values", values)
        if values.ndim == 0 or values.shape[0] != self.lam.shape[0]:
            raise ValueError(f"values must have {self.lam.shape[0]} samples, got shape {tuple(values.shape)}")
        if partner_values is None:
            if self.from_partner_batch:
                raise ValueError("this batch was mixed with a partner_batch, so its partners are rows of that batch: "
                                 "pass partner_values (the same quantity for the partner batch)")
            partner_values = values
        check_tensor("partner_values", partner_values)
        if partner_values.ndim == 0 or partner_values.shape[0] != self.lam.shape[0]:
            raise ValueError(f"partner_values must have {self.lam.shape[0]} samples, got shape "
                             f"{tuple(partner_values.shape)}")
        source = partner_values.index_select(0, self.partner.to(partner_values.device))
        return interpolate(values, source, self.lam.to(values.device))

    def to(self, *args, **kwargs) -> "MixedBatch":
        """Move every tensor (``Tensor.to`` arguments); the partner index keeps its integer dtype."""
        moved = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, torch.Tensor):
                moved[field.name] = value
            elif field.name == "partner":  # an index: move it, never cast it
                moved[field.name] = value.to(device=_device_of(args, kwargs, value),
                                             non_blocking=bool(kwargs.get("non_blocking", False)))
            else:
                moved[field.name] = value.to(*args, **kwargs)
        return replace(self, **moved)

    def pin_memory(self) -> "MixedBatch":
        """Pinned copy, so ``DataLoader(pin_memory=True)`` works with :class:`vicinal.MixCollate`."""
        return replace(self, **{f.name: getattr(self, f.name).pin_memory()
                                for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)})

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __repr__(self) -> str:
        """Shapes, dtypes and the kept share, not the tensors' values (a CIFAR batch would print 15k characters)."""
        def describe(value):
            if not isinstance(value, torch.Tensor):
                return repr(value)
            return f"Tensor{tuple(value.shape)}, {str(value.dtype).replace('torch.', '')}, {value.device}"
        parts = [f"{f.name}={describe(getattr(self, f.name))}" for f in fields(self)]
        if isinstance(self.weights, torch.Tensor) and self.weights.numel():
            parts.append(f"kept={int((self.weights > 0).sum())}/{self.weights.numel()}")
        return f"MixedBatch({', '.join(parts)})"

    def __iter__(self):
        """``inputs, targets = mixer(x, y)``, as with timm's and torchvision's mixers.

        The unpacked pair drops ``weights``: right for Mixup, k-Mixup and CutMix (no weights), wrong for
        locality graphs (Local Mixup, eq. 2), whose loss must weight each sample: keep the batch and call
        :func:`vicinal.mixup_loss` on it there. ``len(batch)`` stays the number of samples.
        """
        return iter((self.inputs, self.targets))


def _device_of(args: tuple, kwargs: dict, like: torch.Tensor) -> torch.device:
    """The device named in ``Tensor.to``-style arguments (dtype-only calls keep the current device)."""
    if "device" in kwargs:
        return torch.device(kwargs["device"])
    for arg in args:
        if isinstance(arg, (str, torch.device)):
            return torch.device(arg)
        if isinstance(arg, torch.Tensor):
            return arg.device
    return like.device
