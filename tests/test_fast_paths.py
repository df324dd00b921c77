"""The optimised helpers of the mixing path agree exactly with the plain expressions they replace."""

import math

import pytest
import torch

from vicinal._checks import all_finite
from vicinal.graphs import expanded_squared_distances, squared_distances
from vicinal.pairing import _costs_to_next_block, _rows


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_all_finite_finds_a_bad_value_anywhere(dtype, bad):
    for n in (1, 7, 1000):
        for position in (0, n // 2, n - 1):
            values = torch.rand(n, dtype=dtype)
            values[position] = bad
            assert not all_finite(values)
        assert all_finite(torch.rand(n, dtype=dtype))


def test_all_finite_on_empty_and_strided_tensors():
    assert all_finite(torch.empty(3, 0))
    values = torch.randn(4, 6)
    values[1, 3] = math.nan
    assert not all_finite(values[:, 1::2])  # strided view holding the NaN
    assert all_finite(values[:, ::2])  # strided view without it


def test_rows_equal_advanced_indexing():
    values = torch.randn(10, 5)
    for index in (torch.randperm(10), torch.randperm(10)[:6].view(2, 3), torch.tensor([3])):
        assert torch.equal(_rows(values, index), values[index])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 1, 3), (2, 5, 7), (4, 32, 3072), (7, 3, 48)])
def test_costs_to_next_block_equal_the_expansion_on_rolled_blocks(dtype, shape):
    blocks = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_costs_to_next_block(blocks), expanded_squared_distances(blocks, blocks.roll(-1, 0)))
