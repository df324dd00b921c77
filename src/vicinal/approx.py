r"""The approximate mixup risk of Carratino et al. 2020 (Lemma 1, Theorem 2, Corollaries 1-3).

Theorem 1 writes the mixup risk as :math:`\frac1n\sum_i \mathbb{E}\,\ell(\tilde y_i + \varepsilon_i,
f(\tilde x_i + \delta_i))` on the modified data of eq. (5) with zero-mean perturbations (eq. 6).
A second-order Taylor expansion of :math:`G_i(x, y) = \ell(y, f(x))` at :math:`(\tilde x_i, \tilde y_i)`
(eq. 11) gives the approximate mixup risk (eq. 10 and 33)

.. math:: \mathcal{E}_Q = \frac1n \sum_i \Big[\ell(\tilde y_i, f(\tilde x_i))
          + \tfrac12 \big\langle \Sigma^{(i)}, \nabla^2_{(x,y)} G_i(\tilde x_i, \tilde y_i) \big\rangle\Big],

where :math:`\Sigma^{(i)}` is the joint covariance of :math:`(\delta_i, \varepsilon_i)` (Lemma 1, eq. 8).
Theorem 2 splits the second term into :math:`R_1 + R_2 + R_3 + R_4` (eq. 12).

Conventions
-----------
* The losses are the paper's: cross-entropy on logits :math:`\log\sum_c e^{u_c} - y^\top u` (eq. 3),
  logistic :math:`\log(1 + e^u) - y u` on one output (eq. 15) and squared error
  :math:`\frac12\|y - u\|^2` (eq. 3; note the 1/2, unlike :func:`vicinal.squared_error`).
* Minibatches: the partners :math:`x_j` of Lemma 1 are the samples of the batch, i.e. the empirical
  covariances :math:`\Sigma_{\tilde x\tilde x}, \Sigma_{\tilde x\tilde y}, \Sigma_{\tilde y\tilde y}` are
  second moments of the batch's modified data about the training means in ``stats``. This is an
  unbiased estimate of the full-data covariances; pass the whole training set as one batch to get
  the paper's quantities exactly.
* The model must treat samples independently (no batch-norm in training mode), since per-sample
  derivatives are read off derivatives of the batch sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import hessian, jacrev, vmap

from . import moments
from ._checks import check_choice, check_generator, check_int
from .rescale import TrainingStats, modified_data

LOSSES = ("cross_entropy", "logistic", "squared_error")
ESTIMATORS = ("exact", "stochastic")


# ----------------------------------------------------------------------------- losses and derivatives

def _loss_value(loss: str, targets: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Per-sample loss l(y, u) for (B, c) targets and outputs (eq. 3 and 15)."""
    if loss == "cross_entropy":
        return torch.logsumexp(outputs, dim=1) - (targets * outputs).sum(dim=1)
    if loss == "logistic":
        return (nn.functional.softplus(outputs) - targets * outputs).sum(dim=1)
    return 0.5 * (targets - outputs).pow(2).sum(dim=1)


def _loss_derivatives(loss: str, targets: torch.Tensor, outputs: torch.Tensor):
    r"""Closed-form :math:`\nabla_u \ell, \nabla^2_{uu}\ell, \nabla^2_{uy}\ell, \nabla^2_{yy}\ell`, shapes (B,c), (B,c,c) x3.

    Carratino et al. 2020, App. A.4 (cross-entropy: :math:`S(u) - y, H(u), -I, 0`), A.5 (logistic:
    :math:`s(u) - y, v(u), -1, 0`) and A.6 (squared error: :math:`u - y, I, -I, I`).
    """
    batch, c = outputs.shape
    eye = torch.eye(c, dtype=outputs.dtype, device=outputs.device).expand(batch, c, c)
    if loss == "cross_entropy":
        p = torch.softmax(outputs, dim=1)
        return p - targets, torch.diag_embed(p) - p[:, :, None] * p[:, None, :], -eye, torch.zeros_like(eye)
    if loss == "logistic":
        s = torch.sigmoid(outputs)
        return s - targets, (s * (1 - s))[:, :, None], -eye, torch.zeros_like(eye)
    return outputs - targets, eye, -eye, eye


# ----------------------------------------------------------------------------- Lemma 1

