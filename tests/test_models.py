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
    ("preact_resnet18", (3, 32, 32), {"width": 2}),
    ("preact_resnet18", (1, 28, 28), {"width": 2}),
    ("densenet_bc", (1, 28, 28), {"depth": 10, "growth_rate": 4}),
    ("densenet_bc", (3, 32, 32), {"depth": 10, "growth_rate": 4}),
]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape, _ in CASES]


def _inputs(shape, batch=3, seed=0):
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_every_model():
    assert available_models() == ("densenet_bc", "lenet", "mlp", "preact_resnet18", "rff")


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
