"""Adversarial checks of every public entry point of ``vicinal.__all__``, in the spirit of scikit-learn's
estimator checks: NaN/Inf, empty, every float width, integer inputs, mismatched dtypes and devices
between arguments, wrong shapes, bools and strings for numbers, huge and tiny values.

Each case either ``Refuses(name)``: a ValueError / TypeError whose message names the argument, or
``Works(check)``: returns, and the result passes ``check`` (ground truth computed here in float64,
or an exact invariance such as scaling by a power of two). A second device is simulated with
``meta`` tensors on a CPU-only machine (CUDA when present): only the device check can see them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

import vicinal as v
from vicinal import metrics

OTHER_DEVICE = "cuda" if torch.cuda.is_available() else "meta"
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
BIG, TINY = 2.0 ** 100, 2.0 ** -100  # about 1e30 and 1e-30, powers of two so scaled results compare exactly


@dataclass
class Refuses:
    name: str  # must appear in the message as a word of its own
    pattern: str | None = None  # a stricter regex, for names that are also English words ("a")

    def matches(self, message: str) -> bool:
        return re.search(self.pattern or rf"(?<!\w){re.escape(self.name)}(?!\w)", message) is not None


@dataclass
class Works:
    check: Callable[[Any], Any] | None = None


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def X(dtype=torch.float32, scale=1.0, n=8, d=3):
    return (torch.randn(n, d, generator=gen(1), dtype=torch.float64) * scale).to(dtype)


Y = torch.arange(8) % 3
ONE_HOT = F.one_hot(Y, 3).float()


def meta_like(t):
    return t.to(OTHER_DEVICE) if OTHER_DEVICE != "meta" else torch.empty_like(t, device="meta")


def nan_at(t, value=math.nan):
    t = t.clone()
    t.view(-1)[1] = value
    return t


# ----------------------------------------------------------------------------- checks (ground truth)

def mixed_ok(x, num_classes=3):
    """The batch is lambda x_i + (1 - lambda) x_p(i) (recomputed in float64) at x's dtype's precision."""
    def check(batch):
        assert batch.inputs.dtype == x.dtype and batch.inputs.shape == x.shape
        lam = batch.lam.double()
        assert bool(((lam >= 0) & (lam <= 1)).all())
        xd = x.double()
        expect = lam[:, None] * xd + (1 - lam[:, None]) * xd[batch.partner]
        info = torch.finfo(x.dtype)
        tol = 4 * info.eps * float(xd.abs().max()) + 4 * info.tiny * info.eps  # subnormals: absolute spacing
        assert torch.allclose(batch.inputs.double(), expect, atol=tol, rtol=0)
        if num_classes:
            assert torch.allclose(batch.targets.double().sum(1), torch.ones(len(x), dtype=torch.float64),
                                  atol=4 * torch.finfo(x.dtype).eps)
        if batch.weights is not None:
            assert bool(torch.isfinite(batch.weights).all()) and bool((batch.weights >= 0).all())
    return Works(check)


def same_partners_as_unscaled(make, scale):
    """A power-of-two scaling of the data changes no distance ordering: identical partners and weights."""
    reference = make()(X(), Y, generator=gen())

    def check(batch):
        assert torch.equal(batch.partner, reference.partner)
        if reference.weights is not None:
            assert torch.allclose(batch.weights, reference.weights, rtol=1e-5, atol=0)
        mixed_ok(X(scale=scale)).check(batch)
    return Works(check)


def ot_partners_brute_force(scale):
    """KMixup(k=4) on 8 samples: blocks matched by the optimal assignment of float64 direct differences."""
    def check(batch):
        x = X(torch.float64, scale=scale)
        draws = gen()
        torch.rand(1, dtype=torch.float64, generator=draws)  # the mixer draws lambda first
        order = torch.argsort(torch.rand(8, dtype=torch.float64, generator=draws), stable=True)
        src, dst = order[:4], order[4:]
        for a, b in ((src, dst), (dst, src)):
            cost = ((x[a][:, None, :] - x[b][None, :, :]) ** 2).sum(-1).numpy()
            rows, cols = linear_sum_assignment(cost)
            assert torch.equal(batch.partner[a[rows]], b[cols])
    return Works(check)


def distances_match_float64(x, metric="euclidean"):
    def check(dist):
        xd = x.double()
        sq = ((xd[:, None, :] - xd[None, :, :]) ** 2).sum(-1)
        expect = sq if metric == "sqeuclidean" else sq.sqrt()
        assert bool(torch.isfinite(dist).all())
        assert torch.allclose(dist.double(), expect, rtol=1e-5, atol=0)
    return Works(check)


def graph_scale_free(graph, scale):
    reference = graph.matrix(X())

    def check(weights):
        assert bool(torch.isfinite(weights).all())
        assert torch.allclose(weights.double(), reference.double(), rtol=1e-5, atol=1e-12)
    return Works(check)


def finite(value):
    if isinstance(value, metrics.ReliabilityData):
        assert value.counts.sum() > 0 and np.isfinite(value.histogram).all()
    elif isinstance(value, torch.Tensor):
        assert bool(torch.isfinite(value).all())
    else:
        assert math.isfinite(float(value))


def close_to(expected, rtol=1e-6):
    def check(value):
        assert math.isclose(float(value), float(expected), rel_tol=rtol), (value, expected)
    return Works(check)


def equals_cross_entropy(logits, target):
    """``F.cross_entropy`` is the reference: with index targets on the logits as they are, with probability
    targets on the logits with -inf replaced by -1e4 (exp underflows to exactly 0: the same softmax), since
    torch's own probability-target form computes 0 * -inf = NaN."""
    def check(loss):
        by_index = F.cross_entropy(logits, target.argmax(1)) if bool((target.max(1).values == 1).all()) else None
        by_probs = F.cross_entropy(logits.clamp_min(-1e4), target)
        assert bool(torch.isfinite(loss))
        assert torch.allclose(loss, by_probs)
        if by_index is not None:
            assert torch.allclose(loss, by_index)
    return Works(check)