@dataclass(frozen=True)
class PerturbationCovariance:
    r"""Per-sample second moments of the mixup perturbations (Carratino et al. 2020, Lemma 1, eq. 8-9).

    Attributes
    ----------
    xx : Tensor (B, d, d)
        :math:`\Sigma^{(i)}_{\tilde x\tilde x} = \mathbb{E}\,\delta_i\delta_i^\top` (inputs flattened to d).
    xy : Tensor (B, d, c)
        :math:`\Sigma^{(i)}_{\tilde x\tilde y} = \mathbb{E}\,\delta_i\varepsilon_i^\top`.
    yy : Tensor (B, c, c)
        :math:`\Sigma^{(i)}_{\tilde y\tilde y} = \mathbb{E}\,\varepsilon_i\varepsilon_i^\top`.
    """

    xx: torch.Tensor
    xy: torch.Tensor
    yy: torch.Tensor

    def joint(self) -> torch.Tensor:
        """The (B, d + c, d + c) covariance of the stacked perturbation :math:`(\\delta_i, \\varepsilon_i)`."""
        top = torch.cat([self.xx, self.xy], dim=2)
        bottom = torch.cat([self.xy.transpose(1, 2), self.yy], dim=2)
        return torch.cat([top, bottom], dim=1)


@dataclass(frozen=True)
class _Prepared:
    x_tilde: torch.Tensor  # (B, ...) modified inputs
    y_tilde: torch.Tensor  # (B, c) modified targets
    centred: torch.Tensor  # (B, d + c): (x~_i - x_bar, y~_i - y_bar), flattened and stacked
    scale_own: float       # sigma / theta_bar: weight of the sample's own direction
    scale_pool: float      # gamma / theta_bar: weight of the batch's spread


def _prepare(x, y, stats, alpha) -> _Prepared:
    shrink = moments.theta_bar(alpha)
    sigma2 = moments.truncated_beta_variance(alpha)
    gamma2 = sigma2 + (1.0 - shrink) ** 2
    x_tilde, y_tilde = modified_data(x, y, stats=stats, theta_bar=shrink)
    batch = x.shape[0]
    y_tilde = y_tilde.reshape(batch, -1)
    x_mean = stats.x_mean.to(device=x.device, dtype=x.dtype).reshape(1, -1)
    y_mean = stats.y_mean.to(device=x.device, dtype=x.dtype).reshape(1, -1)
    centred = torch.cat([x_tilde.reshape(batch, -1) - x_mean, y_tilde - y_mean], dim=1)
    return _Prepared(x_tilde, y_tilde, centred, math.sqrt(sigma2) / shrink, math.sqrt(gamma2) / shrink)


def _joint_covariance(prep: _Prepared) -> torch.Tensor:
    """Lemma 1 (eq. 8): (sigma^2 a_i a_i^T + gamma^2 Sigma~) / theta_bar^2, with Sigma~ from the batch."""
    a = prep.centred
    pooled = a.T @ a / a.shape[0]
    return prep.scale_own ** 2 * a[:, :, None] * a[:, None, :] + prep.scale_pool ** 2 * pooled


def perturbation_covariance(x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                            stats: TrainingStats) -> PerturbationCovariance:
    r"""Covariances of the mixup perturbations :math:`(\delta_i, \varepsilon_i)` of eq. (6): Lemma 1, eq. (8).

    .. math:: \Sigma^{(i)}_{\tilde x\tilde x} = \frac{\sigma^2 (\tilde x_i - \bar x)(\tilde x_i - \bar x)^\top
              + \gamma^2 \Sigma_{\tilde x\tilde x}}{\bar\theta^2}, \quad \gamma^2 = \sigma^2 + (1 - \bar\theta)^2,

    and likewise for the :math:`\tilde x\tilde y` and :math:`\tilde y\tilde y` blocks, with
    :math:`\bar\theta, \sigma^2` from :mod:`vicinal.moments`. The batch plays the role of the training
    set (module docstring); the means come from ``stats``.

    Parameters
    ----------
    x : Tensor (B, ...)
        Original (unmodified) inputs; flattened to d features.
    y : Tensor
        Original targets: class indices (B,), dense (B, C) or regression targets, as for
        :func:`vicinal.rescale.modified_data`.
    alpha : float
        Mixup Beta parameter (> 0).
    stats : TrainingStats
        Training means from :func:`vicinal.rescale.fit_stats`.

    Returns
    -------
    PerturbationCovariance
    """
    prep = _prepare(x, y, stats, alpha)
    joint = _joint_covariance(prep)
    d = joint.shape[1] - prep.y_tilde.shape[1]
    return PerturbationCovariance(joint[:, :d, :d], joint[:, :d, d:], joint[:, d:, d:])


