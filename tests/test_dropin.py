"""What timm / torchvision users hand over works as they expect: unpacking, label smoothing, prob, every
integer label dtype and numpy labels, channels_last and dtype kept, dict samples in MixCollate,
torch.compile, and the random streams of existing mixers unchanged by the new options."""

import hashlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import vicinal

C = 5


def _images(b=12, seed=0, shape=(3, 6, 7)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, *shape, generator=g), torch.randint(0, C, (b,), generator=g)


def _digest(batch):
    h = hashlib.sha256()
    for t in (batch.inputs, batch.targets, batch.lam, batch.partner, batch.weights):
        if t is not None:
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# sha256 prefixes of two consecutive batches, computed with vicinal at commit ca4ec26 (before issue 14).
STREAMS_BEFORE = {
    "Mixup": (lambda **kw: vicinal.Mixup(alpha=0.4, num_classes=5, **kw), ("d04b28a63fb463b3", "9c21753823386d93")),
    "Mixup-sample": (lambda **kw: vicinal.Mixup(alpha=0.4, num_classes=5, lam_mode="sample", truncate=True, **kw),
                     ("fbff70b75c11a7f4", "64b2369bfa237157")),
    "KMixup": (lambda **kw: vicinal.KMixup(alpha=1.0, k=4, num_classes=5, **kw), ("66227ed31be39103", "9f4e157591027346")),
    "LocalMixup-uniform": (lambda **kw: vicinal.LocalMixup(alpha=1.0, graph=vicinal.Threshold(eps=5.0), num_classes=5, **kw),
                           ("fc0c541cbb402322", "a327771cfb4b9ac3")),
    "LocalMixup-weighted": (lambda **kw: vicinal.LocalMixup(alpha=1.0, graph=vicinal.KNN(n_neighbors=3), sampling="weighted",
                                                            num_classes=5, **kw), ("dbdc1a17a5afba52", "ea261ab067b651b4")),
}


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("name", list(STREAMS_BEFORE))
def test_streams_of_existing_mixers_are_bit_identical_to_before(name, explicit):
    g0 = torch.Generator().manual_seed(123)
    x = torch.randn(13, 2, 3, 4, generator=g0)
    y = torch.randint(0, 5, (13,), generator=g0)
    factory, expected = STREAMS_BEFORE[name]
    options = dict(interpolation="linear", label_smoothing=0.0, prob=1.0) if explicit else {}
    mixer = factory(**options)
    g = torch.Generator().manual_seed(7)
    assert tuple(_digest(mixer(x, y, generator=g)) for _ in range(2)) == expected


ALL_MIXERS = {
    "Mixup": lambda **kw: vicinal.Mixup(alpha=1.0, num_classes=C, **kw),
    "KMixup": lambda **kw: vicinal.KMixup(alpha=1.0, k=3, num_classes=C, **kw),
    "LocalMixup": lambda **kw: vicinal.LocalMixup(graph=vicinal.Threshold(quantile=0.5), num_classes=C, **kw),
    "LocalMixup-weighted": lambda **kw: vicinal.LocalMixup(graph=vicinal.KNN(4), sampling="weighted", num_classes=C, **kw),
    "CutMix": lambda **kw: vicinal.CutMix(alpha=1.0, num_classes=C, **kw),
    "from_timm": lambda **kw: vicinal.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=C,
                                                **{"label_smoothing": 0.0, **kw}),
}


@pytest.mark.parametrize("name", list(ALL_MIXERS))
def test_label_smoothing_is_applied_to_targets_before_mixing(name):
    s = 0.2
    x, y = _images()
    smoothed = ALL_MIXERS[name](label_smoothing=s)(x, y, generator=torch.Generator().manual_seed(4))
    plain = ALL_MIXERS[name]()(x, y, generator=torch.Generator().manual_seed(4))
    assert torch.equal(smoothed.inputs, plain.inputs) and torch.equal(smoothed.partner, plain.partner)
    row = torch.full((12, C), s / C)
    row[torch.arange(12), y] = 1 - s + s / C  # timm's convention, written out
    lam = smoothed.lam[:, None]
    assert torch.allclose(smoothed.targets, lam * row + (1 - lam) * row[smoothed.partner], atol=1e-6)