# ----------------------------------------------------------------------------- fixtures built once

def batch_of(inputs=None, targets=None, weights=None):
    inputs = X() if inputs is None else inputs
    targets = ONE_HOT if targets is None else targets
    n = inputs.shape[0]
    return v.MixedBatch(inputs=inputs, targets=targets, lam=torch.ones(n), partner=torch.arange(n), weights=weights)


def stats():
    return v.fit_stats((X(torch.float64), Y), num_classes=3)


class Linear3(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 3, dtype=torch.float64)
        torch.nn.init.constant_(self.layer.weight, 0.1)

    def forward(self, x):
        return self.layer(x)


def probs(dtype, n=64, c=10):
    return torch.softmax(torch.randn(n, c, generator=gen(2)) * 3, dim=1).to(dtype)


def labels_for(p):
    return torch.arange(p.shape[0]) % p.shape[1]


# ----------------------------------------------------------------------------- the cases

MIXERS = {
    "Mixup": lambda **kw: v.Mixup(num_classes=3, **kw),
    "LocalMixup": lambda **kw: v.LocalMixup(graph=v.Exponential(1.0, relative=True), num_classes=3, **kw),
    "LocalMixupWeighted": lambda **kw: v.LocalMixup(graph=v.Threshold(quantile=0.5), sampling="weighted",
                                                    num_classes=3, **kw),
    "LocalMixupKNN": lambda **kw: v.LocalMixup(graph=v.KNN(2), num_classes=3, **kw),
    "KMixup": lambda **kw: v.KMixup(k=4, num_classes=3, **kw),
    "UniformMixer": lambda **kw: v.Mixer(pairing=v.UniformPairing(), graph=v.KNN(3), num_classes=3, **kw),
}


def mixer_cases():
    for name, make in MIXERS.items():
        yield f"{name}-alpha-bool", lambda make=make: make(alpha=True), Refuses("alpha")
        yield f"{name}-alpha-str", lambda make=make: make(alpha="1"), Refuses("alpha")
        yield f"{name}-alpha-nan", lambda make=make: make(alpha=math.nan), Refuses("alpha")
        yield f"{name}-alpha-inf", lambda make=make: make(alpha=math.inf), Refuses("alpha")
        yield f"{name}-check_finite-str", lambda make=make: make(check_finite="false"), Refuses("check_finite")
        yield f"{name}-check_finite-int", lambda make=make: make(check_finite=0), Refuses("check_finite")
        yield f"{name}-truncate-str", lambda make=make: make(truncate="no"), Refuses("truncate")
        yield f"{name}-lam_mode", lambda make=make: make(lam_mode=1), Refuses("lam_mode")
        yield f"{name}-inputs-nan", lambda make=make: make()(nan_at(X()), Y), Refuses("inputs")
        yield f"{name}-inputs-inf", lambda make=make: make()(nan_at(X(), math.inf), Y), Refuses("inputs")
        yield f"{name}-inputs-empty", lambda make=make: make()(X()[:0], Y[:0]), Refuses("inputs")
        yield f"{name}-inputs-int", lambda make=make: make()(X().long(), Y), Refuses("inputs")
        yield f"{name}-inputs-list", lambda make=make: make()(X().tolist(), Y), Refuses("inputs")
        yield f"{name}-inputs-0d", lambda make=make: make()(torch.tensor(1.0), Y), Refuses("inputs")
        for dtype in FLOATS:
            yield (f"{name}-inputs-{str(dtype)[6:]}", lambda make=make, dtype=dtype: make()(X(dtype), Y, generator=gen()),
                   mixed_ok(X(dtype)))
        for label, scale in (("big", BIG), ("tiny", TINY)):
            yield (f"{name}-inputs-{label}", lambda make=make, scale=scale: make()(X(scale=scale), Y, generator=gen()),
                   same_partners_as_unscaled(make, scale))
        yield (f"{name}-inputs-near-float32-max", lambda make=make: make()(X(scale=1e37), Y, generator=gen()),
               mixed_ok(X(scale=1e37)))
        yield (f"{name}-inputs-subnormal", lambda make=make: make()(X(scale=1e-41), Y, generator=gen()),
               mixed_ok(X(scale=1e-41)))
        yield f"{name}-labels-shape", lambda make=make: make()(X(), Y[:, None, None]), Refuses("labels")
        yield f"{name}-labels-count", lambda make=make: make()(X(), Y[:5]), Refuses("labels")
        yield f"{name}-labels-nan", lambda make=make: make()(X(), nan_at(ONE_HOT)), Refuses("labels")
        yield f"{name}-labels-range", lambda make=make: make()(X(), Y + 1), Refuses("label")
        yield f"{name}-labels-float-indices", lambda make=make: make()(X(), Y.float()), Refuses("labels")
        yield f"{name}-labels-device", lambda make=make: make()(X(), meta_like(Y)), Refuses("labels")
        yield f"{name}-generator", lambda make=make: make()(X(), Y, generator=0), Refuses("generator")
        yield (f"{name}-partner-dtype", lambda make=make: make()(X(), Y, partner_batch=(X(torch.float64), Y)),
               Refuses("partner_batch"))
        yield (f"{name}-partner-device", lambda make=make: make()(X(), Y, partner_batch=(meta_like(X()), Y)),
               Refuses("partner_batch"))
        yield (f"{name}-partner-shape", lambda make=make: make()(X(), Y, partner_batch=(X(d=4), Y)),
               Refuses("partner_batch"))
    yield "KMixup-k-bool", lambda: v.KMixup(k=True), Refuses("k")
    yield "KMixup-k-float", lambda: v.KMixup(k=2.0), Refuses("k")
    yield "KMixup-k-str", lambda: v.KMixup(k="2"), Refuses("k")
    yield "Mixup-num_classes-bool", lambda: v.Mixup(num_classes=True), Refuses("num_classes")
    yield "Mixup-num_classes-str", lambda: v.Mixup(num_classes="3"), Refuses("num_classes")
    yield "LocalMixup-sampling", lambda: v.LocalMixup(graph=v.KNN(1), sampling=True), Refuses("sampling")
    for label, scale in (("big", BIG), ("tiny", TINY), ("1e30", 1e30), ("1e-30", 1e-30)):
        yield (f"KMixup-optimal-transport-{label}",
               lambda scale=scale: v.KMixup(k=4, num_classes=3)(X(scale=scale), Y, generator=gen()),
               ot_partners_brute_force(scale))
    yield ("KMixup-partner-batch-float64",
           lambda: v.KMixup(k=4, num_classes=3)(X(torch.float64), Y, partner_batch=(X(torch.float64, 1e30), Y),
                                                generator=gen()),
           Works(lambda b: finite(b.inputs)))