# ----------------------------------------------------------------------------- the objective (eq. 10 / 33)

def _outputs(model: nn.Module, inputs: torch.Tensor, c: int, loss: str) -> torch.Tensor:
    out = model(inputs)
    if out.ndim == 0 or out.shape[0] != inputs.shape[0] or out[0].numel() != c:
        raise ValueError(
            f"model outputs have shape {tuple(out.shape)} but the targets have {c} value(s) per sample "
            f"(stats.y_mean has {c} entries); for loss={loss!r} the model must output {c} value(s) per sample"
        )
    return out.reshape(inputs.shape[0], c)


def _check_common(model, loss, stats, y_tilde_width):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice("loss", loss, LOSSES)
    if not isinstance(stats, TrainingStats):
        raise TypeError(f"stats must be the TrainingStats returned by fit_stats, got {type(stats).__name__}")
    if loss == "logistic" and y_tilde_width != 1:
        raise ValueError(f"loss='logistic' needs one 0/1 target per sample (float labels of shape (B,)), "
                         f"got {y_tilde_width} per sample")
    if loss == "cross_entropy" and y_tilde_width < 2:
        raise ValueError("loss='cross_entropy' needs class targets (B, C) with C >= 2 (or index labels); "
                         "for one 0/1 target per sample use loss='logistic'")