@pytest.mark.parametrize("name", list(ALL_MIXERS))
def test_prob_zero_returns_the_batch_unmixed_with_smoothed_targets(name):
    x, y = _images()
    batch = ALL_MIXERS[name](prob=0.0, label_smoothing=0.1)(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(batch.inputs, x)
    assert torch.equal(batch.lam, torch.ones(12)) and torch.equal(batch.partner, torch.arange(12))
    expected = torch.full((12, C), 0.1 / C)
    expected[torch.arange(12), y] = 0.9 + 0.1 / C
    assert torch.allclose(batch.targets, expected)
    if batch.weights is not None and name == "LocalMixup":  # uniform sampling: the self pair's weight W[i, i] = 1
        assert torch.equal(batch.weights, torch.ones(12))


def test_prob_mixes_that_share_of_batches_and_draws_a_fixed_count_of_uniforms():
    x, y = _images(b=8)
    mixer = vicinal.Mixup(alpha=1.0, num_classes=C, prob=0.3)
    g = torch.Generator().manual_seed(0)
    mixed = 0
    for _ in range(400):
        reference = torch.Generator().manual_seed(0)
        reference.set_state(g.get_state())
        torch.rand(1 + 8 + 1, dtype=torch.float64, generator=reference)  # lambda, the cycle, the gate
        mixed += int(not torch.equal(mixer(x, y, generator=g).inputs, x))
        assert torch.equal(g.get_state(), reference.get_state())
    # Binomial(400, 0.3): mean 120, sd 9.2
    assert 80 < mixed < 160


def test_mixed_batch_unpacks_into_inputs_and_targets_and_keeps_its_fields():
    x, y = _images()
    batch = vicinal.LocalMixup(graph=vicinal.Threshold(quantile=0.5), num_classes=C)(
        x, y, generator=torch.Generator().manual_seed(0))
    inputs, targets = batch
    assert inputs is batch.inputs and targets is batch.targets
    assert batch.weights is not None and len(batch) == 12
    logits = torch.randn(12, C)
    assert torch.isfinite(vicinal.mixup_loss(logits, batch))


LABEL_DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]


@pytest.mark.parametrize("name", list(ALL_MIXERS))
def test_every_integer_label_dtype_and_numpy_labels_give_the_int64_batch(name):
    x, y = _images()
    reference = ALL_MIXERS[name]()(x, y, generator=torch.Generator().manual_seed(1))
    variants = [y.to(d) for d in LABEL_DTYPES] + [y.numpy().astype(np.int32), y.numpy().astype(np.uint8), y.numpy()]
    for labels in variants:
        batch = ALL_MIXERS[name]()(x, labels, generator=torch.Generator().manual_seed(1))
        assert torch.equal(batch.targets, reference.targets) and torch.equal(batch.inputs, reference.inputs)


def test_every_integer_label_dtype_in_stats_metrics_and_dense_targets():
    x, y = _images(b=10)
    probs = torch.softmax(torch.randn(10, C, generator=torch.Generator().manual_seed(0)), dim=1)
    stats = vicinal.fit_stats((x, y), num_classes=C)
    expected_targets = vicinal.modified_data(x, y, stats=stats, alpha=1.0)[1]
    for labels in [y.to(d) for d in LABEL_DTYPES] + [y.numpy().astype(np.int32), y.numpy().astype(np.uint8)]:
        assert torch.equal(vicinal.fit_stats((x, labels), num_classes=C).y_mean, stats.y_mean)
        assert torch.equal(vicinal.fit_stats(TensorDataset(x, torch.as_tensor(labels)), num_classes=C).y_mean, stats.y_mean)
        assert torch.equal(vicinal.modified_data(x, labels, stats=stats, alpha=1.0)[1], expected_targets)
        assert torch.equal(vicinal.dense_targets(labels, 10, num_classes=C, dtype=torch.float32),
                           torch.nn.functional.one_hot(y, C).float())
        for metric in (vicinal.metrics.error_rate, vicinal.metrics.nll, vicinal.metrics.ece, vicinal.metrics.mce):
            assert metric(probs, labels) == metric(probs, y)
    with pytest.raises(ValueError, match="label 200 is outside"):
        vicinal.Mixup(num_classes=C)(x, torch.full((10,), 200, dtype=torch.uint8))
    with pytest.raises(TypeError, match="labels must be a torch.Tensor or a numpy array, got list"):
        vicinal.Mixup(num_classes=C)(x, [0] * 10)


@pytest.mark.parametrize("name", list(ALL_MIXERS))
def test_channels_last_in_channels_last_out_with_the_same_values(name):
    x, y = _images()
    cl = x.to(memory_format=torch.channels_last)
    a = ALL_MIXERS[name]()(cl, y, generator=torch.Generator().manual_seed(2))
    b = ALL_MIXERS[name]()(x, y, generator=torch.Generator().manual_seed(2))
    assert a.inputs.is_contiguous(memory_format=torch.channels_last) and not a.inputs.is_contiguous()
    assert b.inputs.is_contiguous()
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["Mixup", "CutMix", "LocalMixup", "from_timm"])
def test_input_dtype_is_kept(name, dtype):
    x, y = _images()
    batch = ALL_MIXERS[name]()(x.to(dtype), y, generator=torch.Generator().manual_seed(0))
    assert batch.inputs.dtype == dtype and batch.targets.dtype == dtype and batch.lam.dtype == dtype