def graph_cases():
    for name, make in (("eps", lambda value: v.Threshold(eps=value)),
                       ("quantile", lambda value: v.Threshold(quantile=value)),
                       ("decay", lambda value: v.Exponential(decay=value)),
                       ("n_neighbors", lambda value: v.KNN(n_neighbors=value))):
        for label, value in (("bool", True), ("str", "1"), ("nan", math.nan), ("inf", math.inf), ("neg", -1)):
            if name == "eps" and label == "inf":
                continue  # eps = inf keeps every pair: Mixup, a documented limit
            yield f"{name}-{label}", lambda make=make, value=value: make(value), Refuses(name)
    yield "relative-str", lambda: v.Exponential(1.0, relative="yes"), Refuses("relative")
    yield "metric-unknown", lambda: v.KNN(1, metric="l1"), Refuses("metric")
    yield "pairwise-list", lambda: v.pairwise_distances([[0.0, 1.0]]), Refuses("a", r"\ba (must|contains|has)")
    yield "pairwise-nan", lambda: v.pairwise_distances(nan_at(X())), Refuses("a", r"\ba (must|contains|has)")
    yield "pairwise-b-shape", lambda: v.pairwise_distances(X(), X(d=4)), Refuses("b")
    yield "pairwise-b-device", lambda: v.pairwise_distances(X(), meta_like(X())), Refuses("b")
    yield "pairwise-metric", lambda: v.pairwise_distances(X(), metric="cosine"), Refuses("metric")
    yield "pairwise-int", lambda: v.pairwise_distances(X().long()), distances_match_float64(X().long())
    yield "pairwise-b-float64", lambda: v.pairwise_distances(X(), X(torch.float64)), Works(finite)
    for dtype in FLOATS:
        yield f"pairwise-{str(dtype)[6:]}", lambda dtype=dtype: v.pairwise_distances(X(dtype)), \
            distances_match_float64(X(dtype))
    for label, scale in (("1e30", 1e30), ("1e-30", 1e-30), ("1e37", 1e37), ("1e-42", 1e-42)):
        for metric in ("euclidean", "sqeuclidean"):
            if metric == "sqeuclidean" and label in ("1e37", "1e-42"):
                continue  # 1e74 / 1e-84 squared are outside float32: not a float32 question
            yield (f"pairwise-{metric}-{label}", lambda scale=scale, metric=metric: v.pairwise_distances(
                X(scale=scale), metric=metric), distances_match_float64(X(scale=scale), metric))
    for gname, graph in (("Exponential", v.Exponential(1.0, relative=True)), ("Threshold", v.Threshold(quantile=0.3)),
                         ("KNN", v.KNN(2))):
        for label, scale in (("big", BIG), ("tiny", TINY)):
            yield (f"{gname}-matrix-{label}", lambda graph=graph, scale=scale: graph.matrix(X(scale=scale)),
                   graph_scale_free(graph, scale))
    yield ("Exponential-absolute-huge", lambda: v.Exponential(1e-3).matrix(X(scale=1e30)),
           Works(lambda w: (finite(w), torch.equal(w, torch.where(torch.eye(8, dtype=torch.bool), 1.0, 0.0)))))
    yield ("Exponential-pair-weights-huge",
           lambda: v.Exponential(1.0, relative=True).pair_weights(X(scale=1e30), None, torch.arange(8).roll(1)),
           Works(finite))


def pairing_cases():
    yield "OT-k-zero", lambda: v.OptimalTransportPairing(0), Refuses("k")
    yield "OT-k-bool", lambda: v.OptimalTransportPairing(True), Refuses("k")
    yield "OT-partner-size", lambda: v.OptimalTransportPairing(2)(X(), X(n=6)), Refuses("partner_x")
    yield "Uniform-partner-size", lambda: v.UniformPairing()(X(), X(n=6)), Refuses("partner_x")
    yield "Graph-nan", lambda: v.GraphPairing()(nan_at(torch.ones(4, 4))), Refuses("weights")
    yield "Graph-negative", lambda: v.GraphPairing()(nan_at(torch.ones(4, 4), -1.0)), Refuses("weights")
    yield "Graph-not-square", lambda: v.GraphPairing()(torch.ones(4, 3)), Refuses("weights")
    yield "Graph-float16", lambda: v.GraphPairing()(torch.eye(4, dtype=torch.float16), generator=gen()), \
        Works(lambda p: torch.equal(p, torch.arange(4)))


