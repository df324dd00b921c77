r"""Classification and calibration metrics: error rate, NLL, ECE, MCE, adaptive ECE, mean confidence, reliability data.

Carratino et al. 2020, Sec. 5 (Fig. 4, 5, 7, 9; Table 2) report test accuracy, cross-entropy,
expected calibration error (ECE) and histograms of the confidence of predictions. The binned
estimators follow Guo et al. 2017 ("On calibration of modern neural networks", eq. 3 and 5):
confidence is the top-class probability, bin :math:`b` holds the samples whose confidence lies
in :math:`((b-1)/M, b/M]`, and

.. math:: \mathrm{ECE} = \sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|, \qquad
          \mathrm{MCE} = \max_{b:\,n_b > 0} |\mathrm{acc}_b - \mathrm{conf}_b| .

Conventions shared by every function here:

* ``predictions`` has shape (N, C): probabilities by default, or logits with ``from_logits=True``
  (softmax is applied). Probabilities must be non-negative with rows summing to 1 within 1e-4, or
  within 8 rounding units of a half-precision dtype (float16: 7.8e-3, bfloat16: 6.3e-2), so
  probabilities stored in float16 pass; anything else raises ``ValueError`` (no silent softmax).
* ``targets`` are class indices (N,) or dense / soft targets (N, C) (probability rows, checked like
  ``predictions``). For accuracy a soft target counts as its argmax (the first one on ties); the
  NLL of a soft target is the cross-entropy :math:`-\sum_c t_c \log p_c`.
* Scalars come back as Python floats.

:class:`Calibration` (module ``streaming``) accumulates batches and computes these metrics on the whole
set, reduced across ranks under ``torch.distributed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_bool, check_int, check_same_device, probability_tolerance
from .targets import as_label_tensor


def _probabilities(predictions: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Validate (N, C) predictions and return float64 probabilities."""
    if not isinstance(predictions, torch.Tensor):
        raise TypeError(f"predictions must be a torch.Tensor of shape (N, C), got {type(predictions).__name__}")
    if predictions.ndim != 2 or predictions.shape[0] == 0 or predictions.shape[1] < 2:
        raise ValueError(f"predictions must have shape (N, C) with N >= 1 and C >= 2, got {tuple(predictions.shape)}")
    if not predictions.is_floating_point():
        raise TypeError(f"predictions must be floating point, got dtype {predictions.dtype}")
    check_bool("from_logits", from_logits)
    values = predictions.detach().to(torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("predictions contain NaN or Inf values")
    if from_logits:
        return torch.softmax(values, dim=1)
    _check_probability_rows(values, probability_tolerance(predictions.dtype), "predictions must be probabilities",
                            hint=". Pass from_logits=True for raw model outputs")
    return values


def _check_probability_rows(values: torch.Tensor, tolerance: float, what: str, hint: str = "") -> None:
    """Raise ValueError, starting with `what` and ending with `hint`, unless every row is a probability vector
    (finite, non-negative, summing to 1 within ``tolerance``)."""
    worst_sum = values.sum(dim=1).sub(1.0).abs().max().item()
    if not bool((values >= 0).all()) or not worst_sum <= tolerance:  # NaN fails both
        raise ValueError(
            f"{what} (finite, non-negative, rows summing to 1 within {tolerance:.2g}); "
            f"got min {values.min().item():.4g} and a row sum off by {worst_sum:.4g}{hint}"
        )


def _dense_targets(targets: torch.Tensor, shape: tuple[int, int], device_of: torch.Tensor) -> torch.Tensor:
    """Validate index (N,) or dense (N, C) targets (on the device of ``device_of``, the predictions) and return
    float64 (N, C) target distributions."""
    n, c = shape
    targets = as_label_tensor(targets, "targets")
    check_same_device("targets", targets, "predictions", device_of)
    if targets.ndim == 1 and not targets.is_floating_point() and targets.dtype != torch.bool:
        if targets.shape[0] != n:
            raise ValueError(f"targets hold {targets.shape[0]} labels but predictions hold {n} rows")
        if bool((targets < 0).any()) or bool((targets >= c).any()):
            raise ValueError(f"class-index targets must lie in [0, {c}), got values in "
                             f"[{targets.min().item()}, {targets.max().item()}]")
        return torch.nn.functional.one_hot(targets.long(), c).to(torch.float64)
    if targets.shape != (n, c):
        raise ValueError(f"targets must be class indices of shape ({n},) (integer dtype) or dense targets of "
                         f"shape ({n}, {c}); got shape {tuple(targets.shape)} and dtype {targets.dtype}")
    dense = targets.detach().to(torch.float64)
    _check_probability_rows(dense, probability_tolerance(targets.dtype), "dense targets must be probability vectors")
    return dense


def _confidence_and_correct(predictions, targets, from_logits):
    probs = _probabilities(predictions, from_logits)
    dense = _dense_targets(targets, tuple(probs.shape), predictions)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == dense.argmax(dim=1)).to(torch.float64)
    return confidence.cpu().numpy(), correct.cpu().numpy()


