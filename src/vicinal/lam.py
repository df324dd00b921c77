"""Mixing coefficients: lambda ~ Beta(alpha, alpha), per batch or per sample, optionally truncated."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import betaincinv

from ._checks import check_bool, check_choice, check_float_dtype, check_generator, check_int, check_positive_float

LAM_MODES = ("batch", "sample")


def lam_from_uniforms(u: torch.Tensor, alpha: float | torch.Tensor,
                      truncate: bool | torch.Tensor = False) -> torch.Tensor:
    r"""Lambdas :math:`\lambda = F^{-1}_{\mathrm{Beta}(\alpha, \alpha)}(u)` of uniforms ``u`` in [0, 1) (float64, CPU).

    Inverse-CDF sampling of the mixup coefficient (Zhang et al. 2018, eq. 1; Baena et al. 2022,
    Definition II.1; Greenewald et al. 2023, Sec. 2; Carratino et al. 2020, Sec. 2 for the truncated
    :math:`\max(\lambda, 1 - \lambda)`). One uniform per lambda, so a batched trainer can turn
    every member's uniforms into lambdas in one call, with per-member ``alpha`` / ``truncate``
    broadcast against ``u``.

    The Beta(alpha, alpha) law is symmetric, so the quantile is taken on the lower half only
    (:math:`q = F^{-1}(\min(u, 1 - u)) \le 1/2`, then :math:`\lambda = q` or :math:`1 - q`): the small
    quantiles near 0 and 1 that alpha << 1 produces (down to 1e-300 for alpha = 1e-3) keep full
    relative precision instead of rounding to 1 - 1e-16. scipy's ``betaincinv`` (Boost) computes the
    quantile.
    """
    values = u.detach().to("cpu", torch.float64).numpy()
    a = torch.as_tensor(alpha, dtype=torch.float64).numpy()
    low = np.minimum(values, 1.0 - values)  # 1 - u is exact for u in [1/2, 1)
    q = betaincinv(a, a, low)
    lam = np.where(values <= 0.5, q, 1.0 - q)
    lam = np.where(torch.as_tensor(truncate).numpy(), 1.0 - q, lam)  # max(lam, 1 - lam) = 1 - q
    return torch.from_numpy(np.ascontiguousarray(lam, dtype=np.float64))


def draw_uniforms(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` float64 uniforms in [0, 1) from ``generator`` on its device (CPU when None): the one primitive every
    mixer draw goes through (randomness protocol 3, see docs/ARCHITECTURE.md)."""
    draw_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, dtype=torch.float64, generator=generator, device=draw_device)


def sample_lam(
    batch_size: int,
    alpha: float,
    *,
    lam_mode: str = "batch",
    truncate: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Draw mixing coefficients :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`.

    Zhang et al. 2018 (mixup, eq. 1); Baena et al. 2022, Definition II.1; Greenewald et al. 2023,
    Sec. 2 (one lambda per batch); Carratino et al. 2020, Sec. 2 (the truncated variant
    :math:`\max(\lambda, 1 - \lambda)` whose mean is :math:`\bar\theta`).

    Parameters
    ----------
    batch_size : int
        Number of samples B (>= 1).
    alpha : float
        Beta parameter (> 0). Small alpha puts lambda near 0 or 1.
    lam_mode : {"batch", "sample"}
        One lambda shared by the batch (the papers' default) or one per sample.
    truncate : bool
        Return :math:`\max(\lambda, 1 - \lambda)`, so each mixed point stays closer to its own sample.
    generator : torch.Generator, optional
        Source of randomness; draws happen on the generator's device (CPU when None), so the same
        seed gives the same lambdas whatever device the result is moved to.
    device, dtype
        Where the returned tensor lives and its dtype.

    Returns
    -------
    torch.Tensor
        Shape (B,), values in [0, 1]. For ``lam_mode="batch"`` all entries are equal.

    Notes
    -----
    Draws exactly ``n`` float64 uniforms from ``generator`` (``n = B`` per sample, 1 per batch) and
    maps them through the Beta quantile (:func:`lam_from_uniforms`), which stays exact for alpha as
    small as 1e-3, where the textbook Gamma ratio :math:`G_1 / (G_1 + G_2)` returns 0/0. A fixed
    number of uniforms per call is what lets a batched trainer draw a whole epoch at once.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    alpha = check_positive_float("alpha", alpha)
    check_choice("lam_mode", lam_mode, LAM_MODES)
    truncate = check_bool("truncate", truncate)
    generator = check_generator(generator)
    dtype = check_float_dtype("dtype", dtype)
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch.device or a device string such as 'cpu' or 'cuda:0', "
                             f"got {device!r}") from None
    draw_device = generator.device if generator is not None else torch.device("cpu")
    n = batch_size if lam_mode == "sample" else 1
    lam = lam_from_uniforms(draw_uniforms(n, generator), alpha, truncate)
    if n == 1:
        lam = lam.expand(batch_size)
    return lam.to(device=device or draw_device, dtype=dtype).contiguous()