def loss_cases():
    logits = torch.randn(8, 3, generator=gen(3))
    for dtype in FLOATS:
        yield (f"mixup_loss-{str(dtype)[6:]}", lambda dtype=dtype: v.mixup_loss(logits.to(dtype), batch_of()),
               Works(lambda loss, dtype=dtype: torch.testing.assert_close(
                   loss.double(), F.cross_entropy(logits.double(), ONE_HOT.double()),
                   rtol=8 * torch.finfo(dtype).eps, atol=0)))
        yield (f"mixup_loss-half-targets-{str(dtype)[6:]}",
               lambda dtype=dtype: v.mixup_loss(logits, batch_of(X(dtype), probs(dtype, 8, 3))), Works(finite))
    neg_inf = logits.clone()
    neg_inf[:, 2] = -math.inf
    neg_inf[2:, 1] = -math.inf
    target = F.one_hot(torch.zeros(8, dtype=torch.long), 3).float()
    yield "mixup_loss-neg-inf-logit", lambda: v.mixup_loss(neg_inf, batch_of(targets=target)), \
        equals_cross_entropy(neg_inf, target)
    soft = torch.tensor([[0.7, 0.3, 0.0]]).expand(8, 3).clone()
    soft[2:] = torch.tensor([1.0, 0.0, 0.0])
    yield "mixup_loss-neg-inf-soft", lambda: v.mixup_loss(neg_inf, batch_of(targets=soft)), \
        equals_cross_entropy(neg_inf, soft)
    yield "soft_cross_entropy-neg-inf", lambda: v.soft_cross_entropy(neg_inf, soft).mean(), \
        equals_cross_entropy(neg_inf, soft)
    yield "mixup_loss-tuple", lambda: v.mixup_loss((logits, logits), batch_of()), Refuses("outputs[0]")
    yield "mixup_loss-int-outputs", lambda: v.mixup_loss(logits.long(), batch_of()), Refuses("outputs")
    yield "mixup_loss-shape", lambda: v.mixup_loss(logits[:, :2], batch_of()), Refuses("outputs")
    yield "mixup_loss-empty", lambda: v.mixup_loss(logits[:0], batch_of(X()[:0], ONE_HOT[:0])), Refuses("outputs")
    yield "mixup_loss-device", lambda: v.mixup_loss(meta_like(logits), batch_of()), Refuses("outputs")
    yield "mixup_loss-batch-type", lambda: v.mixup_loss(logits, (X(), ONE_HOT)), Refuses("batch")
    yield "mixup_loss-loss-name", lambda: v.mixup_loss(logits, batch_of(), loss="mse"), Refuses("loss")
    yield "mixup_loss-reduction", lambda: v.mixup_loss(logits, batch_of(), reduction=None), Refuses("reduction")
    weighted = batch_of(weights=torch.rand(8, generator=gen()))
    yield ("mixup_loss-callable-shape", lambda: v.mixup_loss(logits, weighted, loss=lambda o, t: (o - t).pow(2)),
           Refuses("loss"))
    yield ("mixup_loss-callable-scalar", lambda: v.mixup_loss(logits, weighted, loss=lambda o, t: (o - t).pow(2).sum()),
           Refuses("loss"))
    yield ("mixup_loss-callable-float", lambda: v.mixup_loss(logits, weighted, loss=lambda o, t: 1.0),
           Refuses("loss"))
    yield ("mixup_loss-callable-uniform-sampling",
           lambda: v.mixup_loss(logits, v.LocalMixup(graph=v.Threshold(quantile=0.5), num_classes=3)(X(), Y),
                                loss=lambda o, t: (o - t).pow(2).mean(0)),
           Refuses("loss"))
    yield "mixup_loss-regression-targets", lambda: v.mixup_loss(logits, batch_of(targets=X())), Refuses("targets")
    yield "squared_error-tuple", lambda: v.squared_error((logits,), ONE_HOT), Refuses("outputs")
    yield "squared_error-shape", lambda: v.squared_error(logits, ONE_HOT[:, :2]), Refuses("outputs")
    yield "squared_error-int", lambda: v.squared_error(logits.long(), ONE_HOT), Refuses("outputs")
    yield "squared_error-float64-targets", lambda: v.squared_error(logits, ONE_HOT.double()), \
        Works(lambda e: torch.testing.assert_close(e.double(), ((logits.double() - ONE_HOT.double()) ** 2).mean(1)))
    yield "squared_error-device", lambda: v.squared_error(logits, meta_like(ONE_HOT)), Refuses("targets")
    yield "soft_cross_entropy-tuple", lambda: v.soft_cross_entropy((logits,), ONE_HOT), Refuses("logits")
    yield "soft_cross_entropy-int", lambda: v.soft_cross_entropy(logits.long(), ONE_HOT), Refuses("logits")
    yield "soft_cross_entropy-shape", lambda: v.soft_cross_entropy(logits, ONE_HOT[:4]), Refuses("targets")
    yield "soft_cross_entropy-device", lambda: v.soft_cross_entropy(logits, meta_like(ONE_HOT)), Refuses("targets")
    yield "soft_cross_entropy-float64-targets", lambda: v.soft_cross_entropy(logits, ONE_HOT.double()), \
        Works(lambda e: torch.testing.assert_close(e.mean().double(), F.cross_entropy(logits.double(), Y)))
    losses = torch.rand(8, generator=gen())
    yield "reduce-list", lambda: v.reduce_weighted([1.0, 2.0], None), Refuses("per_sample")
    yield "reduce-shape", lambda: v.reduce_weighted(losses[:, None], None), Refuses("per_sample")
    yield "reduce-empty", lambda: v.reduce_weighted(losses[:0], None), Refuses("per_sample")
    yield "reduce-weights-shape", lambda: v.reduce_weighted(losses, losses[:4]), Refuses("weights")
    yield "reduce-weights-nan", lambda: v.reduce_weighted(losses, nan_at(losses)), Refuses("weights")
    yield "reduce-weights-negative", lambda: v.reduce_weighted(losses, -losses), Refuses("weights")
    yield "reduce-weights-device", lambda: v.reduce_weighted(losses, meta_like(losses)), Refuses("weights")
    yield "reduce-weights-list", lambda: v.reduce_weighted(losses, [1.0] * 8), Refuses("weights")
    yield "reduce-reduction", lambda: v.reduce_weighted(losses, None, "avg"), Refuses("reduction")
    yield "reduce-float64-weights", lambda: v.reduce_weighted(losses, losses.double(), "normalized"), \
        close_to(float((losses.double() ** 2).sum() / losses.double().sum()))
    yield "reduce-float16", lambda: v.reduce_weighted(losses.half(), losses.half()), Works(finite)