def mean_confidence(predictions: torch.Tensor, *, from_logits: bool = False) -> float:
    r"""Mean top-class probability :math:`\frac1N \sum_i \max_c p_{ic}` (the "avg. confidence" of Guo et al. 2017).

    Carratino et al. 2020, Fig. 7 and 9: ERM predicts with high confidence, label smoothing and Mixup
    with less. :func:`reliability_data` gives the histogram of the same confidences.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    from_logits : bool
        Apply softmax to ``predictions`` first.

    Returns
    -------
    float
        Mean confidence in [1 / C, 1].
    """
    return float(_probabilities(predictions, from_logits).max(dim=1).values.mean())


def error_rate(predictions: torch.Tensor, targets: torch.Tensor, *, from_logits: bool = False) -> float:
    """Fraction of samples whose top class differs from the target class.

    Carratino et al. 2020, Sec. 5 (test accuracy = 1 - error rate). Soft targets count as their argmax.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets.
    from_logits : bool
        Apply softmax to ``predictions`` first.

    Returns
    -------
    float
        Error rate in [0, 1].
    """
    _, correct = _confidence_and_correct(predictions, targets, from_logits)
    return float(1.0 - correct.mean())


def nll(predictions: torch.Tensor, targets: torch.Tensor, *, from_logits: bool = False) -> float:
    r"""Mean negative log-likelihood (test cross-entropy) :math:`-\frac1N\sum_i \sum_c t_{ic} \log p_{ic}`.

    Carratino et al. 2020, Sec. 5 ("test cross-entropy loss", eq. 3 with a one-hot :math:`y`). With
    ``from_logits=True`` it uses ``log_softmax`` (stable for large logits). A zero probability on a
    target class gives ``inf``: that is the true value and it is not clipped away; zero-weight
    classes of a soft target contribute 0.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets.
    from_logits : bool
        Treat ``predictions`` as logits.

    Returns
    -------
    float
        Mean NLL in nats.
    """
    probs = _probabilities(predictions, from_logits)
    dense = _dense_targets(targets, tuple(probs.shape), predictions)
    return float(_per_sample_nll(predictions, probs, dense, from_logits).mean())


def _per_sample_nll(predictions, probs, dense, from_logits):
    """Cross-entropy of each row (float64): log_softmax of the logits, or xlogy of the probabilities."""
    if from_logits:
        log_probs = torch.log_softmax(predictions.detach().to(torch.float64), dim=1)
        return -(dense * log_probs).sum(dim=1)
    return -torch.special.xlogy(dense, probs).sum(dim=1)


@dataclass(frozen=True)
class ReliabilityData:
    """Per-bin statistics of a reliability diagram with equal-width confidence bins.

    Guo et al. 2017, Sec. 2 (reliability diagrams); Carratino et al. 2020, Fig. 7 and 9 (confidence
    histograms). Arrays of length ``n_bins`` unless stated; empty bins hold NaN confidence and accuracy.

    Attributes
    ----------
    bin_edges : ndarray (n_bins + 1,)
        ``linspace(0, 1, n_bins + 1)``; bin b is ``(bin_edges[b], bin_edges[b + 1]]`` (the first bin
        also holds confidence 0).
    confidence : ndarray
        Mean top-class probability of the samples in each bin.
    accuracy : ndarray
        Fraction of correct top-class predictions in each bin.
    counts : ndarray of int
        Number of samples per bin.
    histogram : ndarray
        ``counts / counts.sum()``: the confidence histogram as fractions of the samples.
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    histogram: np.ndarray


def _equal_width_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" puts a confidence equal to an edge in the bin that ends there: bins are (lo, hi].
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)


def _binned(confidence: np.ndarray, correct: np.ndarray, bins: np.ndarray, n_bins: int):
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
        acc = np.bincount(bins, weights=correct, minlength=n_bins) / counts
    return conf, acc, counts


def _calibration_gaps(conf: np.ndarray, acc: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of the samples (n_b / N) and gap |accuracy - confidence| of each non-empty bin."""
    filled = counts > 0
    return counts[filled] / counts.sum(), np.abs(acc[filled] - conf[filled])


def _expected_gap(conf: np.ndarray, acc: np.ndarray, counts: np.ndarray) -> float:
    """The sum of n_b / N * |accuracy - confidence| over the non-empty bins: the ECE of these bins."""
    shares, gaps = _calibration_gaps(conf, acc, counts)
    return float(np.sum(shares * gaps))


