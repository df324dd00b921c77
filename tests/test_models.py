"""Tests of vicinal.lab.models: shapes, stage boundaries, seeded initialisation, paper details, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vicinal.lab.models import (
    MLP,
    DenseNetBC,
    LeNet,
    PreActResNet18,
    RandomFourierFeatures,
    ResNet34,
    WideResNet,
    WideResNet101,
    StagedModel,
    available_models,
    build_model,
    model_parameters,
)

# (name, input_shape, params): small enough to run in milliseconds on a CPU.
CASES = [
    ("mlp", (2,), {}),
    ("mlp", (1, 8, 8), {"widths": (16,)}),
    ("rff", (2,), {"n_features": 64}),
    ("rff", (1, 8, 8), {"n_features": 64}),
    ("lenet", (1, 8, 8), {}),
    ("lenet", (1, 28, 28), {}),
    ("lenet", (3, 32, 32), {}),
    ("lenet", (1, 28, 28), {"padding": 0}),
    ("lenet", (3, 32, 32), {"padding": 0}),
    ("preact_resnet18", (3, 32, 32), {"width": 2}),
    ("preact_resnet18", (1, 28, 28), {"width": 2}),
    ("densenet_bc", (1, 28, 28), {"depth": 10, "growth_rate": 4}),
    ("densenet_bc", (3, 32, 32), {"depth": 10, "growth_rate": 4}),
    ("resnet34", (3, 32, 32), {"width": 2}),
    ("resnet34", (1, 28, 28), {"width": 2}),
    ("wide_resnet", (3, 32, 32), {"depth": 10, "widen_factor": 1, "dropout": 0.3}),
    ("wide_resnet", (1, 28, 28), {"depth": 10, "widen_factor": 1}),
    ("wide_resnet101_2", (3, 32, 32), {"width": 2}),
    ("wide_resnet101_2", (1, 28, 28), {"width": 2}),
]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape, _ in CASES]


def _inputs(shape, batch=3, seed=0):
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_every_model():
    assert available_models() == ("densenet_bc", "lenet", "mlp", "preact_resnet18", "resnet34", "rff", "wide_resnet",
                                  "wide_resnet101_2")


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet18'; valid names: densenet_bc, lenet, mlp"):
        build_model("resnet18", input_shape=(3, 32, 32), num_outputs=10)


def test_unknown_parameter_is_named():
    expected = r"model 'mlp' has no parameter\(s\) \['depth'\]; it accepts \['activation', 'output_softmax', 'widths'\]"
    with pytest.raises(ValueError, match=expected):
        build_model("mlp", input_shape=(2,), num_outputs=2, depth=3)
    assert model_parameters("densenet_bc") == {"depth": 100, "growth_rate": 12, "compression": 0.5}


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("lenet", {"input_shape": (4,)}, ValueError, r"input_shape must be \(channels, height, width\)"),
        ("lenet", {"input_shape": (1, 3, 3)}, ValueError, "images must be at least 4x4"),
        ("mlp", {"input_shape": ()}, ValueError, "input_shape must be a non-empty sequence"),
        ("mlp", {"input_shape": (2,), "num_outputs": 0}, ValueError, "num_outputs must be an integer >= 1, got 0"),
        ("mlp", {"input_shape": (2,), "activation": "swish"}, ValueError, "activation must be one of 'relu'"),
        ("mlp", {"input_shape": (2,), "widths": 100}, TypeError, "widths must be a sequence of positive ints"),
        ("mlp", {"input_shape": (2,), "widths": (100, 0)}, ValueError, r"widths\[1\] must be an integer >= 1"),
        ("mlp", {"input_shape": (2,), "seed": -3}, ValueError, "seed must be an integer >= 0, got -3"),
        ("rff", {"input_shape": (2,), "sigma": 0.0}, ValueError, "sigma must be a finite number > 0"),
        ("densenet_bc", {"input_shape": (3, 32, 32), "depth": 12}, ValueError, "depth - 4 must be a multiple of 6"),
        ("densenet_bc", {"input_shape": (3, 32, 32), "compression": 1.5}, ValueError,
         r"compression must be in \(0, 1\]"),
        ("preact_resnet18", {"input_shape": (3, 32, 32), "width": 0}, ValueError, "width must be an integer >= 1"),
        ("resnet34", {"input_shape": (3, 32, 32), "width": 0}, ValueError, "width must be an integer >= 1"),
        ("resnet34", {"input_shape": (32, 32)}, ValueError, r"input_shape must be \(channels, height, width\)"),
        ("wide_resnet", {"input_shape": (3, 32, 32), "depth": 27}, ValueError, "depth - 4 must be a multiple of 6"),
        ("wide_resnet", {"input_shape": (3, 32, 32), "widen_factor": 0}, ValueError, "widen_factor must be an int"),
        ("wide_resnet", {"input_shape": (3, 32, 32), "dropout": 1.0}, ValueError, r"dropout must lie in \[0, 1\)"),
        ("wide_resnet101_2", {"input_shape": (3, 32, 32), "width": 0}, ValueError, "width must be an integer >= 1"),
        ("wide_resnet101_2", {"input_shape": (3, 32, 32), "depth": 50}, ValueError,
         r"model 'wide_resnet101_2' has no parameter\(s\) \['depth'\]; it accepts \['width'\]"),
        ("lenet", {"input_shape": (1, 12, 12), "padding": 0}, ValueError, "too small for LeNet with padding=0"),
        ("lenet", {"input_shape": (1, 28, 28), "padding": 3}, ValueError, "padding must be 0"),
    ],
)
def test_bad_arguments_raise_naming_them(name, kwargs, error, match):
    kwargs = {"num_outputs": 2, **kwargs}
    with pytest.raises(error, match=match):
        build_model(name, **kwargs)


@pytest.mark.parametrize(("name", "shape", "params"), CASES, ids=IDS)
def test_output_shape(name, shape, params):
    model = build_model(name, input_shape=shape, num_outputs=7, seed=0, **params).eval()
    assert model(_inputs(shape)).shape == (3, 7)
    assert isinstance(model, StagedModel) and isinstance(model.stages, nn.ModuleList)


@pytest.mark.parametrize(("name", "shape", "params"), CASES, ids=IDS)
def test_stages_compose_to_forward_at_every_boundary(name, shape, params):
    model = build_model(name, input_shape=shape, num_outputs=3, seed=1, **params).eval()
    x = _inputs(shape)
    expected = model(x)
    assert torch.equal(model.features(x, 0), x)  # boundary 0 is the input
    assert torch.equal(model.features(x, model.num_stages), expected)  # the last boundary is the output
    for boundary in range(model.num_stages + 1):
        torch.testing.assert_close(model.forward_from(model.features(x, boundary), boundary), expected)


@pytest.mark.parametrize(("name", "shape", "params"), CASES, ids=IDS)
def test_seeded_initialisation_is_reproducible_and_leaves_global_rng_alone(name, shape, params):
    state = torch.get_rng_state()
    a = build_model(name, input_shape=shape, num_outputs=3, seed=11, **params)
    b = build_model(name, input_shape=shape, num_outputs=3, seed=11, **params)
    c = build_model(name, input_shape=shape, num_outputs=3, seed=12, **params)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_unseeded_build_uses_the_global_rng():
    torch.manual_seed(5)
    a = build_model("mlp", input_shape=(2,), num_outputs=2)
    torch.manual_seed(5)
    b = build_model("mlp", input_shape=(2,), num_outputs=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# --------------------------------------------------------------------------- StagedModel


@settings(max_examples=25, deadline=None)
@given(boundary=st.integers(-3, 8))
def test_only_boundaries_0_to_num_stages_are_accepted(boundary):
    model = MLP(2, (4, 4), 2)  # three stages: boundaries 0..3
    x = torch.zeros(1, 2)
    if 0 <= boundary <= model.num_stages:
        assert model.forward_from(model.features(x, boundary), boundary).shape == (1, 2)
    else:
        with pytest.raises(ValueError, match=rf"end must be .*, got {boundary}"):
            model.features(x, boundary)
        with pytest.raises(ValueError, match=rf"start must be .*, got {boundary}"):
            model.forward_from(x, boundary)


def test_staged_model_needs_modules():
    with pytest.raises(TypeError, match="stages must be a non-empty sequence of nn.Module"):
        StagedModel([])
    with pytest.raises(TypeError, match="stages must be a non-empty sequence of nn.Module"):
        StagedModel([nn.ReLU(), "linear"])


# --------------------------------------------------------------------------- MLP


def test_mlp_is_the_spirals_network_of_baena_et_al():
    model = MLP(2, (100, 100), 2)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 100), (100, 100), (100, 2)]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2 and model.num_stages == 3


def test_mlp_without_hidden_layers_is_linear_and_flattens_images():
    model = MLP(64, (), 10)
    x = _inputs((1, 8, 8))
    torch.testing.assert_close(model(x), model.stages[0][1](x.flatten(1)))
    assert model.num_stages == 1


# --------------------------------------------------------------------------- Random Fourier features


def test_rff_feature_map_is_the_one_of_carratino_et_al():
    model = RandomFourierFeatures(3, 2, n_features=50, sigma=2.0, seed=4)
    features = model.stages[0]
    x = _inputs((3,), batch=5)
    expected = torch.cos(x @ features.projection.T + features.offset) / math.sqrt(50)
    torch.testing.assert_close(model.features(x, 1), expected)
    assert [name for name, _ in model.named_parameters()] == ["stages.1.weight"]  # projection is fixed
    assert model.stages[1].bias is None and torch.all(model(x) == 0)  # f(x) = w^T phi(x), w starts at 0


def test_rff_draws_projection_from_its_seed():
    a = RandomFourierFeatures(2, 2, n_features=20000, sigma=10.0, seed=0)
    b = RandomFourierFeatures(2, 2, n_features=20000, sigma=10.0, seed=0)
    assert torch.equal(a.stages[0].projection, b.stages[0].projection)
    projection, offset = a.stages[0].projection, a.stages[0].offset
    assert projection.std().item() == pytest.approx(10.0, rel=0.02)  # S_ij ~ N(0, sigma^2)
    assert 0 <= offset.min() and offset.max() < 2 * math.pi and offset.mean().item() == pytest.approx(math.pi, rel=0.02)


def test_rff_inner_products_approximate_the_gaussian_kernel():
    # E[cos(s.x + b) cos(s.y + b)] = exp(-sigma^2 |x - y|^2 / 2) / 2 for s ~ N(0, sigma^2 I), b ~ U(0, 2 pi).
    sigma = 3.0
    model = RandomFourierFeatures(2, 1, n_features=200_000, sigma=sigma, seed=1)
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.2, 0.3], [1.0, 1.0]])
    phi = model.features(x, 1).double()
    kernel = 0.5 * torch.exp(-(sigma**2) * torch.cdist(x, x).double() ** 2 / 2)
    torch.testing.assert_close(phi @ phi.T, kernel, atol=0.01, rtol=0)


# --------------------------------------------------------------------------- convolutional nets


def test_lenet_first_dense_layer_is_sized_from_the_input():
    for shape, flat in (((1, 8, 8), 16 * 2 * 2), ((1, 28, 28), 16 * 7 * 7), ((3, 32, 32), 16 * 8 * 8)):
        model = LeNet(shape, 10)
        assert model.stages[2][1].in_features == flat and model.stages[0][0].in_channels == shape[0]


def test_preact_resnet18_has_18_weighted_layers_and_width_multiplier():
    model = PreActResNet18(10)  # standard width 64
    convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs3) + len(linears) == 18 and linears[0].in_features == 512
    tiny = PreActResNet18(10, width=2).eval()
    assert tiny.stages[-1][-1].in_features == 16
    hidden = tiny.features(_inputs((3, 32, 32)), 5)  # after the last block stage: 32 / 8 = 4
    assert hidden.shape == (3, 16, 4, 4)


def test_preact_block_is_pre_activation():
    # He et al. 2016: the block starts with BN-ReLU; the network ends with BN-ReLU before pooling.
    model = PreActResNet18(10, width=2)
    block = model.stages[1][0]
    assert isinstance(block.bn1, nn.BatchNorm2d) and block.bn1.num_features == 2 and block.shortcut is None
    assert isinstance(model.stages[-1][0], nn.BatchNorm2d) and isinstance(model.stages[-1][1], nn.ReLU)


@pytest.mark.parametrize(("depth", "growth_rate", "final_channels"), [(100, 12, 342), (16, 6, 24)])
def test_densenet_bc_depth_counts_weighted_layers(depth, growth_rate, final_channels):
    # Huang et al. 2017: depth = 1 stem conv + 3 blocks x n x 2 convs + 2 transitions + 1 linear.
    # Final channels by hand: 2k, +n k, halve, +n k, halve, +n k (342 for DenseNet-BC-100, k = 12).
    model = DenseNetBC(10, depth=depth, growth_rate=growth_rate)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth
    assert model.stages[-1][-1].in_features == final_channels


def test_lenet_without_padding_is_the_original_lenet5():
    # LeCun et al. 1998: 32x32 -> conv5 28 -> pool 14 -> conv5 10 -> pool 5; 28x28 MNIST: 24, 12, 8, 4.
    for shape, side in (((3, 32, 32), 5), ((1, 28, 28), 4)):
        model = LeNet(shape, 10, padding=0).eval()
        assert model.features(_inputs(shape), 2).shape == (3, 16, side, side)
        assert model.stages[2][1].in_features == 16 * side * side


def test_resnet34_has_34_weighted_layers_in_3_4_6_3_basic_blocks():
    # He et al. 2016, Table 1: 1 stem conv + 2 x (3 + 4 + 6 + 3) block convs + 1 linear = 34.
    model = ResNet34(10, width=2)
    assert [len(stage) for stage in model.stages[1:5]] == [3, 4, 6, 3]
    projections = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) + 1 == 34 and len(projections) == 3  # option B shortcuts where the shape changes
    assert model.features(_inputs((3, 32, 32)), 5).shape == (3, 16, 4, 4)  # CIFAR stem: no early downsampling


def test_wide_resnet_groups_and_widths():
    # Zagoruyko & Komodakis 2016, Table 1: groups of (depth - 4) / 6 blocks, 16k / 32k / 64k channels.
    model = WideResNet(10, depth=16, widen_factor=2, dropout=0.3)
    assert [len(stage) for stage in model.stages[1:4]] == [2, 2, 2]
    assert [stage[0].conv1.out_channels for stage in model.stages[1:4]] == [32, 64, 128]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.3 for m in model.modules()) == 6


def test_wide_resnet_dropout_acts_only_in_training():
    model = WideResNet(3, depth=10, widen_factor=1, dropout=0.5)
    x = _inputs((3, 16, 16))
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))


def test_wide_resnet101_2_is_the_imagenet_bottleneck_net_shrinking_cifar_images_to_1x1():
    # He et al. 2016, Table 1: 1 stem conv + 3 x (3 + 4 + 23 + 3) bottleneck convs + 1 linear = 101 layers;
    # widened bottlenecks (Zagoruyko & Komodakis 2016): 3x3 convolutions 2 p wide, blocks end at 4 p.
    with torch.device("meta"):
        model = WideResNet101(10)
    assert [len(stage) for stage in model.stages[1:5]] == [3, 4, 23, 3]
    blocks = [block for stage in model.stages[1:5] for block in stage]
    projections = [block.shortcut[0] for block in blocks if not isinstance(block.shortcut, nn.Identity)]
    # One 1x1 projection per stage, on its first block (64 -> 256 channels at stride 1, then stride 2).
    assert [(m.kernel_size, m.stride) for m in projections] == [((1, 1), (1, 1))] + [((1, 1), (2, 2))] * 3
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) - len(projections) == 101
    assert [stage[0].conv2.out_channels for stage in model.stages[1:5]] == [128, 256, 512, 1024]
    assert [stage[-1].conv3.out_channels for stage in model.stages[1:5]] == [256, 512, 1024, 2048]
    assert model.stages[0][0].kernel_size == (7, 7) and model.stages[0][0].stride == (2, 2)
    assert isinstance(model.stages[0][3], nn.MaxPool2d)
    # The ImageNet stem on 32x32 inputs: 8x8 after the stem, then 8, 4, 2 and 1 after the four stages.
    tiny = WideResNet101(10, width=2).eval()
    x = _inputs((3, 32, 32), batch=2)
    assert [tuple(tiny.features(x, b).shape[2:]) for b in range(1, 6)] == [(8, 8), (8, 8), (4, 4), (2, 2), (1, 1)]


def test_wide_resnet101_2_trains_on_cifar_size_batches_and_its_1x1_stage_uses_only_centre_taps():
    model = WideResNet101(10, width=2)  # training mode: batch statistics over 2 images at 1x1 still defined
    x, y = _inputs((3, 32, 32), batch=2), torch.tensor([3, 7])
    nn.functional.cross_entropy(model(x), y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # Blocks after the first of the last stage see 1x1 maps: their 3x3 kernels learn only the centre weight.
    for block in list(model.stages[4])[1:]:
        grad = block.conv2.weight.grad
        assert grad[:, :, 1, 1].abs().sum() > 0
        centre_removed = grad.clone()
        centre_removed[:, :, 1, 1] = 0
        assert torch.equal(centre_removed, torch.zeros_like(grad))


# --------------------------------------------------------------------------- parameter counts
# Two independent checks per model: the count from the architecture's definition, written out by
# hand here (exact), and the figure the papers publish (within 1 %). The big nets are built on the
# meta device: shapes only, no memory, no initialisation cost.


def _conv(c_in, c_out, k):
    return c_in * c_out * k * k


def _bn(c):
    return 2 * c


def _linear(c_in, c_out):
    return c_in * c_out + c_out


def _preact_resnet18_count(classes, width=64):
    total, c = _conv(3, width, 3), width
    for m, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        out = width * m
        for i in range(2):
            c_in = c if i == 0 else out
            total += _bn(c_in) + _conv(c_in, out, 3) + _bn(out) + _conv(out, out, 3)
            total += _conv(c_in, out, 1) if c_in != out or (i == 0 and stride != 1) else 0
        c = out
    return total + _bn(c) + _linear(c, classes)


def _resnet34_count(classes, width=64):
    total, c = _conv(3, width, 3) + _bn(width), width
    for blocks, m, stride in ((3, 1, 1), (4, 2, 2), (6, 4, 2), (3, 8, 2)):
        out = width * m
        for i in range(blocks):
            c_in = c if i == 0 else out
            total += _conv(c_in, out, 3) + _bn(out) + _conv(out, out, 3) + _bn(out)
            total += _conv(c_in, out, 1) + _bn(out) if c_in != out or (i == 0 and stride != 1) else 0
        c = out
    return total + _linear(c, classes)


def _wide_resnet_count(classes, depth, k):
    total, c = _conv(3, 16, 3), 16
    for m in (1, 2, 4):
        out = 16 * m * k
        for i in range((depth - 4) // 6):
            c_in = c if i == 0 else out
            total += _bn(c_in) + _conv(c_in, out, 3) + _bn(out) + _conv(out, out, 3)
            total += _conv(c_in, out, 1) if c_in != out or (i == 0 and m > 1) else 0
        c = out
    return total + _bn(c) + _linear(c, classes)


def _wide_resnet101_2_count(classes, width=64):
    # Stem conv 7x7 + BN; bottlenecks c_in -> 2p -> 2p -> 4p (1x1, 3x3, 1x1, each with BN), the first of each
    # stage with a 1x1 projection + BN; linear head on 4 * 8 * width = 2048 features.
    total, c = _conv(3, width, 7) + _bn(width), width
    for blocks, m in ((3, 1), (4, 2), (23, 4), (3, 8)):
        p = width * m
        for i in range(blocks):
            c_in = c if i == 0 else 4 * p
            total += _conv(c_in, 2 * p, 1) + _bn(2 * p) + _conv(2 * p, 2 * p, 3) + _bn(2 * p)
            total += _conv(2 * p, 4 * p, 1) + _bn(4 * p)
            total += _conv(c_in, 4 * p, 1) + _bn(4 * p) if i == 0 else 0
        c = 4 * p
    return total + _linear(c, classes)


def _densenet_bc_count(classes, depth, k):
    c = 2 * k
    total = _conv(3, c, 3)
    for block in range(3):
        for _ in range((depth - 4) // 6):
            total += _bn(c) + _conv(c, 4 * k, 1) + _bn(4 * k) + _conv(4 * k, k, 3)
            c += k
        if block < 2:
            total += _bn(c) + _conv(c, c // 2, 1)
            c //= 2
    return total + _bn(c) + _linear(c, classes)


def _lenet_count(channels, side, classes):
    # conv 5x5 (6), conv 5x5 (16), FC 120, FC 84, FC classes; convolutions with biases.
    return (_conv(channels, 6, 5) + 6 + _conv(6, 16, 5) + 16 + _linear(16 * side * side, 120) + _linear(120, 84)
            + _linear(84, classes))


def _count(name, shape=(3, 32, 32), classes=10, **params):
    with torch.device("meta"):
        model = build_model(name, input_shape=shape, num_outputs=classes, **params)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "params", "classes", "by_hand", "published"),
    [
        # 11.17 M: the ImageNet ResNet-18's 11.69 M (torchvision) with a 3x3 stem and a 10-class head,
        # the count usually quoted for the CIFAR PreAct ResNet-18 of Zhang et al. 2018 / Greenewald et al.
        ("preact_resnet18", {}, 10, _preact_resnet18_count(10), 11.17e6),
        # 21.3 M: the ImageNet ResNet-34's 21.80 M (torchvision) with a 3x3 stem and a 10-class head.
        ("resnet34", {}, 10, _resnet34_count(10), 21.3e6),
        ("resnet34", {}, 100, _resnet34_count(100), 21.3e6),
        # Huang et al. 2017, Table 2: DenseNet-BC (L=100, k=12) 0.8 M, (250, 24) 15.3 M, (190, 40) 25.6 M.
        ("densenet_bc", {"depth": 100, "growth_rate": 12}, 10, _densenet_bc_count(10, 100, 12), 0.8e6),
        ("densenet_bc", {"depth": 250, "growth_rate": 24}, 10, _densenet_bc_count(10, 250, 24), 15.3e6),
        ("densenet_bc", {"depth": 190, "growth_rate": 40}, 10, _densenet_bc_count(10, 190, 40), 25.6e6),
        # Zagoruyko & Komodakis 2016, Table 4 (CIFAR-10): WRN-16-8 11.0 M, WRN-28-10 36.5 M.
        ("wide_resnet", {"depth": 16, "widen_factor": 8}, 10, _wide_resnet_count(10, 16, 8), 11.0e6),
        ("wide_resnet", {"depth": 28, "widen_factor": 10}, 10, _wide_resnet_count(10, 28, 10), 36.5e6),
    ],
    ids=["preact_resnet18", "resnet34-c10", "resnet34-c100", "densenet_bc-100-12", "densenet_bc-250-24",
         "densenet_bc-190-40", "wrn-16-8", "wrn-28-10"],
)
def test_parameter_counts_match_the_definition_and_the_published_figures(name, params, classes, by_hand, published):
    count = _count(name, classes=classes, **params)
    assert count == by_hand
    # 0.8 M is given to one digit (0.77 M exactly); the others to three digits.
    assert count == pytest.approx(published, rel=0.05 if published < 1e6 else 0.01)


def test_lenet_parameter_counts():
    # LeNet-5 "has 60,000 trainable parameters" (LeCun et al. 1998, Sec. II-B); ours by hand, per input.
    assert _count("lenet", (3, 32, 32), padding=0) == _lenet_count(3, 5, 10) == 62006
    assert _count("lenet", (1, 28, 28), padding=0) == _lenet_count(1, 4, 10) == 44426
    assert _count("lenet", (1, 28, 28)) == _lenet_count(1, 7, 10)  # "same" padding: 28 -> 14 -> 7


def test_wide_resnet101_2_parameter_count_is_torchvisions_published_figure():
    # 126,886,696: torchvision's published count for wide_resnet101_2 (1000 ImageNet classes), the "num_params" of
    # Wide_ResNet101_2_Weights.IMAGENET1K_V1 and _V2 in torchvision/models/resnet.py, shown on
    # https://pytorch.org/vision/stable/models/generated/torchvision.models.wide_resnet101_2.html.
    # Built once on the meta device (shapes only) with the ImageNet input shape; no forward pass.
    published = 126_886_696
    imagenet = _count("wide_resnet101_2", (3, 224, 224), classes=1000)
    assert imagenet == _wide_resnet101_2_count(1000) == published
    # CIFAR-10 head: 990 fewer classes on the 2048 pooled features, each a weight row and a bias.
    cifar = _count("wide_resnet101_2", classes=10)
    assert cifar == _wide_resnet101_2_count(10) == published - 990 * (2048 + 1) == 124_858_186
    assert _count("wide_resnet101_2", classes=10, width=4) == _wide_resnet101_2_count(10, width=4)