def calibration_cases():
    data = X(torch.float64, n=40, d=2)
    reference = v.calibrate_alpha(data, k=4, alpha=0.5, n_trials=400)
    for name, value in (("alpha", True), ("alpha", "1"), ("alpha", math.nan), ("k", True), ("k", 0), ("k", 41),
                        ("c", True), ("c", 1.0), ("c", math.nan), ("c", "2"), ("max_alpha", True),
                        ("max_alpha", 0.1), ("max_alpha", math.inf), ("n_trials", True), ("n_trials", 2.0),
                        ("method", "newton"), ("seed", "0"), ("seed", 1.5), ("seed", True)):
        kwargs = dict(k=4, alpha=0.5, n_trials=400)
        kwargs[name] = value
        yield f"calibrate_alpha-{name}-{value}", lambda kwargs=kwargs: v.calibrate_alpha(data, **kwargs), Refuses(name)
    yield "calibrate_alpha-x-nan", lambda: v.calibrate_alpha(nan_at(data), k=2, alpha=1.0), Refuses("x")
    yield "calibrate_alpha-x-empty", lambda: v.calibrate_alpha(data[:0], k=1, alpha=1.0), Refuses("x")
    yield "calibrate_alpha-x-str", lambda: v.calibrate_alpha("abc", k=1, alpha=1.0), Refuses("x")
    for method in ("multiplicative", "bisection"):
        yield (f"calibrate_alpha-max_alpha-bound-{method}",
               lambda method=method: v.calibrate_alpha(data, k=4, alpha=0.5, n_trials=400, max_alpha=0.6,
                                                       method=method),
               Works(lambda r: (r.alpha_k <= 0.6) or pytest.fail(f"alpha_k {r.alpha_k} > max_alpha 0.6")))
    for label, scale in (("2^600", 2.0 ** 600), ("2^-600", 2.0 ** -600), ("2^100", BIG)):
        yield (f"calibrate_alpha-scale-{label}",
               lambda scale=scale: v.calibrate_alpha(data * scale, k=4, alpha=0.5, n_trials=400),
               Works(lambda r, scale=scale: (r.alpha_k == reference.alpha_k and math.isclose(r.xi, reference.xi * scale))
                     or pytest.fail(f"{r} vs {reference}")))
        yield (f"perturbation_rms-scale-{label}",
               lambda scale=scale: v.perturbation_rms(data * scale, k=4, alpha=0.5, n_trials=400),
               close_to(v.perturbation_rms(data, k=4, alpha=0.5, n_trials=400) * scale))
    for dtype in FLOATS:
        yield (f"calibrate_alpha-{str(dtype)[6:]}", lambda dtype=dtype: v.calibrate_alpha(data.to(dtype), k=2, alpha=1.0,
                                                                                          n_trials=200),
               Works(lambda r: finite(r.alpha_k)))
    yield "calibrate_alpha-int", lambda: v.calibrate_alpha((data * 10).long(), k=2, alpha=1.0, n_trials=200), \
        Works(lambda r: finite(r.alpha_k))
    for name, value in (("alpha", True), ("k", True), ("n_trials", True), ("seed", "0")):
        kwargs = dict(k=2, alpha=0.5)
        kwargs[name] = value
        yield f"perturbation_rms-{name}-{value}", lambda kwargs=kwargs: v.perturbation_rms(data, **kwargs), Refuses(name)
    yield "perturbation_rms-x-inf", lambda: v.perturbation_rms(nan_at(data, math.inf), k=1, alpha=1.0), Refuses("x")
    # calibrate_eps
    for value in (True, "0.5", math.nan, 0.0, 1.5):
        yield f"calibrate_eps-kept_fraction-{value}", lambda value=value: v.calibrate_eps(data, kept_fraction=value), \
            Refuses("kept_fraction")
    yield "calibrate_eps-batch_size", lambda: v.calibrate_eps(data, kept_fraction=0.5, batch_size=True), \
        Refuses("batch_size")
    yield "calibrate_eps-n_batches", lambda: v.calibrate_eps(data, kept_fraction=0.5, n_batches=0), Refuses("n_batches")
    yield "calibrate_eps-metric", lambda: v.calibrate_eps(data, kept_fraction=0.5, metric="l2"), Refuses("metric")
    yield "calibrate_eps-data-int", lambda: v.calibrate_eps(5, kept_fraction=0.5), Refuses("data")
    yield "calibrate_eps-data-nan", lambda: v.calibrate_eps(nan_at(data), kept_fraction=1.0), Refuses("data")
    yield "calibrate_eps-data-long", lambda: v.calibrate_eps(data.long(), kept_fraction=0.5), Refuses("data")
    yield "calibrate_eps-data-empty", lambda: v.calibrate_eps(data[:0], kept_fraction=0.5), Refuses("data")
    yield "calibrate_eps-generator", lambda: v.calibrate_eps(data, kept_fraction=0.5, generator=1), Refuses("generator")
    eps_reference = v.calibrate_eps(data, kept_fraction=0.5, generator=gen())
    for label, scale in (("big", BIG), ("tiny", TINY)):
        for dtype in (torch.float32, torch.float64):
            yield (f"calibrate_eps-{label}-{str(dtype)[6:]}",
                   lambda scale=scale, dtype=dtype: v.calibrate_eps((data * scale).to(dtype), kept_fraction=0.5,
                                                                    generator=gen()),
                   close_to(eps_reference * scale, rtol=1e-5))