def reliability_data(predictions: torch.Tensor, targets: torch.Tensor, *, n_bins: int = 15,
                     from_logits: bool = False) -> ReliabilityData:
    """Per-bin confidence, accuracy and counts, plus the confidence histogram (equal-width bins).

    Guo et al. 2017, Sec. 2; Carratino et al. 2020, Fig. 7 and 9. See :class:`ReliabilityData`.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets (argmax used for accuracy).
    n_bins : int
        Number of equal-width bins on [0, 1] (>= 1).
    from_logits : bool
        Apply softmax to ``predictions`` first.
    """
    n_bins = check_int("n_bins", n_bins, minimum=1)
    confidence, correct = _confidence_and_correct(predictions, targets, from_logits)
    conf, acc, counts = _binned(confidence, correct, _equal_width_bins(confidence, n_bins), n_bins)
    return ReliabilityData(np.linspace(0.0, 1.0, n_bins + 1), conf, acc, counts, counts / counts.sum())


def ece(predictions: torch.Tensor, targets: torch.Tensor, *, n_bins: int = 15, from_logits: bool = False) -> float:
    r"""Expected calibration error with ``n_bins`` equal-width bins and the l1 norm.

    Guo et al. 2017, eq. (3) (the "ECE" of Carratino et al. 2020, Fig. 4-6, Table 2):
    :math:`\sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|` over bins :math:`((b-1)/M, b/M]`.

    Differs from torchmetrics ``MulticlassCalibrationError(norm="l1")`` only for confidences that fall
    exactly on a bin edge: torchmetrics uses bins :math:`[(b-1)/M, b/M)` plus an extra bin for
    confidence exactly 1, and computes in float32; here bins are closed on the right and the
    arithmetic is float64. Elsewhere the two agree (tested).

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets (argmax used for accuracy).
    n_bins : int
        Number of equal-width bins (>= 1); 15 as in torchmetrics and most papers.
    from_logits : bool
        Apply softmax to ``predictions`` first.

    Returns
    -------
    float
        ECE in [0, 1].
    """
    data = reliability_data(predictions, targets, n_bins=n_bins, from_logits=from_logits)
    return _expected_gap(data.confidence, data.accuracy, data.counts)


def mce(predictions: torch.Tensor, targets: torch.Tensor, *, n_bins: int = 15, from_logits: bool = False) -> float:
    r"""Maximum calibration error: :math:`\max_b |\mathrm{acc}_b - \mathrm{conf}_b|` over non-empty bins.

    Guo et al. 2017, eq. (5), with the equal-width bins of :func:`ece`. Empty bins are skipped
    (torchmetrics ``norm="max"`` scores them 0, which never changes the maximum). Same edge
    convention as :func:`ece`.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets (argmax used for accuracy).
    n_bins : int
        Number of equal-width bins (>= 1).
    from_logits : bool
        Apply softmax to ``predictions`` first.

    Returns
    -------
    float
        MCE in [0, 1].
    """
    data = reliability_data(predictions, targets, n_bins=n_bins, from_logits=from_logits)
    _, gaps = _calibration_gaps(data.confidence, data.accuracy, data.counts)
    return float(np.max(gaps))


def adaptive_ece(predictions: torch.Tensor, targets: torch.Tensor, *, n_bins: int = 15,
                 from_logits: bool = False) -> float:
    r"""Expected calibration error with equal-mass (adaptive) bins.

    Nguyen & O'Connor 2015 / Nixon et al. 2019 ("adaptive calibration error", top label only), the
    equal-mass counterpart of :func:`ece` (Guo et al. 2017, eq. 3). Samples are sorted by confidence and
    split into ``n_bins`` consecutive groups whose sizes differ by at most one (``numpy.array_split``
    on the sorted order, ties broken by sample order); then
    :math:`\sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|`. With ``n_bins > N`` the extra bins
    are empty and ignored, which gives per-sample bins.

    Parameters
    ----------
    predictions : Tensor (N, C)
        Probabilities, or logits with ``from_logits=True``.
    targets : Tensor (N,) integer or (N, C)
        Class indices or dense / soft targets (argmax used for accuracy).
    n_bins : int
        Number of equal-mass bins (>= 1).
    from_logits : bool
        Apply softmax to ``predictions`` first.

    Returns
    -------
    float
        Adaptive ECE in [0, 1].
    """
    n_bins = check_int("n_bins", n_bins, minimum=1)
    confidence, correct = _confidence_and_correct(predictions, targets, from_logits)
    return _expected_gap(*_binned(confidence, correct, _equal_mass_bins(confidence, n_bins), n_bins))


def _equal_mass_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each sample: ``n_bins`` consecutive groups of the stable confidence order, sizes within one."""
    order = np.argsort(confidence, kind="stable")
    bins = np.empty(len(order), dtype=np.int64)
    for b, members in enumerate(np.array_split(order, n_bins)):
        bins[members] = b
    return bins


from .streaming import Calibration  # noqa: E402  (the streaming metric reuses the helpers above)