def approximate_mixup_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                           stats: TrainingStats, loss: str = "cross_entropy", estimator: str = "exact",
                           n_samples: int = 1, generator: torch.Generator | None = None,
                           include_r2: bool = True, reduction: str = "mean") -> torch.Tensor:
    r"""Approximate mixup risk (Carratino et al. 2020, eq. 10 = eq. 12 of Theorem 2) as a trainable loss.

    Per sample, ERM on the modified data (eq. 5 and 20) plus the quadratic perturbation term of eq. (33),

    .. math:: \ell(\tilde y_i, f(\tilde x_i)) + \tfrac12 \big\langle \Sigma^{(i)}, \nabla^2 G_i \big\rangle
              = \ell(\tilde y_i, f(\tilde x_i)) + R_1 + R_2 + R_3 + R_4 \text{ (per sample)},

    with :math:`G_i(x, y) = \ell(y, f(x))` and :math:`\Sigma^{(i)}` the joint Lemma 1 covariance. For the
    three losses this is Corollary 1 (cross-entropy), 2 (logistic) and 3 (squared error); the split into
    :math:`R_1, \dots, R_4` is returned by :func:`mixup_regularizers`. Gradients flow to the model's
    parameters (second-order autograd).

    Estimators of the perturbation term:

    * ``"exact"``: the full joint Hessian :math:`\nabla^2 G_i` in :math:`(x, y)`, one Hessian-vector product
      per coordinate, i.e. d + c backward passes: for small inputs.
    * ``"stochastic"``: Hutchinson's estimator :math:`\tfrac12 z^\top \nabla^2 G_i z` with Gaussian
      :math:`z \sim \mathcal N(0, \Sigma^{(i)})`, drawn from the Lemma 1 structure without forming
      :math:`\Sigma^{(i)}`: :math:`z = (\sigma g_0 a_i + \gamma B^{-1/2} \sum_j g_j a_j)/\bar\theta` with
      :math:`a_j = (\tilde x_j - \bar x, \tilde y_j - \bar y)` and i.i.d. :math:`g \sim \mathcal N(0, 1)`.
      It is unbiased, :math:`\mathbb E[\tfrac12 z^\top H z] = \tfrac12\langle\Sigma, H\rangle`, with per-sample
      variance :math:`\tfrac{1}{2 m}\operatorname{tr}\big((H\Sigma)^2\big)` for ``n_samples`` = m (Gaussian
      quadratic forms). Cost: m Hessian-vector products, independent of d.

    Parameters
    ----------
    model : nn.Module
        Maps inputs (B, ...) to logits (B, C) (cross-entropy), one logit (B,) / (B, 1) (logistic) or
        predictions shaped like the targets (squared error). Samples must be processed independently.
    x : Tensor (B, ...)
        Original (unmodified) inputs.
    y : Tensor
        Original targets: class indices (B,) or dense (B, C) for cross-entropy; float 0/1 labels (B,)
        for logistic; regression targets for squared error.
    alpha : float
        Mixup Beta parameter (> 0).
    stats : TrainingStats
        Training means (:func:`vicinal.rescale.fit_stats`).
    loss : {"cross_entropy", "logistic", "squared_error"}
    estimator : {"exact", "stochastic"}
    n_samples : int
        Probe vectors per sample for ``"stochastic"`` (>= 1).
    generator : torch.Generator, optional
        Randomness of the stochastic probes (draws on the generator's device).
    include_r2 : bool
        Keep :math:`R_2`, the term with the model's Hessian :math:`\nabla^2 f` (default: the full eq. 12).
        The paper's LeNet experiment (Sec. 5, Fig. 2) drops it because it is not convex and made
        training unstable; ``False`` gives that objective (:math:`\ell + R_1 + R_3 + R_4`). Use
        ``False`` for training flexible models: with :math:`R_2` the objective can be unbounded below
        (a logistic random-features model on two moons, App. B.3 settings, drove it to about -1e3
        within 100 SGD epochs, while without :math:`R_2` it trained stably).
    reduction : {"mean", "none"}
        Batch mean, or the per-sample values (B,).

    Returns
    -------
    Tensor
        Scalar, or (B,) for ``reduction="none"``.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    check_choice("reduction", reduction, ("mean", "none"))
    n_samples = check_int("n_samples", n_samples, minimum=1)
    generator = check_generator(generator)
    if not isinstance(include_r2, bool):
        raise TypeError(f"include_r2 must be True or False, got {include_r2!r}")
    prep = _prepare(x, y, stats, alpha)
    _check_common(model, loss, stats, prep.y_tilde.shape[1])

    # Input derivatives need autograd even when the caller evaluates under torch.no_grad().
    with torch.enable_grad():
        x_var = prep.x_tilde.detach().requires_grad_(True)
        y_var = prep.y_tilde.detach().requires_grad_(True)
        outputs = _outputs(model, x_var, y_var.shape[1], loss)
        per_sample = _loss_value(loss, y_var, outputs)
        dropped = None if include_r2 else _output_curvature_product(model, loss, prep, x_var, outputs)
        hessian_times = _hessian_vector_product(per_sample, x_var, y_var, dropped)
        if estimator == "exact":
            penalty = _exact_penalty(prep, hessian_times)
        else:
            penalty = _stochastic_penalty(prep, hessian_times, n_samples, generator)
        total = per_sample + penalty
    return total.mean() if reduction == "mean" else total


def _input_grad(value: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    """d value / d wrt with a graph; zeros where ``value`` does not depend on ``wrt``."""
    if not value.requires_grad:
        return torch.zeros_like(wrt)
    grad, = torch.autograd.grad(value, wrt, create_graph=True, allow_unused=True)
    return torch.zeros_like(wrt) if grad is None else grad


def _hessian_vector_product(per_sample, x_var, y_var, dropped=None):
    """Return v -> per-sample H_i v_i, H_i the joint (x, y) Hessian of l(y, f(x)) at sample i.

    The batch sum separates over samples, so one double-backward pass serves the whole batch;
    ``create_graph=True`` keeps the result differentiable in the model's parameters. ``dropped``
    (a product of the same kind) is subtracted from H_i, to leave out R2.
    """
    batch = len(x_var)
    grad = torch.cat([_input_grad(per_sample.sum(), x_var).reshape(batch, -1),
                      _input_grad(per_sample.sum(), y_var)], dim=1)

    def hessian_times(probe: torch.Tensor) -> torch.Tensor:
        inner = (grad * probe).sum()
        product = torch.cat([_input_grad(inner, x_var).reshape(batch, -1), _input_grad(inner, y_var)], dim=1)
        return product if dropped is None else product - dropped(probe)

    return hessian_times


def _output_curvature_product(model, loss, prep: _Prepared, x_var, outputs):
    r"""Return v -> per-sample :math:`(\sum_k (\ell_u)_k \nabla^2 f_k) v_x`, the matrix of R2 (Theorem 2).

    :math:`\ell_u` comes from a second forward pass on a copy of the inputs, so it depends on the
    parameters but is constant in x: the x-Hessian of :math:`\ell_u^\top f(x)` is then exactly R2's matrix.
    """
    batch, c = outputs.shape
    with_params_only = _outputs(model, prep.x_tilde.detach(), c, loss)
    weights = _loss_derivatives(loss, prep.y_tilde.detach(), with_params_only)[0]
    grad = _input_grad((weights * outputs).sum(), x_var).reshape(batch, -1)
    d = grad.shape[1]

    def product(probe: torch.Tensor) -> torch.Tensor:
        hx = _input_grad((grad * probe[:, :d]).sum(), x_var).reshape(batch, -1)
        return torch.cat([hx, torch.zeros_like(probe[:, d:])], dim=1)

    return product


def _exact_penalty(prep: _Prepared, hessian_times) -> torch.Tensor:
    """1/2 <Sigma_i, H_i> column by column: one Hessian-vector product per coordinate."""
    covariance = _joint_covariance(prep)
    penalty = covariance.new_zeros(covariance.shape[0])
    for k in range(covariance.shape[1]):
        basis = torch.zeros_like(prep.centred)
        basis[:, k] = 1.0
        penalty = penalty + 0.5 * (covariance[:, :, k] * hessian_times(basis)).sum(dim=1)
    return penalty


def _stochastic_penalty(prep: _Prepared, hessian_times, n_samples: int, generator) -> torch.Tensor:
    """Hutchinson: mean of 1/2 z^T H_i z over Gaussian z ~ N(0, Sigma_i) built from Lemma 1's structure."""
    a = prep.centred
    batch = a.shape[0]
    draw_device = generator.device if generator is not None else torch.device("cpu")
    penalty = a.new_zeros(batch)
    for _ in range(n_samples):
        g_own = torch.randn(batch, 1, generator=generator, device=draw_device, dtype=torch.float64).to(a)
        g_pool = torch.randn(batch, batch, generator=generator, device=draw_device, dtype=torch.float64).to(a)
        # Cov = sigma^2 a_i a_i^T / theta_bar^2 + gamma^2 (A^T A / B) / theta_bar^2: Lemma 1, eq. (8).
        probe = prep.scale_own * g_own * a + prep.scale_pool * (g_pool @ a) / math.sqrt(batch)
        penalty = penalty + 0.5 * (probe * hessian_times(probe)).sum(dim=1) / n_samples
    return penalty