def moment_cases():
    for fn in (v.theta_bar, v.truncated_beta_variance):
        name = fn.__name__
        for value in (True, "1", None, math.nan, math.inf, 0.0, -1.0, torch.tensor(2.0)):
            yield f"{name}-{value!r}", lambda fn=fn, value=value: fn(value), Refuses("alpha")
        for value in (1e-300, 1e-8, 1e8, 1e300, np.float32(2.0), np.int64(3)):
            low, high = (0.5, 1.0) if fn is v.theta_bar else (0.0, 1 / 16)
            yield (f"{name}-{value!r}", lambda fn=fn, value=value: fn(value),
                   Works(lambda r, low=low, high=high: (low <= r <= high) or pytest.fail(f"{r} outside [{low}, {high}]")))


def rescale_cases():
    s = stats()
    model = Linear3()
    for name, value in (("theta_bar", True), ("theta_bar", "0.7"), ("theta_bar", math.nan), ("theta_bar", 0.4),
                        ("alpha", True), ("alpha", "1")):
        yield (f"RescaledPredictor-{name}-{value}", lambda name=name, value=value: v.RescaledPredictor(
            model, stats=s, **{name: value}), Refuses(name))
        yield (f"modified_data-{name}-{value}", lambda name=name, value=value: v.modified_data(
            X(torch.float64), Y, stats=s, **{name: value}), Refuses(name))
    yield "RescaledPredictor-model", lambda: v.RescaledPredictor(lambda x: x, stats=s, alpha=1.0), Refuses("model")
    yield "RescaledPredictor-stats", lambda: v.RescaledPredictor(model, stats=(1, 2), alpha=1.0), Refuses("stats")
    yield "RescaledPredictor-space", lambda: v.RescaledPredictor(model, stats=s, alpha=1.0, space=1), Refuses("space")
    predictor = v.RescaledPredictor(model, stats=s, alpha=1.0)
    yield "RescaledPredictor-x-nan", lambda: predictor(nan_at(X(torch.float64))), Refuses("x")
    yield "RescaledPredictor-x-list", lambda: predictor([[1.0, 2.0, 3.0]]), Refuses("x")
    yield "RescaledPredictor-x-shape", lambda: predictor(X(torch.float64, d=4)), Refuses("x")
    yield "RescaledPredictor-x-int", lambda: predictor(X().long()), Refuses("x")
    yield "RescaledPredictor-x-empty", lambda: predictor(X(torch.float64)[:0]), Refuses("x")
    yield "RescaledPredictor-x-float64", lambda: predictor(X(torch.float64)), Works(finite)
    yield "modified_data-x-nan", lambda: v.modified_data(nan_at(X()), Y, stats=s, alpha=1.0), Refuses("x")
    yield "modified_data-x-int", lambda: v.modified_data(X().long(), Y, stats=s, alpha=1.0), Refuses("x")
    yield "modified_data-x-shape", lambda: v.modified_data(X(d=4), Y, stats=s, alpha=1.0), Refuses("x")
    yield "modified_data-stats", lambda: v.modified_data(X(), Y, stats=None, alpha=1.0), Refuses("stats")
    for dtype in FLOATS:
        yield (f"modified_data-{str(dtype)[6:]}", lambda dtype=dtype: v.modified_data(X(dtype), Y, stats=s, alpha=1.0),
               Works(lambda out, dtype=dtype: [finite(out[0]), finite(out[1])]
                     if out[0].dtype == dtype == out[1].dtype else pytest.fail(str(out))))
        yield (f"fit_stats-{str(dtype)[6:]}", lambda dtype=dtype: v.fit_stats((X(dtype), Y), num_classes=3),
               Works(lambda r, dtype=dtype: torch.testing.assert_close(
                   r.x_mean, X(dtype).double().mean(0), rtol=0, atol=1e-12)))
    yield "fit_stats-x-nan", lambda: v.fit_stats((nan_at(X()), Y), num_classes=3), Refuses("x")
    yield "fit_stats-x-int", lambda: v.fit_stats((X().long(), Y), num_classes=3), Refuses("x")
    yield "fit_stats-x-empty", lambda: v.fit_stats((X()[:0], Y[:0]), num_classes=3), Refuses("x")
    yield "fit_stats-no-batches", lambda: v.fit_stats([], num_classes=3), Refuses("data")
    yield "fit_stats-data-int", lambda: v.fit_stats(3), Refuses("data")
    yield "fit_stats-labels-nan", lambda: v.fit_stats((X(), nan_at(ONE_HOT))), Refuses("labels")
    yield "fit_stats-num_classes-bool", lambda: v.fit_stats((X(), Y), num_classes=True), Refuses("num_classes")
    yield "fit_stats-batch_size-bool", lambda: v.fit_stats((X(), Y), num_classes=3, batch_size=True), \
        Refuses("batch_size")
    yield "fit_stats-huge", lambda: v.fit_stats((X(scale=1e30), Y), num_classes=3), \
        Works(lambda r: torch.testing.assert_close(r.x_mean, X(scale=1e30).double().mean(0), rtol=1e-12, atol=0))
    for fn in (v.approximate_mixup_loss, v.mixup_regularizers):
        name = fn.__name__
        base = dict(alpha=1.0, stats=s)
        for arg, value in (("alpha", True), ("alpha", "1"), ("stats", None), ("loss", "hinge"), ("model", None)):
            kwargs = dict(base, **{arg: value})
            call_model = None if arg == "model" else model
            yield (f"{name}-{arg}-{value}", lambda fn=fn, kwargs=kwargs, m=call_model: fn(m, X(torch.float64), Y, **kwargs),
                   Refuses(arg))
        yield f"{name}-x-nan", lambda fn=fn: fn(model, nan_at(X(torch.float64)), Y, **base), Refuses("x")
        yield f"{name}-x-int", lambda fn=fn: fn(model, X().long(), Y, **base), Refuses("x")
        yield f"{name}-works", lambda fn=fn: fn(model, X(torch.float64), Y, **base), Works()
    for arg, value in (("include_r2", "no"), ("include_r2", 1), ("n_samples", True), ("estimator", "mc"),
                       ("reduction", "sum"), ("generator", 3)):
        yield (f"approximate_mixup_loss-{arg}-{value}", lambda arg=arg, value=value: v.approximate_mixup_loss(
            model, X(torch.float64), Y, alpha=1.0, stats=s, **{arg: value}), Refuses(arg))


