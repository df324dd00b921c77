"""Every bad input gets a clear error naming the value and what was expected."""

import math

import pytest
import torch

import vicinal as v


def g():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("alpha,error,match", [
    (0.0, ValueError, "alpha must be a finite number > 0, got 0.0"),
    (-1.0, ValueError, "alpha must be a finite number > 0"),
    (math.nan, ValueError, "alpha must be a finite number > 0, got nan"),
    (math.inf, ValueError, "alpha must be a finite number > 0, got inf"),
    ("1", TypeError, "alpha must be a real number"),
])
@pytest.mark.parametrize("factory", [
    lambda a: v.Mixup(alpha=a), lambda a: v.KMixup(alpha=a, k=2),
    lambda a: v.LocalMixup(alpha=a, graph=v.Threshold(eps=1.0)),
])
def test_alpha_validated_at_construction(factory, alpha, error, match):
    with pytest.raises(error, match=match):
        factory(alpha)


@pytest.mark.parametrize("make,error,match", [
    (lambda: v.KMixup(k=0), ValueError, "k must be an integer >= 1, got 0"),
    (lambda: v.KMixup(k=2.5), TypeError, "k must be an integer"),
    (lambda: v.Threshold(eps=-0.1), ValueError, "eps must be a number >= 0, got -0.1"),
    (lambda: v.Threshold(eps=math.nan), ValueError, "eps must be a number >= 0"),
    (lambda: v.KNN(n_neighbors=-1), ValueError, "n_neighbors must be an integer >= 0, got -1"),
    (lambda: v.Exponential(decay=-2.0), ValueError, "decay must be a number >= 0"),
    (lambda: v.KNN(n_neighbors=3, metric="manhatan"), ValueError, "metric must be one of"),
    (lambda: v.LocalMixup(graph=v.KNN(n_neighbors=2), sampling="weigthed"), ValueError,
     "sampling must be one of 'uniform', 'weighted'; got 'weigthed'"),
    (lambda: v.Mixup(lam_mode="elem"), ValueError, "lam_mode must be one of 'batch', 'sample'; got 'elem'"),
    (lambda: v.Mixup(num_classes=0), ValueError, "num_classes must be an integer >= 1"),
    (lambda: v.LocalMixup(graph=None), TypeError, "graph must be a KNN, Threshold or Exponential"),
    (lambda: v.Mixer(pairing="random"), TypeError, "pairing must be"),
    (lambda: v.Mixer(pairing=v.GraphPairing()), ValueError, "pass graph="),
    (lambda: v.Mixup(truncate="yes"), TypeError, "truncate must be True or False"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_label_outside_range():
    with pytest.raises(ValueError, match=r"label 5 is outside \[0, 5\)"):
        v.Mixup(num_classes=5)(torch.randn(3, 2), torch.tensor([0, 5, 1]), generator=g())
    with pytest.raises(ValueError, match=r"label -1 is outside"):
        v.Mixup(num_classes=5)(torch.randn(3, 2), torch.tensor([0, -1, 1]), generator=g())


def test_index_labels_without_num_classes():
    with pytest.raises(ValueError, match="need num_classes"):
        v.Mixup()(torch.randn(3, 2), torch.tensor([0, 1, 1]), generator=g())


def test_batch_size_mismatch():
    with pytest.raises(ValueError, match="labels hold 2 samples but inputs hold 3"):
        v.Mixup(num_classes=2)(torch.randn(3, 2), torch.tensor([0, 1]), generator=g())


def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        v.Mixup(num_classes=2)(torch.randn(0, 2), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs(bad):
    x = torch.randn(4, 2)
    x[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        v.KMixup(k=2, num_classes=2)(x, torch.tensor([0, 1, 0, 1]), generator=g())


def test_integer_inputs_say_how_to_convert():
    with pytest.raises(TypeError, match=r"convert it first, e.g. inputs.float\(\) / 255"):
        v.Mixup(num_classes=2)(torch.randint(0, 255, (4, 3), dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))


def test_wrong_label_shapes():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"got shape \(4, 2, 2\)"):
        v.Mixup(num_classes=2)(x, torch.zeros(4, 2, 2), generator=g())
    with pytest.raises(ValueError, match="dense labels have 3 columns but num_classes=2"):
        v.Mixup(num_classes=2)(x, torch.zeros(4, 3), generator=g())
    with pytest.raises(TypeError, match="look like class indices stored as floats"):
        v.Mixup(num_classes=2)(x, torch.tensor([0.0, 1.0, 1.0, 0.0]), generator=g())
    with pytest.raises(ValueError, match="labels contain NaN"):
        v.Mixup()(x, torch.tensor([0.0, math.nan, 1.0, 0.0]), generator=g())


def test_kmixup_refuses_k_too_large_for_one_batch():
    x, y = torch.randn(7, 2), torch.zeros(7, dtype=torch.long)
    with pytest.raises(ValueError, match=r"k=4 needs at least 2k=8 samples.*got a batch of 7.*drop_last=True"):
        v.KMixup(k=4, num_classes=1)(x, y, generator=g())
    # ... but serves it with an independent partner batch
    batch = v.KMixup(k=4, num_classes=1)(x, y, generator=g(), partner_batch=(torch.randn(7, 2), y))
    assert batch.inputs.shape == (7, 2)


def test_partner_batch_mismatch():
    x, y = torch.randn(6, 2), torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match="partner_batch must have as many samples as the batch \\(6\\), got 5"):
        v.KMixup(k=2, num_classes=1)(x, y, partner_batch=(torch.randn(5, 2), y[:5]))
    with pytest.raises(ValueError, match="sample shape"):
        v.KMixup(k=2, num_classes=1)(x, y, partner_batch=(torch.randn(6, 3), y))


def test_generator_type():
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        v.Mixup(num_classes=2)(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), generator=0)


def test_loss_rejects_bad_targets_and_options():
    x, y = torch.randn(4, 2), torch.randn(4)
    batch = v.Mixup()(x, y, generator=g())
    with pytest.raises(ValueError, match="use loss='squared_error'"):
        v.mixup_loss(torch.randn(4, 3), batch)
    with pytest.raises(ValueError, match="reduction must be one of"):
        v.mixup_loss(torch.randn(4), batch, loss="squared_error", reduction="avg")
    with pytest.raises(ValueError, match="loss must be one of"):
        v.mixup_loss(torch.randn(4), batch, loss="mse")
    with pytest.raises(TypeError, match="MixedBatch"):
        v.mixup_loss(torch.randn(4), (x, y))
    with pytest.raises(ValueError, match="do not match targets"):
        v.mixup_loss(torch.randn(4, 2), batch, loss="squared_error")
    soft = v.Mixup()(x, torch.tensor([[0.5, 0.7]] * 4), generator=g())
    with pytest.raises(ValueError, match="probability vectors"):
        v.mixup_loss(torch.randn(4, 2), soft)


def test_no_bare_asserts_in_library():
    import pathlib
    import re
    src = pathlib.Path(v.__file__).parent
    offenders = [str(p) for p in src.rglob("*.py") if re.search(r"^\s*assert\b", p.read_text(), re.M)]
    assert offenders == []


def test_integer_labels_of_shape_b_by_1_say_to_squeeze():
    with pytest.raises(ValueError, match=r"class indices must have shape \(4,\): pass labels.squeeze\(1\)"):
        v.Mixup(num_classes=3)(torch.randn(4, 2), torch.tensor([[0], [1], [2], [1]]), generator=g())


def test_mixed_batch_repr_shows_shapes_not_values():
    batch = v.LocalMixup(graph=v.Threshold(quantile=0.5), num_classes=10)(
        torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,)), generator=g())
    text = repr(batch)
    assert len(text) < 400 and "inputs=Tensor(64, 3, 32, 32), float32, cpu" in text and "kept=" in text


def test_kmixup_on_nan_inputs_with_checks_off_names_the_inputs_not_scipy():
    x = torch.randn(8, 3)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="inputs contain NaN or Inf values.*check_finite=False"):
        v.KMixup(k=4, check_finite=False)(x, torch.randn(8), generator=g())
