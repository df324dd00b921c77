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
    return torch.lerp(partner_values, values, weight)


@dataclass(frozen=True)
class MixedBatch:
    """A mixed batch: the inputs to feed the model and everything the loss needs.

    Attributes
    ----------
    inputs : Tensor (B, ...)
        Mixed inputs :math:`\\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{p(i)}`.
    targets : Tensor (B, C) or (B,) / (B, d)
        Mixed dense targets (soft class probabilities, or regression targets).
    lam : Tensor (B,)
        Mixing coefficient of each sample (all equal for one lambda per batch).
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
            elif field.name == "partner":
                moved[field.name] = value.to(device=_device_of(args, kwargs, value))
            else:
                moved[field.name] = value.to(*args, **kwargs)
        return replace(self, **moved)

    def pin_memory(self) -> "MixedBatch":
        """Pinned copy, so ``DataLoader(pin_memory=True)`` works with :class:`vicinal.MixCollate`."""
        return replace(self, **{f.name: getattr(self, f.name).pin_memory()
                                for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)})

    def __len__(self) -> int:
        return self.inputs.shape[0]


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