# ----------------------------------------------------------------------------- Theorem 2's split

@dataclass(frozen=True)
class MixupRegularizers:
    r"""Batch means of the terms of Theorem 2 (Carratino et al. 2020, eq. 12): ``erm + r1 + r2 + r3 + r4``.

    Attributes
    ----------
    erm : Tensor
        :math:`\frac1n\sum_i \ell(\tilde y_i, f(\tilde x_i))`, ERM on modified data (eq. 20).
    r1 : Tensor
        Jacobian penalty: distance of :math:`\nabla f(\tilde x_i)` to :math:`J^{(i)}` (eq. 13) weighted by
        :math:`\nabla^2_{uu}\ell` and :math:`\Sigma^{(i)}_{\tilde x\tilde x}`.
    r2 : Tensor
        Curvature term :math:`\frac12\langle\Sigma^{(i)}_{\tilde x\tilde x}, \nabla_u\ell\,\nabla^2 f\rangle`.
    r3 : Tensor
        :math:`-\frac12\|\Sigma^{(i)}_{\tilde x\tilde y}\nabla^2_{yu}\ell\,(\nabla^2_{uu}\ell)^{-1/2}\|^2_{(\Sigma^{(i)}_{\tilde x\tilde x})^{-1}}` (<= 0).
    r4 : Tensor
        :math:`\frac12\langle\Sigma^{(i)}_{\tilde y\tilde y}, \nabla^2_{yy}\ell\rangle` (0 for cross-entropy and
        logistic, a constant for squared error).
    """

    erm: torch.Tensor
    r1: torch.Tensor
    r2: torch.Tensor
    r3: torch.Tensor
    r4: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """The approximate mixup risk, eq. (12)."""
        return self.erm + self.r1 + self.r2 + self.r3 + self.r4