METRICS = (metrics.error_rate, metrics.nll, metrics.ece, metrics.mce, metrics.adaptive_ece, metrics.reliability_data)


def metric_cases():
    p = probs(torch.float32)
    t = labels_for(p)
    for fn in METRICS:
        name = fn.__name__
        yield f"{name}-nan", lambda fn=fn: fn(nan_at(p), t), Refuses("predictions")
        yield f"{name}-empty", lambda fn=fn: fn(p[:0], t[:0]), Refuses("predictions")
        yield f"{name}-int", lambda fn=fn: fn(p.long(), t), Refuses("predictions")
        yield f"{name}-tuple", lambda fn=fn: fn((p,), t), Refuses("predictions")
        yield f"{name}-1d", lambda fn=fn: fn(p[:, 0], t), Refuses("predictions")
        yield f"{name}-not-probabilities", lambda fn=fn: fn(p * 2, t), Refuses("predictions")
        yield f"{name}-from_logits-str", lambda fn=fn: fn(p, t, from_logits="yes"), Refuses("from_logits")
        yield f"{name}-from_logits-int", lambda fn=fn: fn(p, t, from_logits=1), Refuses("from_logits")
        yield f"{name}-targets-range", lambda fn=fn: fn(p, t + 10), Refuses("targets")
        yield f"{name}-targets-shape", lambda fn=fn: fn(p, t[:5]), Refuses("targets")
        yield f"{name}-targets-device", lambda fn=fn: fn(p, meta_like(t)), Refuses("targets")
        yield f"{name}-targets-list", lambda fn=fn: fn(p, t.tolist()), Refuses("targets")
        yield f"{name}-targets-nan-dense", lambda fn=fn: fn(p, nan_at(F.one_hot(t, 10).float())), Refuses("targets")
        reference = fn(p.double(), t)
        for dtype in FLOATS:
            # Probabilities rounded to a half-precision dtype: accepted (the tolerance follows the dtype).
            yield (f"{name}-probabilities-{str(dtype)[6:]}", lambda fn=fn, dtype=dtype: fn(probs(dtype), t),
                   Works(finite if dtype in (torch.float16, torch.bfloat16) else _same_as(reference)))
            yield (f"{name}-dense-targets-{str(dtype)[6:]}",
                   lambda fn=fn, dtype=dtype: fn(p, F.one_hot(t, 10).to(dtype)), Works(_same_as(fn(p, t))))
            yield (f"{name}-logits-{str(dtype)[6:]}",
                   lambda fn=fn, dtype=dtype: fn(torch.log(p).to(dtype), t, from_logits=True), Works(finite))
        yield f"{name}-huge-logits", lambda fn=fn: fn(torch.log(p) * 1e30, t, from_logits=True), Works(finite)
        if fn is not metrics.error_rate and fn is not metrics.nll:
            for value in (True, 0, 2.5, "15"):
                yield f"{name}-n_bins-{value}", lambda fn=fn, value=value: fn(p, t, n_bins=value), Refuses("n_bins")


def _same_as(reference):
    def check(value):
        if isinstance(reference, metrics.ReliabilityData):
            np.testing.assert_allclose(value.counts, reference.counts)
        else:
            assert math.isclose(value, reference, rel_tol=1e-6, abs_tol=1e-12), (value, reference)
    return check


