"""Issue 13, library half: one test per class of failure an outside attack found (silent wrong results,
unrelated exceptions), each against ground truth computed here. The wide sweep of bad inputs is
tests/test_adversarial_library.py."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

import vicinal as v
from vicinal import metrics


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def data(scale=1.0, dtype=torch.float32, n=8, d=3):
    return (torch.randn(n, d, generator=gen(1), dtype=torch.float64) * scale).to(dtype)


Y = torch.arange(8) % 3
X4 = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))  # image-shaped, for CutMix too


# ----------------------------------------------------------------------------- silent wrong results

def test_exponential_refuses_infinite_decay():
    with pytest.raises(ValueError, match="decay must be finite"):
        v.Exponential(decay=math.inf)


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e37])
@pytest.mark.parametrize("relative", [False, True])
def test_exponential_weights_on_extreme_distances_match_float64(scale, relative):
    """exp(-decay d / s) from float64 direct differences, never NaN (inf - inf in the expansion was)."""
    x = data(scale)
    decay = 1.0 if relative else 1.0 / scale
    weights = v.Exponential(decay, relative=relative).matrix(x)
    xd = x.double()
    dist = ((xd[:, None] - xd[None]) ** 2).sum(-1).sqrt()
    if relative:
        off = dist[~torch.eye(8, dtype=torch.bool)]
        dist = dist / off.kthvalue(math.ceil(0.5 * off.numel())).values
    torch.testing.assert_close(weights.double(), torch.exp(-decay * dist), rtol=1e-5, atol=1e-7)


def test_weighted_sampling_on_huge_inputs_gives_finite_weights():
    batch = v.LocalMixup(graph=v.Exponential(1.0, relative=True), sampling="weighted", num_classes=3)(
        data(1e30), Y, generator=gen())
    assert bool(torch.isfinite(batch.weights).all()) and bool((batch.weights > 0).all())


def _bool_flag_calls():
    """Every bool parameter of the public API, with a call that passes it (and nothing else unusual)."""
    x, s = data(), v.fit_stats((data(dtype=torch.float64), Y), num_classes=3)
    probs = torch.softmax(torch.randn(8, 3, generator=gen()), 1)
    model = torch.nn.Linear(3, 3, dtype=torch.float64)
    return {
        v.Mixer: lambda **kw: v.Mixer(**kw),
        v.Mixup: lambda **kw: v.Mixup(**kw),
        v.LocalMixup: lambda **kw: v.LocalMixup(graph=v.KNN(1), **kw),
        v.KMixup: lambda **kw: v.KMixup(k=2, **kw),
        v.CutMix: lambda **kw: v.CutMix(num_classes=3, **kw)(X4, Y[:4]),
        v.from_timm: lambda **kw: v.from_timm(num_classes=3, **kw)(X4, Y[:4]),
        v.dense_targets: lambda **kw: v.dense_targets(Y, len(Y), num_classes=3, dtype=torch.float32, **kw),
        v.reduce_weighted: lambda **kw: v.reduce_weighted(torch.rand(4), torch.rand(4), **kw),
        v.mixup_loss: lambda **kw: v.mixup_loss(torch.randn(4, 3), v.Mixup(num_classes=3)(X4, Y[:4]), **kw),
        v.Exponential: lambda **kw: v.Exponential(1.0, **kw),
        v.sample_lam: lambda **kw: v.sample_lam(4, 1.0, **kw),
        v.approximate_mixup_loss: lambda **kw: v.approximate_mixup_loss(model, x.double(), Y, alpha=1.0, stats=s, **kw),
        **{fn: (lambda fn=fn: lambda **kw: fn(probs, Y % 3, **kw))() for fn in
           (metrics.error_rate, metrics.nll, metrics.ece, metrics.mce, metrics.adaptive_ece, metrics.reliability_data)},
        metrics.mean_confidence: lambda **kw: metrics.mean_confidence(probs, **kw),
    }


def _bool_parameters(fn):
    target = fn.__init__ if inspect.isclass(fn) else fn
    return [p.name for p in inspect.signature(target).parameters.values() if isinstance(p.default, bool)]


def _default(fn, name):
    target = fn.__init__ if inspect.isclass(fn) else fn
    return inspect.signature(target).parameters[name].default


def test_every_public_bool_parameter_is_listed_here():
    """A new flag of the public API must join the check below (callables with a bool default)."""
    calls = _bool_flag_calls()
    public = [getattr(v, name) for name in v.__all__ if callable(getattr(v, name))]
    public += [getattr(metrics, name) for name in dir(metrics) if not name.startswith("_")
               and inspect.isfunction(getattr(metrics, name)) and getattr(metrics, name).__module__ == metrics.__name__]
    # MixedBatch's from_partner_batch is set by the mixers, not by users: a record, not an option.
    missing = [fn.__name__ for fn in public if _bool_parameters(fn) and fn not in calls and fn is not v.MixedBatch]
    assert not missing, f"bool parameters not covered: {missing}"


@pytest.mark.parametrize("value", ["false", "False", 0, 1, None, 1.0])
def test_every_bool_flag_refuses_non_bools(value):
    """``bool("false")`` is True: a flag given as a string or a number must be refused, naming the flag."""
    for fn, call in _bool_flag_calls().items():
        for name in _bool_parameters(fn):
            with pytest.raises(TypeError, match=f"{name} must be True or False"):
                call(**{name: value})
            call(**{name: _default(fn, name)})  # and a real bool works


@pytest.mark.parametrize("value", [True, False, "0.75", None])
def test_theta_bar_must_be_a_number(value):
    s = v.fit_stats((data(dtype=torch.float64), Y), num_classes=3)
    with pytest.raises((TypeError, ValueError), match="theta_bar"):
        v.RescaledPredictor(torch.nn.Linear(3, 3), stats=s, theta_bar=value)
    if value is not None:
        with pytest.raises(TypeError, match="theta_bar must be a real number"):
            v.modified_data(data(), Y, stats=s, theta_bar=value)


@pytest.mark.parametrize("method", ["multiplicative", "bisection"])
def test_calibrate_alpha_respects_max_alpha_and_says_so(method):
    """The issue's case: alpha = 1, c = 1.1, max_alpha = 1.5 returned 1.1**5 = 1.61 (and the default bound
    1000 returned 1.1**73 = 1051)."""
    x = data(n=64, d=2)
    with pytest.warns(RuntimeWarning, match="stopped at max_alpha=1.5"):
        result = v.calibrate_alpha(x, k=2, alpha=1.0, max_alpha=1.5, n_trials=512, method=method)
    assert result.alpha_k == 1.5 and not result.reachable
    unbounded = v.calibrate_alpha(x, k=2, alpha=1.0, n_trials=512, method=method)
    assert unbounded.alpha_k > 1.5 and unbounded.reachable  # the bound was what stopped it


def _logits_with_minus_inf():
    logits = torch.randn(6, 4, generator=gen(3), dtype=torch.float64)
    logits[:, 3] = -math.inf
    logits[3:, 1] = -math.inf
    return logits


def test_mixup_loss_with_minus_inf_logits_matches_cross_entropy_with_index_targets():
    logits = _logits_with_minus_inf().requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 0, 2, 0])
    batch = v.MixedBatch(inputs=torch.zeros(6, 1), targets=F.one_hot(labels, 4).double(), lam=torch.ones(6),
                         partner=torch.arange(6))
    loss = v.mixup_loss(logits, batch)
    (grad,) = torch.autograd.grad(loss, logits)
    reference_logits = logits.detach().clone().requires_grad_(True)
    reference = F.cross_entropy(reference_logits, labels)
    (reference_grad,) = torch.autograd.grad(reference, reference_logits)
    assert bool(torch.isfinite(loss))
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(grad, reference_grad)  # finite: zeros where the logit is -inf


def test_soft_cross_entropy_with_minus_inf_logits_matches_probability_targets():
    """torch's probability-target cross-entropy is NaN here (0 * -inf); with -inf replaced by -1e4 (softmax
    unchanged: exp underflows to exactly 0) it is the finite reference."""
    logits = _logits_with_minus_inf()
    targets = torch.tensor([[0.6, 0.4, 0.0, 0.0]]).repeat(6, 1).double()
    targets[3:] = torch.tensor([0.2, 0.0, 0.8, 0.0])
    assert bool(F.cross_entropy(logits, targets).isnan())
    torch.testing.assert_close(v.soft_cross_entropy(logits, targets).mean(),
                               F.cross_entropy(logits.clamp_min(-1e4), targets))


# ----------------------------------------------------------------------------- clear errors instead of torch's

def test_partner_batch_of_another_dtype_is_refused_by_name():
    with pytest.raises(TypeError, match=r"partner_batch\[0\] has dtype torch.float64 but inputs has dtype torch.float32"):
        v.KMixup(k=2, num_classes=3)(data(), Y, partner_batch=(data(dtype=torch.float64), Y))


def test_mixed_batch_mix_with_a_partner_batch():
    partner_x = data(2.0) + 5
    batch = v.KMixup(k=2, num_classes=3)(data(), Y, partner_batch=(partner_x, Y), generator=gen())
    assert batch.from_partner_batch
    with pytest.raises(ValueError, match="mixed with a partner_batch.*pass partner_values"):
        batch.mix(data())
    lam = batch.lam[:, None]
    expected = lam * data() + (1 - lam) * partner_x[batch.partner]
    torch.testing.assert_close(batch.mix(data(), partner_x), expected)
    torch.testing.assert_close(batch.mix(data(), partner_x), batch.inputs)


def test_loss_callable_and_outputs_of_the_wrong_shape_are_named():
    batch = v.LocalMixup(graph=v.Threshold(quantile=0.5), num_classes=3)(data(), Y, generator=gen())
    with pytest.raises(ValueError, match=r"outputs must hold one row per sample of the batch \(8"):
        v.mixup_loss(torch.tensor(1.0), batch, loss=lambda o, t: o)  # was IndexError
    with pytest.raises(ValueError, match=r"the loss callable must return per-sample losses of shape \(8,\), got shape \(3,\)"):
        v.mixup_loss(torch.randn(8, 3), batch, loss=lambda o, t: (o - t).pow(2).mean(0))


def test_tuple_outputs_say_to_pass_the_logits():
    batch = v.Mixup(num_classes=3)(data(), Y, generator=gen())
    logits = torch.randn(8, 3)
    with pytest.raises(TypeError, match=r"outputs must be a torch.Tensor, got tuple.*outputs\[0\]"):
        v.mixup_loss((logits, torch.zeros(8)), batch)  # was AttributeError


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_kmixup_matching_on_extreme_inputs_is_the_float64_optimal_assignment(scale):
    """Inputs of 1e30 made scipy refuse a cost matrix of inf - inf; 1e-30 made every cost 0 (any matching)."""
    x = data(scale, n=16)
    batch = v.KMixup(k=8, num_classes=3)(x, torch.arange(16) % 3, generator=gen())
    draws = gen()
    torch.rand(1, dtype=torch.float64, generator=draws)  # lambda
    order = torch.argsort(torch.rand(16, dtype=torch.float64, generator=draws), stable=True)
    xd = x.double()
    for a, b in ((order[:8], order[8:]), (order[8:], order[:8])):
        rows, cols = linear_sum_assignment(((xd[a][:, None] - xd[b][None]) ** 2).sum(-1).numpy())
        assert torch.equal(batch.partner[a[rows]], b[cols])


@pytest.mark.parametrize("scale", [1e30, 1e-30])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_distances_of_extreme_inputs_match_float64_direct_differences(scale, metric):
    x = data(scale, n=12, d=5)
    xd = x.double()
    sq = ((xd[:, None] - xd[None]) ** 2).sum(-1)
    expected = sq if metric == "sqeuclidean" else sq.sqrt()
    dist = v.pairwise_distances(x, metric=metric)
    # float32 when representable; squares of 1e30 / 1e-30 are not, and come back in float64
    assert dist.dtype == (torch.float32 if metric == "euclidean" else torch.float64)
    torch.testing.assert_close(dist.double(), expected, rtol=1e-5, atol=0)
    paired = v.graphs.paired_distances(x, x.roll(1, 0), metric=metric)
    torch.testing.assert_close(paired.double(), expected[torch.arange(12), torch.arange(12).roll(1)], rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_probabilities_are_accepted_within_their_rounding(dtype):
    logits = torch.randn(256, 100, generator=gen()) * 4
    labels = torch.arange(256) % 100
    probs = torch.softmax(logits, 1).to(dtype)
    assert float((probs.double().sum(1) - 1).abs().max()) > 1e-4  # the old fixed tolerance refused these
    torch.testing.assert_close(metrics.nll(probs, labels), metrics.nll(probs.double() / probs.double().sum(1, keepdim=True), labels),
                               rtol=0.05, atol=0)
    batch = v.MixedBatch(inputs=torch.zeros(256, 1, dtype=dtype), targets=probs, lam=torch.ones(256, dtype=dtype),
                         partner=torch.arange(256))
    assert bool(torch.isfinite(v.mixup_loss(logits, batch)))
    with pytest.raises(ValueError, match="rows summing to 1"):  # still refused when clearly not probabilities
        metrics.nll((probs.double() * 1.1).to(dtype), labels)