class _DictImages(Dataset):
    def __init__(self, with_index=False, keys=("image", "label")):
        self.x, self.y = _images(b=8)
        self.with_index, self.keys = with_index, keys

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if self.keys is None:
            return (self.x[i], self.y[i].numpy().astype(np.uint8), i) if self.with_index else (self.x[i], self.y[i])
        return {self.keys[0]: self.x[i], self.keys[1]: int(self.y[i]), "index": i}


def test_mix_collate_takes_dict_samples_and_index_tuples():
    mixer = vicinal.Mixup(num_classes=C)
    expected = mixer(*_images(b=8), generator=torch.Generator().manual_seed(3))
    cases = [(_DictImages(), {}), (_DictImages(keys=("Image", "Labels")), {}), (_DictImages(keys=None, with_index=True), {}),
             (_DictImages(keys=("img_tensor", "cls")), dict(labels_getter=lambda b: (b["img_tensor"], b["cls"])))]
    for dataset, kwargs in cases:
        loader = DataLoader(dataset, batch_size=8, collate_fn=vicinal.MixCollate(mixer, seed=3, **kwargs))
        batch = next(iter(loader))
        assert torch.equal(batch.inputs, expected.inputs) and torch.equal(batch.targets, expected.targets)
    loader = DataLoader(_DictImages(keys=("img_tensor", "cls")), batch_size=8, collate_fn=vicinal.MixCollate(mixer))
    with pytest.raises(ValueError, match=r"no inputs in a batch with keys \['cls', 'img_tensor', 'index'\]"):
        next(iter(loader))
    with pytest.raises(TypeError, match="labels_getter must be 'default' or a callable"):
        vicinal.MixCollate(mixer, labels_getter="labels")


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\), got 1.0"):
        vicinal.Mixup(num_classes=C, label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing=0.1 smooths class targets: pass num_classes="):
        vicinal.Mixup(label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"prob must lie in \[0, 1\], got 1.01"):
        vicinal.CutMix(num_classes=C, prob=1.01)
    with pytest.raises(TypeError, match="prob must be a real number"):
        vicinal.KMixup(k=2, num_classes=C, prob="0.5")
    with pytest.raises(ValueError, match="drop cutmix_alpha"):
        vicinal.Mixer(interpolation="cutmix", cutmix_alpha=1.0)
    x, y = _images()
    with pytest.raises(ValueError, match="prob=0.5 leaves some samples unmixed"):
        vicinal.Mixup(num_classes=C, prob=0.5)(x, y, partner_batch=(x, y))


def _step(mixer, model, generator, x, y):
    batch = mixer(x, y, generator=generator)
    return vicinal.mixup_loss(model(batch.inputs), batch, check_values=False)


@pytest.mark.parametrize("name", ["Mixup", "LocalMixup", "CutMix"])
def test_torch_compile_of_the_model_and_of_a_whole_step(name):
    """The model compiled and mixing outside it; and a whole step with the mixer inside ``torch.compile``
    (AOTAutograd on the CPU; inductor would add a C++ build, the same graphs). Same numbers as eager, and
    the only graph breaks left are the generator draws and scipy's Beta quantile (docs/ARCHITECTURE.md)."""
    torch._dynamo.reset()
    x, y = _images(b=8)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 5, C))
    make = ALL_MIXERS[name]
    eager = _step(make(), model, torch.Generator().manual_seed(0), x, y)
    compiled_model = torch.compile(model, backend="aot_eager")
    outside = _step(make(), compiled_model, torch.Generator().manual_seed(0), x, y)
    outside.backward()
    mixer = make(check_finite=False)
    g = torch.Generator().manual_seed(0)
    whole = torch.compile(lambda a, b: _step(mixer, model, g, a, b), backend="aot_eager")(x, y)
    assert torch.allclose(outside, eager, atol=1e-6) and torch.allclose(whole, eager, atol=1e-6)
    explained = torch._dynamo.explain(lambda a, b: _step(mixer, model, torch.Generator().manual_seed(0), a, b))(x, y)
    places = {(r.user_stack[-1].filename.rsplit("/", 1)[-1]) for r in explained.break_reasons if r.user_stack}
    allowed = {"lam.py", "pairing.py"} | ({"graphs.py"} if name == "LocalMixup" else set())  # docs/timm.md
    assert places <= allowed, [r.reason for r in explained.break_reasons]


def test_batched_trainer_refuses_mixers_it_cannot_replicate():
    from types import SimpleNamespace

    from vicinal.lab.ensemble.draws import _Draws
    for mixer in (vicinal.CutMix(num_classes=C), vicinal.Mixup(num_classes=C, label_smoothing=0.1),
                  vicinal.Mixup(num_classes=C, prob=0.5)):
        with pytest.raises(ValueError, match="batched trainer replicates linear mixing"):
            _Draws([SimpleNamespace(mixer=mixer, config=None)], torch.tensor([4]), torch.float32)
