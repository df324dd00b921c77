"""MixedBatch: what a mixer returns, and the interpolation every mixer shares."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


def interpolate(values: torch.Tensor, partner_values: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    r"""Convex combination :math:`\lambda v_i + (1 - \lambda) v'_i` per sample (Zhang et al. 2018, eq. 1;
    Greenewald et al. 2023, displacement interpolation DI_lambda).

    Computed with ``torch.lerp`` so that a sample mixed with an identical partner, or with
    lambda = 1, comes back bit for bit (the exact limits of the papers hold exactly).
    ``lam`` has shape (B,) and is broadcast over the trailing dimensions of ``values``. The result has
    the memory format of ``values`` (channels_last in, channels_last out; see :func:`like_format`).
    """
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


@dataclass
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
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lam: torch.Tensor
    partner: torch.Tensor
    weights: torch.Tensor | None = None

    def mix(self, values: torch.Tensor, partner_values: torch.Tensor | None = None) -> torch.Tensor:
        """Mix any other per-sample tensor (a hidden representation, a mask) with the same lambdas and partners."""
        if values.shape[0] != self.lam.shape[0]:
            raise ValueError(f"values must have {self.lam.shape[0]} samples, got shape {tuple(values.shape)}")
        source = values if partner_values is None else partner_values
        return interpolate(values, source[self.partner.to(source.device)], self.lam.to(values.device))

    def to(self, *args, **kwargs) -> "MixedBatch":
        """Move every tensor (``Tensor.to`` arguments); the partner index keeps its integer dtype."""
        moved = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                moved[field.name] = None
            elif field.name == "partner":  # an index: move it, never cast it
                moved[field.name] = value.to(device=_device_of(args, kwargs, value),
                                             non_blocking=bool(kwargs.get("non_blocking", False)))
            else:
                moved[field.name] = value.to(*args, **kwargs)
        return replace(self, **moved)

    def pin_memory(self) -> "MixedBatch":
        """Pinned copy, so ``DataLoader(pin_memory=True)`` works with :class:`vicinal.MixCollate`."""
        return replace(self, **{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).pin_memory()
                                for f in fields(self)})

    def __len__(self) -> int:
        return self.inputs.shape[0]

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