def misc_cases():
    mixer = v.Mixup(num_classes=3)
    samples = [(X()[i], int(Y[i])) for i in range(8)]
    yield "MixCollate-mixer", lambda: v.MixCollate("mixup"), Refuses("mixer")
    for value in (True, -1, "0", 1.5):
        yield f"MixCollate-seed-{value}", lambda value=value: v.MixCollate(mixer, seed=value), Refuses("seed")
    yield "MixCollate-collate_fn", lambda: v.MixCollate(mixer, collate_fn=3), Refuses("collate_fn")
    yield "MixCollate-empty", lambda: v.MixCollate(mixer, seed=0)([]), Refuses("samples")
    yield "MixCollate-structure", lambda: v.MixCollate(mixer, seed=0)([X()[i] for i in range(8)]), Refuses("samples")
    yield "MixCollate-works", lambda: v.MixCollate(mixer, seed=0)(samples), Works(lambda b: finite(b.inputs))
    for name, value in (("batch_size", True), ("batch_size", 0), ("batch_size", "4"), ("alpha", True),
                        ("alpha", math.nan), ("lam_mode", "all"), ("truncate", "yes"), ("truncate", 1),
                        ("generator", 1), ("dtype", torch.int64), ("dtype", "float32"), ("device", "nowhere"),
                        ("device", 3.5)):
        kwargs = dict(batch_size=4, alpha=1.0)
        kwargs[name] = value
        yield f"sample_lam-{name}-{value}", lambda kwargs=kwargs: v.sample_lam(**kwargs), Refuses(name)
    for dtype in FLOATS:
        for alpha in (1e-300, 1e-3, 1e300):
            yield (f"sample_lam-{str(dtype)[6:]}-alpha-{alpha}",
                   lambda dtype=dtype, alpha=alpha: v.sample_lam(64, alpha, lam_mode="sample", dtype=dtype,
                                                                generator=gen()),
                   Works(lambda lam, dtype=dtype: (lam.dtype == dtype and bool(((lam >= 0) & (lam <= 1)).all()))
                         or pytest.fail(str(lam))))
    lam = torch.full((8,), 0.25)
    yield "interpolate-values-list", lambda: v.interpolate(X().tolist(), X(), lam), Refuses("values")
    yield "interpolate-partner-shape", lambda: v.interpolate(X(), X(d=4), lam), Refuses("partner_values")
    yield "interpolate-partner-dtype", lambda: v.interpolate(X(), X(torch.float64), lam), Refuses("partner_values")
    yield "interpolate-partner-device", lambda: v.interpolate(X(), meta_like(X()), lam), Refuses("partner_values")
    yield "interpolate-lam-shape", lambda: v.interpolate(X(), X(), lam[:3]), Refuses("lam")
    yield "interpolate-lam-device", lambda: v.interpolate(X(), X(), meta_like(lam)), Refuses("lam")
    yield "interpolate-int", lambda: v.interpolate(X().long(), X().long(), lam), Refuses("values")
    for dtype in FLOATS:
        yield (f"interpolate-{str(dtype)[6:]}", lambda dtype=dtype: v.interpolate(X(dtype), X(dtype).flip(0), lam.double()),
               Works(lambda out, dtype=dtype: torch.testing.assert_close(
                   out.double(), 0.25 * X(dtype).double() + 0.75 * X(dtype).flip(0).double(),
                   rtol=0, atol=4 * torch.finfo(dtype).eps * 3)))
    yield "dense_targets-list", lambda: v.dense_targets([0, 1], 2, num_classes=3, dtype=torch.float32), \
        Refuses("labels")
    yield "dense_targets-num_classes-bool", lambda: v.dense_targets(Y, 8, num_classes=True, dtype=torch.float32), \
        Refuses("num_classes")
    yield "dense_targets-dtype-int", lambda: v.dense_targets(Y, 8, num_classes=3, dtype=torch.int64), Refuses("dtype")
    yield "dense_targets-nan", lambda: v.dense_targets(nan_at(ONE_HOT), 8, num_classes=None, dtype=torch.float32), \
        Refuses("labels")
    yield "dense_targets-inf-regression", lambda: v.dense_targets(nan_at(X()[:, 0], math.inf), 8, num_classes=None,
                                                                  dtype=torch.float32), Refuses("labels")
    for dtype in FLOATS:
        yield (f"dense_targets-{str(dtype)[6:]}", lambda dtype=dtype: v.dense_targets(Y, 8, num_classes=3, dtype=dtype),
               Works(lambda out, dtype=dtype: torch.equal(out, ONE_HOT.to(dtype)) or pytest.fail(str(out))))
    # MixedBatch.mix with and without the partner batch's values
    partner_x = X(scale=2.0)
    batch = v.KMixup(k=2, num_classes=3)(X(), Y, partner_batch=(partner_x, Y), generator=gen())
    yield "MixedBatch-mix-partner-values", lambda: batch.mix(X(), partner_x), \
        Works(lambda out: torch.testing.assert_close(out, batch.inputs))
    yield "MixedBatch-mix-missing-partner-values", lambda: batch.mix(X()), Refuses("partner_values")
    yield "MixedBatch-mix-wrong-count", lambda: batch.mix(X()[:4], partner_x), Refuses("values")
    yield "MixedBatch-mix-partner-shape", lambda: batch.mix(X(), partner_x[:, :2]), Refuses("partner_values")
    yield "MixedBatch-mix-list", lambda: batch.mix(X().tolist()), Refuses("values")
    own = v.Mixup(num_classes=3)(X(), Y, generator=gen())
    yield "MixedBatch-mix-own", lambda: own.mix(X()), Works(lambda out: torch.testing.assert_close(out, own.inputs))


CASES = [pytest.param(call, expect, id=case_id)
         for group in (mixer_cases, graph_cases, pairing_cases, loss_cases, calibration_cases, moment_cases,
                       rescale_cases, metric_cases, misc_cases)
         for case_id, call, expect in group()]


@pytest.mark.filterwarnings("ignore::vicinal.NoPairsKeptWarning")
@pytest.mark.parametrize("call,expect", CASES)
def test_adversarial(call, expect):
    if isinstance(expect, Refuses):
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        assert expect.matches(str(info.value)), f"the message does not name {expect.name!r}: {info.value}"
    else:
        result = call()
        if expect.check is not None:
            expect.check(result)
