"""Mixing coefficients: lambda ~ Beta(alpha, alpha), per batch or per sample, optionally truncated."""

from __future__ import annotations

import torch

from ._checks import check_choice, check_generator, check_int, check_positive_float

LAM_MODES = ("batch", "sample")


def gamma_draws(n: int, alpha: float, *, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    r"""The raw random draws behind ``n`` lambdas, shape (4, n), float64, in the order they are consumed:
    :math:`G_1 \sim \Gamma(\alpha + 1)`, :math:`U_1`, :math:`G_2 \sim \Gamma(\alpha + 1)`, :math:`U_2`.

    Split from :func:`lam_from_draws` so a batched trainer can make only these calls per member (each
    member owns a generator) and turn all members' draws into lambdas at once.
    """
    draws = []
    for _ in range(2):
        draws.append(torch._standard_gamma(torch.full((n,), alpha + 1.0, dtype=torch.float64, device=device),
                                           generator=generator))
        draws.append(torch.rand(n, dtype=torch.float64, device=device, generator=generator))
    return torch.stack(draws)


def lam_from_draws(draws: torch.Tensor, alpha: float | torch.Tensor,
                   truncate: bool | torch.Tensor = False) -> torch.Tensor:
    r"""Lambdas from :func:`gamma_draws` (shape (4, ...)); ``alpha`` and ``truncate`` broadcast over ``...``.

    Uses :math:`G(a) = G(a + 1)\,U^{1/a}` (Marsaglia and Tsang's boost), so
    :math:`\log G(a) = \log G(a + 1) + \log(U) / a` never underflows, unlike :math:`G(a)` itself for
    :math:`a \ll 1`; then :math:`\lambda = \sigma(\log G_1 - \log G_2)`, and
    :math:`\max(\lambda, 1 - \lambda)` where truncated.
    """
    # 1 - rand lies in (0, 1]: its log is finite.
    log_g1 = torch.log(draws[0]) + torch.log(1.0 - draws[1]) / alpha
    log_g2 = torch.log(draws[2]) + torch.log(1.0 - draws[3]) / alpha
    lam = torch.sigmoid(log_g1 - log_g2)
    return torch.where(torch.as_tensor(truncate), torch.maximum(lam, 1.0 - lam), lam)


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
    Sampled as :math:`\lambda = \sigma(\log G_1 - \log G_2)` with :math:`G_i \sim \Gamma(\alpha, 1)`
    drawn in log space, which stays exact for alpha as small as 1e-3 where the textbook ratio
    :math:`G_1 / (G_1 + G_2)` returns 0/0.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    alpha = check_positive_float("alpha", alpha)
    check_choice("lam_mode", lam_mode, LAM_MODES)
    generator = check_generator(generator)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    n = batch_size if lam_mode == "sample" else 1
    lam = lam_from_draws(gamma_draws(n, alpha, generator=generator, device=draw_device), alpha, truncate)
    if n == 1:
        lam = lam.expand(batch_size)
    return lam.to(device=device or draw_device, dtype=dtype).contiguous()
