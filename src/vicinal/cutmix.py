r"""CutMix's interpolation (Yun et al. 2019): paste a box of the partner image, weight targets by area.

A second way to combine a sample with its partner, next to the linear interpolation of
:func:`vicinal.interpolate`. For a lambda :math:`\lambda` the box has sides
:math:`\lfloor H\sqrt{1-\lambda}\rfloor \times \lfloor W\sqrt{1-\lambda}\rfloor` (Yun et al. 2019,
Sec. 3.1: area ratio :math:`1 - \lambda`), a centre uniform over the pixels (the box spans
:math:`[c - \lfloor h/2 \rfloor, c + \lceil h/2 \rceil)`, exactly h pixels before clipping), and is clipped to the
image, so its pasted area can be smaller than :math:`1 - \lambda`. The target weight is corrected to
the exact pasted share, :math:`\lambda_{\mathrm{eff}} = 1 - |\text{box}| / (H W)`. The box covers the
last two dimensions and runs through every leading one (channels).

Randomness: two float64 uniforms per box (row centre, column centre), turned into pixels by
:math:`\lfloor u H \rfloor` and :math:`\lfloor u W \rfloor`.
"""

from __future__ import annotations

import torch

from .batch import like_format

INTERPOLATIONS = ("linear", "cutmix")


def check_spatial(inputs: torch.Tensor, name: str = "inputs") -> tuple[int, int]:
    """(H, W) of a batch with two spatial dimensions (B, ..., H, W), else a ValueError naming the shape."""
    if inputs.ndim < 3:
        raise ValueError(
            f"CutMix pastes a box over the last two dimensions (H, W), so {name} need shape (B, H, W) or "
            f"(B, C, H, W); got shape {tuple(inputs.shape)}. Use interpolation='linear' for vectors."
        )
    return int(inputs.shape[-2]), int(inputs.shape[-1])


def boxes_from_uniforms(lam: torch.Tensor, centres: torch.Tensor, height: int, width: int) -> torch.Tensor:
    r"""CutMix boxes (n, 4) = (top, bottom, left, right), half-open, from lambdas (n,) and uniforms (n, 2).

    Yun et al. 2019, Sec. 3.1: side :math:`h = \lfloor H \sqrt{1-\lambda}\rfloor`, centre
    :math:`c = \lfloor u H \rfloor`, rows :math:`[\max(c - \lfloor h/2 \rfloor, 0), \min(c + \lceil h/2 \rceil, H))`;
    likewise for columns. Computed in float64 on the CPU.
    """
    ratio = torch.sqrt(1.0 - lam.detach().cpu().to(torch.float64).clamp(0.0, 1.0))
    u = centres.detach().cpu().to(torch.float64)
    sides = torch.tensor([height, width], dtype=torch.float64)
    side = torch.floor(sides * ratio.unsqueeze(1)).to(torch.long)
    centre = torch.floor(u * sides).to(torch.long).minimum(sides.to(torch.long) - 1)
    low = (centre - side // 2).clamp(min=0)
    high = torch.minimum(centre + (side + 1) // 2, sides.to(torch.long))
    return torch.stack((low[:, 0], high[:, 0], low[:, 1], high[:, 1]), dim=1)


def box_lam(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    r""":math:`\lambda_{\mathrm{eff}} = 1 - |\text{box}| / (H W)` per box (float64): the share of the image that
    stays the sample's own, the exact weight of its target (Yun et al. 2019, eq. 1 with the clipped box)."""
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    return 1.0 - area.to(torch.float64) / (height * width)


def box_masks(boxes: torch.Tensor, height: int, width: int, ndim: int, device: torch.device) -> torch.Tensor:
    """Boolean masks (n, 1, ..., 1, H, W) of ``ndim`` dimensions, True inside each box."""
    boxes = boxes.to(device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= boxes[:, 0:1]) & (rows < boxes[:, 1:2])
    in_cols = (cols >= boxes[:, 2:3]) & (cols < boxes[:, 3:4])
    mask = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)
    return mask.reshape((mask.shape[0],) + (1,) * (ndim - 3) + (height, width))


def paste_boxes(inputs: torch.Tensor, partner_inputs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """CutMix's mixed images (Yun et al. 2019, eq. 1): ``partner_inputs`` inside the masks, ``inputs`` elsewhere.

    One box (masks of batch size 1) is shared by the batch; otherwise one box per sample. The result
    keeps the memory format of ``inputs``; ``inputs`` is not modified.
    """
    return torch.where(masks, like_format(partner_inputs, inputs), inputs)