def mixup_regularizers(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                       stats: TrainingStats, loss: str = "cross_entropy") -> MixupRegularizers:
    r"""The four regularisers of Theorem 2 (Carratino et al. 2020, eq. 12-13; Corollaries 1-3).

    Per sample, with :math:`\ell_u, \ell_{uu}, \ell_{uy}, \ell_{yy}` the loss derivatives of App. A.4-A.6 at
    :math:`(\tilde y_i, f(\tilde x_i))`, :math:`A = \Sigma^{(i)}_{\tilde x\tilde x}` and
    :math:`B = -\ell_{uy}\Sigma^{(i)}_{\tilde y\tilde x}`:

    .. math:: J^{(i)} = \ell_{uu}^{-1} B A^{-1}, \quad
              R_1 = \tfrac12\langle A, (\nabla f - J)^\top \ell_{uu} (\nabla f - J)\rangle, \quad
              R_2 = \tfrac12 \textstyle\sum_k (\ell_u)_k \langle A, \nabla^2 f_k\rangle,

    .. math:: R_3 = -\tfrac12 \langle A^{-1}, B^\top \ell_{uu}^{-1} B\rangle, \quad
              R_4 = \tfrac12\langle\Sigma^{(i)}_{\tilde y\tilde y}, \ell_{yy}\rangle .

    Inverses are Moore-Penrose pseudo-inverses. This is a choice the paper leaves open: the softmax
    Hessian :math:`H(u)` of Corollary 1 is always singular (its null space is :math:`\mathbf 1`), and
    :math:`A` is singular when a batch has fewer samples than input features. The pseudo-inverse keeps
    eq. (12) exact because :math:`B`'s rows lie in the range of :math:`A` (a property of any joint
    covariance) and, for probability targets, its columns are orthogonal to :math:`\mathbf 1`; hence
    ``erm + r1 + r2 + r3 + r4`` equals :func:`approximate_mixup_loss` (tested). :math:`R_1` and :math:`R_3`
    separately grow without bound as predictions become confident (:math:`\ell_{uu} \to 0`); their
    sum does not.

    Computed in float64 with ``torch.func`` per-sample Jacobians and Hessians of the model (the model
    must support ``vmap``); meant for small inputs and for diagnostics (Fig. 3 of the paper).

    Parameters
    ----------
    model, x, y, alpha, stats, loss
        As in :func:`approximate_mixup_loss`.

    Returns
    -------
    MixupRegularizers
        Batch means.
    """
    prep = _prepare(x, y, stats, alpha)
    _check_common(model, loss, stats, prep.y_tilde.shape[1])
    c = prep.y_tilde.shape[1]
    x_shape = prep.x_tilde.shape[1:]

    def single(flat_x: torch.Tensor) -> torch.Tensor:
        return _outputs(model, flat_x.reshape(1, *x_shape).to(prep.x_tilde.dtype), c, loss).reshape(c).double()

    flat = prep.x_tilde.reshape(len(prep.x_tilde), -1).double()
    outputs = vmap(single)(flat)                    # (B, c)
    jac = vmap(jacrev(single))(flat)                # (B, c, d)
    hess = vmap(hessian(single))(flat)              # (B, c, d, d)
    targets = prep.y_tilde.double()
    erm = _loss_value(loss, targets, outputs)
    l_u, l_uu, l_uy, l_yy = _loss_derivatives(loss, targets, outputs)

    covariance = _joint_covariance(prep).double()
    d = flat.shape[1]
    a_mat, s_xy, s_yy = covariance[:, :d, :d], covariance[:, :d, d:], covariance[:, d:, d:]
    a_pinv = torch.linalg.pinv(a_mat, hermitian=True)
    l_uu_pinv = torch.linalg.pinv(l_uu, hermitian=True)
    b_mat = -l_uy @ s_xy.transpose(1, 2)            # (B, c, d)
    j_mat = l_uu_pinv @ b_mat @ a_pinv              # eq. (13)
    gap = jac - j_mat
    r1 = 0.5 * _trace(a_mat @ gap.transpose(1, 2) @ l_uu @ gap)
    r2 = 0.5 * torch.einsum("bk,bij,bkij->b", l_u, a_mat, hess)
    r3 = -0.5 * _trace(a_pinv @ b_mat.transpose(1, 2) @ l_uu_pinv @ b_mat)
    r4 = 0.5 * (s_yy * l_yy).sum(dim=(1, 2))
    return MixupRegularizers(erm.mean(), r1.mean(), r2.mean(), r3.mean(), r4.mean())


def _trace(m: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(m, dim1=1, dim2=2).sum(dim=1)
